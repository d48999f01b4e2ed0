"""A fake AWS for Pulumi's mock runtime that answers like the provider and records.

`run(program)` runs a Pulumi program under the mocks and returns what it declared: each
resource's type, name and inputs (as the provider would receive them, camelCase), the URNs it
depends on, and the stack outputs. No AWS account and no Pulumi CLI are involved.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings

ACCOUNT = "123456789012"
REGION = "eu-west-1"
PROJECT = "wsauth"
STACK = "test"


def _short_id(seed: str, length: int = 10) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


def _outputs(typ: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The id and output properties AWS would give a resource of `typ` created from `inputs`."""
    state = dict(inputs)
    resource_id = f"{name}-id"
    if typ == "aws:cognito/userPool:UserPool":
        resource_id = f"{REGION}_{_short_id(name, 9)}"
        state["arn"] = f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{resource_id}"
        state["endpoint"] = f"cognito-idp.{REGION}.amazonaws.com/{resource_id}"
    elif typ == "aws:cognito/userPoolClient:UserPoolClient":
        resource_id = _short_id(name, 26)
    elif typ == "aws:dynamodb/table:Table":
        table_name = inputs.get("name") or f"{name}-{_short_id(name, 7)}"
        resource_id = table_name
        state["name"] = table_name
        state["arn"] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table_name}"
        if inputs.get("streamEnabled"):
            state["streamLabel"] = "2026-11-27T12:00:00.000"
            state["streamArn"] = f"{state['arn']}/stream/{state['streamLabel']}"
    elif typ == "aws:cloudwatch/logGroup:LogGroup":
        resource_id = inputs["name"]
        state["arn"] = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{inputs['name']}"
    elif typ == "aws:iam/role:Role":
        role_name = inputs.get("name") or f"{name}-{_short_id(name, 7)}"
        resource_id = role_name
        state["name"] = role_name
        state["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{role_name}"
    elif typ == "aws:lambda/function:Function":
        function_name = inputs["name"]
        resource_id = function_name
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"
        state["arn"] = arn
        state["invokeArn"] = (
            f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{arn}/invocations"
        )
    elif typ == "aws:apigatewayv2/api:Api":
        resource_id = _short_id(name)
        state["apiEndpoint"] = f"wss://{resource_id}.execute-api.{REGION}.amazonaws.com"
        state["executionArn"] = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{resource_id}"
        state["arn"] = f"arn:aws:apigateway:{REGION}::/apis/{resource_id}"
    elif typ in (
        "aws:apigatewayv2/authorizer:Authorizer",
        "aws:apigatewayv2/integration:Integration",
        "aws:apigatewayv2/route:Route",
    ):
        resource_id = _short_id(name, 7)
    elif typ == "aws:apigatewayv2/stage:Stage":
        resource_id = inputs["name"]
    elif typ == "aws:cloudwatch/eventRule:EventRule":
        rule_name = inputs.get("name") or f"{name}-{_short_id(name, 7)}"
        resource_id = state["name"] = rule_name
        state["arn"] = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule_name}"
    elif typ == "aws:sns/topic:Topic":
        topic_name = inputs.get("name") or f"{name}-{_short_id(name, 7)}"
        resource_id = state["arn"] = f"arn:aws:sns:{REGION}:{ACCOUNT}:{topic_name}"
    elif typ == "aws:cloudwatch/metricAlarm:MetricAlarm":
        resource_id = inputs["name"]
        state["arn"] = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{inputs['name']}"
    elif typ == "aws:cloudwatch/dashboard:Dashboard":
        resource_id = inputs["dashboardName"]
        state["dashboardArn"] = f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/{resource_id}"
    elif typ == "aws:acm/certificate:Certificate":
        resource_id = state["arn"] = (
            f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/{_short_id(name, 36)}"
        )
        token = _short_id(inputs["domainName"], 32)
        state["domainValidationOptions"] = [
            {
                "domainName": inputs["domainName"],
                "resourceRecordName": f"_{token}.{inputs['domainName']}.",
                "resourceRecordType": "CNAME",
                "resourceRecordValue": f"_{token[::-1]}.acm-validations.aws.",
            }
        ]
    elif typ == "aws:route53/record:Record":
        resource_id = f"{inputs['zoneId']}_{inputs['name']}_{inputs['type']}"
        state["fqdn"] = str(inputs["name"]).rstrip(".")
    elif typ == "aws:apigatewayv2/domainName:DomainName":
        resource_id = inputs["domainName"]
        state["arn"] = f"arn:aws:apigateway:{REGION}::/domainnames/{resource_id}"
        state["domainNameConfiguration"] = {
            **inputs["domainNameConfiguration"],
            "targetDomainName": f"d-{_short_id(name)}.execute-api.{REGION}.amazonaws.com",
            "hostedZoneId": "Z2FDTNDATAQYW2",
        }
    return resource_id, state


@dataclass
class Declared:
    """One resource as the program declared it."""

    urn: str
    resource_id: str
    typ: str
    name: str
    inputs: dict[str, Any]
    state: dict[str, Any]
    dependencies: list[str]
    parent: str
    retain_on_delete: bool


@dataclass
class Deployment:
    """What a program declared under the mocks."""

    resources: list[Declared] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, typ: str) -> list[Declared]:
        """Every resource of one type token, in declaration order."""
        return [resource for resource in self.resources if resource.typ == typ]

    def one(self, typ: str, name: str) -> Declared:
        """The resource of `typ` called `name`; fails the test if it is not exactly one."""
        matches = [r for r in self.of_type(typ) if r.name == name]
        assert len(matches) == 1, f"expected one {typ} named {name}, got {len(matches)}"
        return matches[0]

    def by_urn(self, urn: str) -> Declared:
        """The resource with this URN."""
        return next(resource for resource in self.resources if resource.urn == urn)


class _RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self, deployment: Deployment, region_cloudwatch_role: str | None) -> None:
        self.deployment = deployment
        self.region_cloudwatch_role = region_cloudwatch_role

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if args.typ == "aws:apigateway/account:Account" and args.resource_id:
            # A read of the region's settings (`Account.get`): GetAccount leaves an unset role
            # out of its answer.
            state = {}
            if self.region_cloudwatch_role:
                state["cloudwatchRoleArn"] = self.region_cloudwatch_role
            return args.resource_id, state
        return _outputs(args.typ, args.name, args.inputs)

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        self.deployment.calls.append(args.token)
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            arn = f"arn:aws:iam::{ACCOUNT}:user/deployer"
            return {"accountId": ACCOUNT, "arn": arn, "userId": "AIDA", "id": ACCOUNT}, []
        if args.token == "aws:index/getRegion:getRegion":
            endpoint = f"ec2.{REGION}.amazonaws.com"
            return {"region": REGION, "name": REGION, "id": REGION, "endpoint": endpoint}, []
        return {}, []


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """Keeps what MockResourceArgs leaves out: dependencies and parents."""

    def __init__(self, mocks: _RecordingMocks) -> None:
        super().__init__(mocks)
        self.deployment = mocks.deployment

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.deployment.resources.append(
                Declared(
                    urn=response.urn,
                    resource_id=response.id,
                    typ=request.type,
                    name=request.name,
                    inputs=pulumi_mocks.rpc.deserialize_properties(request.object),
                    state=pulumi_mocks.rpc.deserialize_properties(response.object),
                    dependencies=list(request.dependencies),
                    parent=request.parent,
                    retain_on_delete=request.retainOnDelete,
                )
            )
        return response


def resolved(value: Any) -> Any:
    """The value of an Output (or a plain value), outside a Pulumi program."""
    if isinstance(value, pulumi.Output):
        return pulumi_mocks._sync_await(value.future())
    return value


def run(
    program: Callable[[], Any],
    config: dict[str, str] | None = None,
    *,
    region_cloudwatch_role: str | None = None,
) -> Deployment:
    """Run `program` under fresh mocks and config; return what it declared.

    `program` may return an Output, which is awaited (assertions inside `apply` then fail the
    test). Exceptions raised by the program propagate. `region_cloudwatch_role` is the role the
    region's API Gateway account settings name before the run (None: a new account's).
    """
    deployment = Deployment()
    mocks = _RecordingMocks(deployment, region_cloudwatch_role)
    # A fresh root stack per run, so outputs of an earlier run cannot leak into this one.
    pulumi_settings.set_root_resource(None)  # type: ignore[arg-type]
    pulumi.runtime.set_all_config(dict(config or {}))
    pulumi.runtime.set_mocks(
        mocks, project=PROJECT, stack=STACK, preview=False, monitor=_RecordingMonitor(mocks)
    )
    pulumi.runtime.test(program)()
    root = pulumi_settings.get_root_resource()
    if root is not None:
        deployment.outputs = dict(getattr(root, "outputs", {}))
    return deployment


def reset() -> None:
    """Leave no config or root stack behind for the next test."""
    pulumi.runtime.set_all_config({})
    pulumi_settings.set_root_resource(None)  # type: ignore[arg-type]


def declared_so_far() -> list[str]:
    """URNs the mock monitor registered in the latest run (also a failed one)."""
    monitor = pulumi_settings.SETTINGS.monitor
    return list(monitor.resources)  # type: ignore[union-attr]
