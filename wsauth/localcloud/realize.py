"""Realize a Pulumi program locally: run it under Pulumi's mocks and create what it declares.

`Realizer` is a `pulumi.runtime.Mocks` whose `new_resource` does not fake a resource but makes
it: Cognito pools and clients and DynamoDB tables in the embedded moto server, Lambda functions
as `FunctionSpec`s for the worker pool, each WebSocket API as an `ApiSpec` for a gateway. IAM,
log groups and permissions are recorded (IAM roles and policies also created in moto). A type
it cannot realize is an error that names it: silently skipping a resource would make the local
stack differ from the deployed one without anyone noticing.
"""

from __future__ import annotations

import json
import os
import platform
import random
import runpy
import string
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from wsauth.localcloud.lambdas import FunctionSpec, unpack_archive
from wsauth.localcloud.permissions import InvokePermission
from wsauth.localcloud.spec import ApiSpec, AuthorizerSpec, Limits, RouteSpec

__all__ = [
    "ACCOUNT_ID",
    "api_domain",
    "RealizeError",
    "Realizer",
    "RealizedStack",
    "local_config",
    "realize_program",
]

ACCOUNT_ID = "123456789012"
"""moto's default account, so ARNs we compute match the ones moto returns."""


def api_domain(api_id: str, region: str) -> str:
    """The host name AWS gives a WebSocket API (its `wss://` and `https://` endpoints)."""
    return f"{api_id}.execute-api.{region}.amazonaws.com"


# Types that exist in AWS only as bookkeeping for this program's purpose: the local cloud keeps
# their inputs (so a program can read their outputs) but there is nothing to run.
_RECORDED = {
    "aws:iam/role:Role",
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/policy:Policy",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:apigatewayv2/deployment:Deployment",
    "aws:apigatewayv2/routeResponse:RouteResponse",
    "aws:apigatewayv2/integrationResponse:IntegrationResponse",
    "aws:apigateway/account:Account",
}


class RealizeError(Exception):
    """The program cannot run locally (unsupported resource, bad input, program failure)."""


@dataclass
class RealizedStack:
    """What the program declared, made real: enough to start the gateway and the workers."""

    outputs: dict[str, Any]
    apis: list[ApiSpec]
    """Every WebSocket API, ordered by resource name (the order their ports are given in)."""
    functions: dict[str, FunctionSpec]
    region: str
    permissions: list[InvokePermission] = field(default_factory=list)
    """The functions' invoke permissions (API Gateway is refused without one)."""
    resources: list[tuple[str, str]] = field(default_factory=list)
    """(type, name) of every resource, in declaration order, for the summary."""


def machine_architecture() -> str:
    """Return this machine's Lambda architecture name (`x86_64` or `arm64`)."""
    machine = platform.machine().lower()
    return "arm64" if machine in ("aarch64", "arm64") else "x86_64"


def local_config(program_dir: Path) -> dict[str, str]:
    """Return the `local` stack's configuration for the program in `program_dir`.

    Project defaults from `Pulumi.yaml`, then `Pulumi.local.yaml` when present; the Lambda
    architecture and runtime are always this machine's and this interpreter's, so the archive the
    components build is one the workers can run.
    """
    import yaml

    config: dict[str, str] = {"aws:region": "us-east-1"}
    project = _read_yaml(program_dir / "Pulumi.yaml")
    project_name = str(project.get("name", "project"))
    for key, value in (project.get("config") or {}).items():
        if isinstance(value, dict):
            value = value.get("value", value.get("default"))
        if value is not None:
            config[_qualify(key, project_name)] = _config_text(value)
    stack_file = program_dir / "Pulumi.local.yaml"
    if stack_file.is_file():
        stack = yaml.safe_load(stack_file.read_text()) or {}
        for key, value in (stack.get("config") or {}).items():
            config[_qualify(key, project_name)] = _config_text(value)
    config[f"{project_name}:lambdaArchitecture"] = machine_architecture()
    config[f"{project_name}:lambdaRuntime"] = f"python3.{sys.version_info.minor}"
    return config


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise RealizeError(f"no Pulumi.yaml in {path.parent}: pass --program DIR")
    loaded = yaml.safe_load(path.read_text()) or {}
    if not isinstance(loaded, dict):
        raise RealizeError(f"{path} is not a YAML mapping")
    return loaded


def _qualify(key: str, project: str) -> str:
    return key if ":" in key else f"{project}:{key}"


def _config_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _random_id(length: int = 10) -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=length))


def _auto_name(name: str) -> str:
    # Pulumi's auto-naming: the logical name plus a random suffix.
    return f"{name}-{_random_id(7)}"


def _integral(value: Any) -> Any:
    """Turn whole floats back into ints: Pulumi's wire format has only floats, boto3 wants ints."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    return value


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


class Realizer(pulumi.runtime.Mocks):
    """Pulumi mocks that create the program's resources locally.

    Args:
        aws: The started `EmbeddedAws`.
        program_dir: The Pulumi project directory (archive paths are relative to it).
        unpack_dir: Where Lambda archives are unpacked.
    """

    def __init__(self, aws: Any, program_dir: Path, unpack_dir: Path) -> None:
        self.aws = aws
        self.region: str = aws.region
        self.program_dir = program_dir
        self.unpack_dir = unpack_dir
        self.functions: dict[str, FunctionSpec] = {}
        self._function_arns: dict[str, str] = {}  # arn → name
        self.apis: dict[str, dict[str, Any]] = {}
        self._api_resource_names: dict[str, str] = {}  # api id → the program's resource name
        self.integrations: dict[str, dict[str, Any]] = {}
        self.authorizers: dict[str, dict[str, Any]] = {}
        self.routes: list[dict[str, Any]] = []
        self.stages: list[dict[str, Any]] = []
        self.permissions: list[InvokePermission] = []
        self.resources: list[tuple[str, str]] = []
        self.unsupported: list[str] = []
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        # The region's API Gateway account settings: unset, as on a new account, until the
        # program sets them.
        self.api_gateway_account: dict[str, Any] = {}

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.aws.client(service)
        return self._clients[service]

    # --- pulumi.runtime.Mocks ---------------------------------------------------------------

    def new_resource(self, args: Any) -> tuple[str | None, dict[str, Any]]:
        """Create one resource; return its id and output properties (Pulumi's wire names)."""
        # Pulumi registers resources from a thread pool; moto and our tables want one at a time.
        with self._lock:
            if args.resource_id and args.custom is None:  # `Resource.get`: read what exists
                return self._read(args.typ, args.name, args.resource_id)
            if not args.custom or args.typ.startswith("pulumi:providers:"):
                return None, {}
            self.resources.append((args.typ, args.name))
            try:
                inputs = _integral(dict(args.inputs))
                realize = self._realizers().get(args.typ)
                if realize is not None:
                    return realize(args.name, inputs)
                if args.typ in _RECORDED:
                    return self._record(args.typ, args.name, inputs)
                self.unsupported.append(f"{args.typ} ({args.name})")
            except RealizeError as error:
                self.failures.append(f"{args.name}: {error}")
            except Exception as error:  # moto refusing an input: report it against the resource
                detail = " ".join(str(error).split())
                self.failures.append(f"{args.typ} ({args.name}): {detail}")
            return f"{args.name}-unrealized", dict(args.inputs)

    def call(self, args: Any) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        """Answer data-source invokes with this local account and region."""
        token = args.token
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            arn = f"arn:aws:iam::{ACCOUNT_ID}:user/local"
            return {"accountId": ACCOUNT_ID, "arn": arn, "userId": "local", "id": ACCOUNT_ID}, []
        if token == "aws:index/getRegion:getRegion":
            return {
                "name": self.region,
                "region": self.region,
                "id": self.region,
                "description": self.region,
                "endpoint": f"ec2.{self.region}.amazonaws.com",
            }, []
        if token == "aws:index/getPartition:getPartition":
            return {
                "partition": "aws",
                "id": "aws",
                "dnsSuffix": "amazonaws.com",
                "reverseDnsPrefix": "com.amazonaws",
            }, []
        self.unsupported.append(f"{token} (data source)")
        return {}, []

    # --- realizers --------------------------------------------------------------------------

    def _realizers(self) -> dict[str, Any]:
        return {
            "aws:cognito/userPool:UserPool": self._user_pool,
            "aws:cognito/userPoolClient:UserPoolClient": self._user_pool_client,
            "aws:dynamodb/table:Table": self._table,
            "aws:lambda/function:Function": self._function,
            "aws:apigatewayv2/api:Api": self._api,
            "aws:apigatewayv2/authorizer:Authorizer": self._authorizer,
            "aws:apigatewayv2/integration:Integration": self._integration,
            "aws:apigatewayv2/route:Route": self._route,
            "aws:apigatewayv2/stage:Stage": self._stage,
            "aws:lambda/permission:Permission": self._permission,
        }

    def _user_pool(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        pool_name = inputs.get("name") or _auto_name(name)
        request: dict[str, Any] = {"PoolName": pool_name}
        for key, boto_key in (
            ("usernameAttributes", "UsernameAttributes"),
            ("aliasAttributes", "AliasAttributes"),
            ("autoVerifiedAttributes", "AutoVerifiedAttributes"),
            ("mfaConfiguration", "MfaConfiguration"),
            ("deletionProtection", "DeletionProtection"),
            ("userPoolTier", "UserPoolTier"),
        ):
            if inputs.get(key) is not None:
                request[boto_key] = inputs[key]
        policy = inputs.get("passwordPolicy")
        if policy:
            request["Policies"] = {
                "PasswordPolicy": _drop_none(
                    {
                        "MinimumLength": policy.get("minimumLength"),
                        "RequireUppercase": policy.get("requireUppercase"),
                        "RequireLowercase": policy.get("requireLowercase"),
                        "RequireNumbers": policy.get("requireNumbers"),
                        "RequireSymbols": policy.get("requireSymbols"),
                        "TemporaryPasswordValidityDays": policy.get(
                            "temporaryPasswordValidityDays"
                        ),
                    }
                )
            }
        admin = inputs.get("adminCreateUserConfig")
        if admin and admin.get("allowAdminCreateUserOnly") is not None:
            request["AdminCreateUserConfig"] = {
                "AllowAdminCreateUserOnly": admin["allowAdminCreateUserOnly"]
            }
        recovery = inputs.get("accountRecoverySetting")
        if recovery and recovery.get("recoveryMechanisms"):
            request["AccountRecoverySetting"] = {
                "RecoveryMechanisms": [
                    {"Name": item["name"], "Priority": item["priority"]}
                    for item in recovery["recoveryMechanisms"]
                ]
            }
        username = inputs.get("usernameConfiguration")
        if username and username.get("caseSensitive") is not None:
            request["UsernameConfiguration"] = {"CaseSensitive": username["caseSensitive"]}
        schemas = [_schema_attribute(schema) for schema in inputs.get("schemas") or []]
        if schemas:
            request["Schema"] = schemas
        pool = self._client("cognito-idp").create_user_pool(**request)["UserPool"]
        pool_id = pool["Id"]
        return pool_id, {
            **inputs,
            "id": pool_id,
            "name": pool_name,
            "arn": pool["Arn"],
            "endpoint": f"cognito-idp.{self.region}.amazonaws.com/{pool_id}",
            "creationDate": str(pool.get("CreationDate", "")),
            "estimatedNumberOfUsers": 0,
        }

    def _user_pool_client(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        client_name = inputs.get("name") or name
        request: dict[str, Any] = {"UserPoolId": inputs["userPoolId"], "ClientName": client_name}
        for key, boto_key in (
            ("generateSecret", "GenerateSecret"),
            ("explicitAuthFlows", "ExplicitAuthFlows"),
            ("accessTokenValidity", "AccessTokenValidity"),
            ("idTokenValidity", "IdTokenValidity"),
            ("refreshTokenValidity", "RefreshTokenValidity"),
            ("preventUserExistenceErrors", "PreventUserExistenceErrors"),
            ("enableTokenRevocation", "EnableTokenRevocation"),
            ("supportedIdentityProviders", "SupportedIdentityProviders"),
            ("readAttributes", "ReadAttributes"),
            ("writeAttributes", "WriteAttributes"),
            ("authSessionValidity", "AuthSessionValidity"),
        ):
            if inputs.get(key) is not None:
                request[boto_key] = inputs[key]
        units = inputs.get("tokenValidityUnits")
        if units:
            request["TokenValidityUnits"] = _drop_none(
                {
                    "AccessToken": units.get("accessToken"),
                    "IdToken": units.get("idToken"),
                    "RefreshToken": units.get("refreshToken"),
                }
            )
        client = self._client("cognito-idp").create_user_pool_client(**request)["UserPoolClient"]
        outputs = {**inputs, "id": client["ClientId"], "name": client_name}
        if client.get("ClientSecret"):
            outputs["clientSecret"] = client["ClientSecret"]
        return client["ClientId"], outputs

    def _table(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        table_name = inputs.get("name") or _auto_name(name)
        billing = inputs.get("billingMode") or "PROVISIONED"
        provisioned = billing == "PROVISIONED"
        key_schema = [{"AttributeName": inputs["hashKey"], "KeyType": "HASH"}]
        if inputs.get("rangeKey"):
            key_schema.append({"AttributeName": inputs["rangeKey"], "KeyType": "RANGE"})
        request: dict[str, Any] = {
            "TableName": table_name,
            "KeySchema": key_schema,
            "AttributeDefinitions": [
                {"AttributeName": item["name"], "AttributeType": item["type"]}
                for item in inputs.get("attributes") or []
            ],
            "BillingMode": billing,
        }
        if provisioned:
            request["ProvisionedThroughput"] = _throughput(inputs)
        indexes = []
        for index in inputs.get("globalSecondaryIndexes") or []:
            schema = [
                {"AttributeName": key["attributeName"], "KeyType": key["keyType"]}
                for key in index.get("keySchemas") or []
            ] or [{"AttributeName": index["hashKey"], "KeyType": "HASH"}] + (
                [{"AttributeName": index["rangeKey"], "KeyType": "RANGE"}]
                if index.get("rangeKey")
                else []
            )
            projection: dict[str, Any] = {"ProjectionType": index["projectionType"]}
            if index.get("nonKeyAttributes"):
                projection["NonKeyAttributes"] = index["nonKeyAttributes"]
            gsi: dict[str, Any] = {
                "IndexName": index["name"],
                "KeySchema": schema,
                "Projection": projection,
            }
            if provisioned:
                gsi["ProvisionedThroughput"] = _throughput(index)
            indexes.append(gsi)
        if indexes:
            request["GlobalSecondaryIndexes"] = indexes
        if inputs.get("deletionProtectionEnabled") is not None:
            request["DeletionProtectionEnabled"] = inputs["deletionProtectionEnabled"]
        dynamodb = self._client("dynamodb")
        table = dynamodb.create_table(**request)["TableDescription"]
        ttl = inputs.get("ttl")
        if ttl and ttl.get("enabled"):
            dynamodb.update_time_to_live(
                TableName=table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["attributeName"]},
            )
        return table_name, {
            **inputs,
            "id": table_name,
            "name": table_name,
            "arn": table["TableArn"],
            "billingMode": billing,
            "streamArn": table.get("LatestStreamArn", ""),
        }

    def _function(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        function_name = inputs.get("name") or _auto_name(name)
        runtime = inputs.get("runtime") or ""
        if not runtime.startswith("python3."):
            raise RealizeError(f"runtime {runtime!r}: the local cloud runs Python functions only")
        expected = f"python3.{sys.version_info.minor}"
        if runtime != expected:
            raise RealizeError(
                f"runtime {runtime!r}: the local cloud runs this interpreter's {expected}; "
                f"take the runtime from the config key lambdaRuntime, which the local stack "
                f"sets to {expected} (as this project's __main__.py does)"
            )
        # Lambda's default is x86_64; an archive for the other one holds wheels that won't load.
        architecture = (inputs.get("architectures") or ["x86_64"])[0]
        if architecture != machine_architecture():
            raise RealizeError(
                f"architecture {architecture!r}: this machine runs {machine_architecture()}; "
                f"take the architecture from the config key lambdaArchitecture, which the local "
                f"stack sets to {machine_architecture()} (as this project's __main__.py does)"
            )
        handler = inputs.get("handler")
        if not handler:
            raise RealizeError("no handler string")
        code_dir = self._code_dir(inputs.get("code"))
        arn = f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{function_name}"
        environment = (inputs.get("environment") or {}).get("variables") or {}
        self.functions[function_name] = FunctionSpec(
            name=function_name,
            handler=handler,
            code_dir=code_dir,
            timeout_seconds=float(inputs.get("timeout") or 3),
            memory_mb=int(inputs.get("memorySize") or 128),
            arn=arn,
            environment={key: str(value) for key, value in environment.items()},
        )
        self._function_arns[arn] = function_name
        invoke_arn = (
            f"arn:aws:apigateway:{self.region}:lambda:path/2015-03-31/functions/{arn}/invocations"
        )
        return function_name, {
            **inputs,
            "id": function_name,
            "name": function_name,
            "arn": arn,
            "invokeArn": invoke_arn,
            "qualifiedArn": f"{arn}:$LATEST",
            "qualifiedInvokeArn": invoke_arn.replace(arn, f"{arn}:$LATEST"),
            "version": "$LATEST",
            "timeout": inputs.get("timeout") or 3,
            "memorySize": inputs.get("memorySize") or 128,
        }

    def _code_dir(self, code: Any) -> Path:
        if isinstance(code, pulumi.FileArchive):
            path = Path(code.path)
            if not path.is_absolute():
                path = self.program_dir / path
            if path.is_dir():
                return path
            if path.suffix in (".zip", ".jar") and path.is_file():
                return unpack_archive(path, self.unpack_dir)
            raise RealizeError(f"code archive {path} is not a zip file or a directory")
        raise RealizeError(
            f"code of type {type(code).__name__}: the local cloud runs a FileArchive (zip or "
            "directory)"
        )

    def _api(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if inputs.get("protocolType") != "WEBSOCKET":
            raise RealizeError(f"protocol {inputs.get('protocolType')!r}: only WEBSOCKET APIs run")
        api_id = _random_id()
        api_name = inputs.get("name") or _auto_name(name)
        self.apis[api_id] = {**inputs, "name": api_name}
        self._api_resource_names[api_id] = name
        return api_id, {
            **inputs,
            "id": api_id,
            "name": api_name,
            "apiEndpoint": f"wss://{api_domain(api_id, self.region)}",
            "arn": f"arn:aws:apigateway:{self.region}::/apis/{api_id}",
            "executionArn": f"arn:aws:execute-api:{self.region}:{ACCOUNT_ID}:{api_id}",
        }

    def _authorizer(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        authorizer_id = _random_id(6)
        self.authorizers[authorizer_id] = {**inputs, "name": inputs.get("name") or name}
        return authorizer_id, {**inputs, "id": authorizer_id}

    def _integration(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if inputs.get("integrationType") != "AWS_PROXY":
            raise RealizeError(
                f"integration type {inputs.get('integrationType')!r}: only AWS_PROXY runs locally"
            )
        integration_id = _random_id(7)
        self.integrations[integration_id] = inputs
        return integration_id, {**inputs, "id": integration_id}

    def _route(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        route_id = _random_id(7)
        self.routes.append(inputs)
        return route_id, {**inputs, "id": route_id}

    def _stage(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        stage_name = inputs.get("name") or name
        api_id = inputs["apiId"]
        self.stages.append({**inputs, "name": stage_name})
        execution_arn = f"arn:aws:execute-api:{self.region}:{ACCOUNT_ID}:{api_id}/{stage_name}"
        return stage_name, {
            **inputs,
            "id": stage_name,
            "name": stage_name,
            "arn": f"arn:aws:apigateway:{self.region}::/apis/{api_id}/stages/{stage_name}",
            "executionArn": execution_arn,
            "invokeUrl": f"wss://{api_domain(api_id, self.region)}/{stage_name}",
        }

    def _permission(self, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        # `function` may be a name, an ARN, or a qualified ARN; Lambda accepts all three.
        function = str(inputs.get("function") or "")
        if function.startswith("arn:"):
            function = function.split(":function:", 1)[-1].split(":", 1)[0]
        self.permissions.append(
            InvokePermission(
                function_name=function,
                action=str(inputs.get("action") or ""),
                principal=str(inputs.get("principal") or ""),
                source_arn=inputs.get("sourceArn") or None,
            )
        )
        statement_id = inputs.get("statementId") or _auto_name(name)
        return statement_id, {**inputs, "id": statement_id, "statementId": statement_id}

    def _read(self, typ: str, name: str, resource_id: str) -> tuple[str, dict[str, Any]]:
        if typ == "aws:apigateway/account:Account":
            return resource_id, dict(self.api_gateway_account)
        self.unsupported.append(f"{typ} ({name}, read)")
        return resource_id, {}

    def _record(self, typ: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if typ == "aws:apigateway/account:Account":
            self.api_gateway_account = _drop_none(
                {"cloudwatchRoleArn": inputs.get("cloudwatchRoleArn")}
            )
            return ACCOUNT_ID, {**inputs, "id": ACCOUNT_ID}
        resource_name = inputs.get("name") or _auto_name(name)
        outputs = {**inputs, "id": resource_name, "name": resource_name}
        if typ == "aws:iam/role:Role":
            outputs["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:role/{resource_name}"
            outputs["uniqueId"] = f"AROA{_random_id(16).upper()}"
        elif typ == "aws:iam/policy:Policy":
            outputs["arn"] = f"arn:aws:iam::{ACCOUNT_ID}:policy/{resource_name}"
        elif typ == "aws:cloudwatch/logGroup:LogGroup":
            outputs["arn"] = f"arn:aws:logs:{self.region}:{ACCOUNT_ID}:log-group:{resource_name}"
        elif typ == "aws:iam/rolePolicy:RolePolicy":
            outputs["id"] = f"{inputs.get('role')}:{resource_name}"
        return outputs["id"], outputs

    # --- after the program ran --------------------------------------------------------------

    def api_specs(self, limits: Limits) -> list[ApiSpec]:
        """Assemble each WebSocket API the program declares for a gateway of its own.

        Ordered by the APIs' resource names: resources register from a thread pool, so
        declaration order is not stable, and each API's port follows from its place.

        Raises:
            RealizeError: No API, an API without exactly one stage, a route without a Lambda
                integration, an authorizer API Gateway would not run.
        """
        if not self.apis:
            raise RealizeError("the program declares no WebSocket API: nothing to serve")
        order = sorted(self.apis, key=lambda api_id: self._api_resource_names[api_id])
        return [self._api_spec(api_id, limits) for api_id in order]

    def _api_spec(self, api_id: str, limits: Limits) -> ApiSpec:
        api = self.apis[api_id]
        stages = [stage for stage in self.stages if stage["apiId"] == api_id]
        if len(stages) != 1:
            raise RealizeError(f"API {api['name']} has {len(stages)} stages; expected one")
        routes: dict[str, RouteSpec] = {}
        connect_authorizer: AuthorizerSpec | None = None
        authorizer_id: str | None = None
        for route in self.routes:
            if route.get("apiId") != api_id:
                continue
            key = route["routeKey"]
            target = route.get("target") or ""
            if not target.startswith("integrations/"):
                raise RealizeError(f"route {key!r} has no integration target")
            integration = self.integrations.get(target.removeprefix("integrations/"))
            if integration is None:
                raise RealizeError(f"route {key!r} targets an unknown integration {target!r}")
            routes[key] = RouteSpec(key, self._function_for_uri(integration["integrationUri"]))
            if route.get("authorizationType") == "CUSTOM":
                if key != "$connect":
                    raise RealizeError(f"route {key!r}: API Gateway allows authorizers on $connect")
                authorizer_id = route.get("authorizerId", "")
                authorizer = self.authorizers.get(authorizer_id)
                if authorizer is None:
                    raise RealizeError("$connect names an unknown authorizer")
                if authorizer.get("authorizerType") != "REQUEST":
                    raise RealizeError("only REQUEST authorizers run on WebSocket APIs")
                connect_authorizer = AuthorizerSpec(
                    name=authorizer["name"],
                    function_name=self._function_for_uri(authorizer["authorizerUri"]),
                    identity_sources=tuple(authorizer.get("identitySources") or ()),
                )
        return ApiSpec(
            api_id=api_id,
            name=api["name"],
            stage=stages[0]["name"],
            route_selection_expression=api.get("routeSelectionExpression")
            or "$request.body.action",
            routes=routes,
            connect_authorizer=connect_authorizer,
            limits=limits,
            execution_arn=f"arn:aws:execute-api:{self.region}:{ACCOUNT_ID}:{api_id}",
            authorizer_id=authorizer_id,
        )

    def _function_for_uri(self, uri: str) -> str:
        # An invoke ARN: arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/ARN/invocations
        arn = uri.split("/functions/", 1)[-1].removesuffix("/invocations")
        arn = arn.removesuffix(":$LATEST")
        name = self._function_arns.get(arn)
        if name is None:
            raise RealizeError(f"integration URI {uri!r} names no function of this program")
        return name

    def check(self) -> None:
        """Raise `RealizeError` naming every resource that could not be realized."""
        problems = []
        if self.unsupported:
            # Sorted: resources register from a thread pool, so arrival order varies.
            problems.append("unsupported: " + ", ".join(sorted(self.unsupported)))
        problems.extend(self.failures)
        if problems:
            raise RealizeError("cannot run this program locally; " + "; ".join(problems))


def _schema_attribute(schema: Mapping[str, Any]) -> dict[str, Any]:
    attribute: dict[str, Any] = _drop_none(
        {
            "Name": schema.get("name"),
            "AttributeDataType": schema.get("attributeDataType"),
            "DeveloperOnlyAttribute": schema.get("developerOnlyAttribute"),
            "Mutable": schema.get("mutable"),
            "Required": schema.get("required"),
        }
    )
    strings = schema.get("stringAttributeConstraints")
    if strings:
        attribute["StringAttributeConstraints"] = _drop_none(
            {"MinLength": strings.get("minLength"), "MaxLength": strings.get("maxLength")}
        )
    numbers = schema.get("numberAttributeConstraints")
    if numbers:
        attribute["NumberAttributeConstraints"] = _drop_none(
            {"MinValue": numbers.get("minValue"), "MaxValue": numbers.get("maxValue")}
        )
    return attribute


def _throughput(inputs: Mapping[str, Any]) -> dict[str, int]:
    return {
        "ReadCapacityUnits": int(inputs.get("readCapacity") or 1),
        "WriteCapacityUnits": int(inputs.get("writeCapacity") or 1),
    }


@contextmanager
def _program_context(program_dir: Path) -> Iterator[None]:
    """Run as `pulumi up` does: from the project directory, with it importable."""
    previous_cwd = os.getcwd()
    sys.path.insert(0, str(program_dir))
    os.chdir(program_dir)
    try:
        yield
    finally:
        os.chdir(previous_cwd)
        sys.path.remove(str(program_dir))


def _run_main(main: Path) -> None:
    runpy.run_path(str(main), run_name="__main__")


def realize_program(
    program_dir: Path, aws: Any, *, unpack_dir: Path, limits: Limits | None = None
) -> RealizedStack:
    """Run the Pulumi program in `program_dir` under mocks that realize its resources.

    Call once per process: Pulumi's runtime settings are global.

    Args:
        program_dir: Holds `Pulumi.yaml` and `__main__.py`.
        aws: The started `EmbeddedAws`.
        unpack_dir: Where Lambda archives are unpacked.
        limits: The gateway's limits (AWS's defaults when None).

    Returns:
        The stack's outputs (resolved) and what the gateway and workers need.

    Raises:
        RealizeError: The program failed, or declares something the local cloud cannot run.
    """
    from pulumi.runtime import settings
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    program_dir = program_dir.resolve()
    project = str(_read_yaml(program_dir / "Pulumi.yaml").get("name", "project"))
    main = program_dir / "__main__.py"
    if not main.is_file():
        raise RealizeError(f"no __main__.py in {program_dir}")
    realizer = Realizer(aws, program_dir, unpack_dir)
    pulumi.runtime.set_all_config(local_config(program_dir))
    pulumi.runtime.set_mocks(realizer, project=project, stack="local", preview=False)
    with _program_context(program_dir):
        try:
            _sync_await(run_pulumi_func(lambda: _run_main(main)))
        except RealizeError:
            raise
        except Exception as error:
            raise RealizeError(f"the program failed: {type(error).__name__}: {error}") from error
    realizer.check()

    stack = settings.get_root_resource()
    declared = dict(getattr(stack, "outputs", {}) or {})

    async def resolve() -> dict[str, Any]:
        return {
            key: await pulumi.Output.from_input(value).future() for key, value in declared.items()
        }

    outputs = _sync_await(resolve())
    return RealizedStack(
        outputs=outputs,
        apis=realizer.api_specs(limits or Limits()),
        functions=realizer.functions,
        region=aws.region,
        permissions=realizer.permissions,
        resources=realizer.resources,
    )
