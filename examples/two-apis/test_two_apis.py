"""The two-apis example under Pulumi mocks: two APIs share one pool and nothing else.

Run with `python -m pytest examples/two-apis` (wsauth installed). No AWS account is needed: the
mocks below answer for AWS, and the Lambda archive build is replaced by a stub.
"""

from __future__ import annotations

import asyncio
import json
import runpy
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime import settings

from pulumi_wsauth import packaging

PROGRAM = Path(__file__).with_name("__main__.py")
REGION = "us-west-2"
ACCOUNT = "123456789012"


class FakeAws(pulumi.runtime.Mocks):
    """Gives each resource the ids and ARNs AWS would, and remembers what was declared."""

    def __init__(self) -> None:
        self.declared: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.declared.append(args)
        state = dict(args.inputs)
        resource_id = f"{args.name}-id"
        if args.typ == "aws:cognito/userPool:UserPool":
            resource_id = f"{REGION}_{args.name}"
        elif args.typ == "aws:dynamodb/table:Table":
            state["name"] = resource_id = f"{args.name}-1a2b3c"
            state["arn"] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{resource_id}"
        elif args.typ == "aws:cloudwatch/logGroup:LogGroup":
            state["arn"] = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{args.inputs['name']}"
        elif args.typ == "aws:lambda/function:Function":
            arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{args.inputs['name']}"
            state["arn"] = arn
            state["invokeArn"] = f"arn:aws:apigateway:{REGION}:lambda:path/functions/{arn}"
        elif args.typ == "aws:apigatewayv2/api:Api":
            resource_id = args.name.replace("-", "")
            state["apiEndpoint"] = f"wss://{resource_id}.execute-api.{REGION}.amazonaws.com"
            state["executionArn"] = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{resource_id}"
        elif args.typ == "aws:iam/role:Role":
            state["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{args.name}"
        return resource_id, state

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        # The account id reads the region's API Gateway settings; nothing else is looked up.
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT,
                "arn": f"arn:aws:iam::{ACCOUNT}:user/me",
                "id": ACCOUNT,
            }, []
        raise AssertionError(f"the example should need no other provider call, made {args.token}")

    def of_type(self, typ: str) -> dict[str, dict[str, Any]]:
        return {r.name: r.inputs for r in self.declared if r.typ == typ}


@pytest.fixture
def fake_aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAws]:
    archive = tmp_path / "lambda.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("handlers/__init__.py", "")
    monkeypatch.setattr(packaging, "build_lambda_archive", lambda *args, **kwargs: archive)
    # Pulumi's mock runtime runs on the thread's current loop; an earlier asyncio.run() leaves none.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    fake = FakeAws()
    settings.set_root_resource(None)  # type: ignore[arg-type]
    pulumi.runtime.set_all_config({})
    pulumi.runtime.set_mocks(fake, project="two-apis", stack="test", preview=False)
    yield fake
    settings.set_root_resource(None)  # type: ignore[arg-type]
    asyncio.set_event_loop(None)
    loop.close()


def run_example() -> dict[str, Any]:
    """Run the example program; return its stack outputs, resolved."""
    outputs: dict[str, Any] = {}

    def program() -> pulumi.Output[Any]:
        runpy.run_path(str(PROGRAM), run_name="__main__")
        exported = settings.get_root_resource().outputs  # type: ignore[union-attr]
        return pulumi.Output.all(**exported).apply(outputs.update)

    pulumi.runtime.test(program)()
    return outputs


def test_two_apis_share_one_pool_and_client(fake_aws: FakeAws) -> None:
    """Both authorizers verify tokens of the same pool and client."""
    run_example()

    pools = fake_aws.of_type("aws:cognito/userPool:UserPool")
    clients = fake_aws.of_type("aws:cognito/userPoolClient:UserPoolClient")
    assert list(pools) == ["users-pool"] and list(clients) == ["users-web-client"]
    functions = fake_aws.of_type("aws:lambda/function:Function")
    for api in ("chat", "alerts"):
        variables = functions[f"{api}-authorizer"]["environment"]["variables"]
        assert variables["USER_POOL_ID"] == f"{REGION}_users-pool"
        assert variables["APP_CLIENT_ID"] == "users-web-client-id"


def test_each_api_keeps_its_own_table_functions_and_settings(fake_aws: FakeAws) -> None:
    """Tables, function names, log groups and token settings do not collide between APIs."""
    outputs = run_example()

    functions = fake_aws.of_type("aws:lambda/function:Function")
    names = [f["name"] for f in functions.values()]
    assert len(names) == len(set(names)) == 8  # authorizer, websocket, sweeper, counter each
    assert functions["chat-websocket"]["environment"]["variables"]["CONNECTION_TABLE_NAME"] == (
        "chat-connections-table-1a2b3c"
    )
    assert functions["alerts-websocket"]["environment"]["variables"]["CONNECTION_TABLE_NAME"] == (
        "alerts-connections-table-1a2b3c"
    )
    alerts_env = functions["alerts-authorizer"]["environment"]["variables"]
    assert (alerts_env["TOKEN_USE"], alerts_env["TOKEN_SOURCE"]) == ("access", "protocol")
    routes = fake_aws.of_type("aws:apigatewayv2/route:Route")
    assert routes["chat-action-sendmessage-route"]["routeKey"] == "sendmessage"
    assert "alerts-action-sendmessage-route" not in routes
    policy = json.loads(
        fake_aws.of_type("aws:iam/rolePolicy:RolePolicy")["alerts-websocket-policy"]["policy"]
    )
    resources = [r for statement in policy["Statement"] for r in statement["Resource"]]
    assert f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/alerts-connections-table-1a2b3c" in resources
    assert not any("chat" in resource for resource in resources)
    assert outputs["chatEndpoint"] == f"wss://chatapi.execute-api.{REGION}.amazonaws.com/prod"
    assert outputs["alertsEndpoint"] == f"wss://alertsapi.execute-api.{REGION}.amazonaws.com/live"
