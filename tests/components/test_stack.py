"""The Pulumi program (`__main__.py`) under mocks: its config, its wiring and its outputs."""

from __future__ import annotations

import json
import runpy
from collections.abc import Callable
from pathlib import Path

import pulumi
import pytest

from tests.components.fakes import REGION, Deployment, declared_so_far, resolved

PROGRAM = Path(__file__).resolve().parents[2] / "__main__.py"

FUNCTION = "aws:lambda/function:Function"
STAGE = "aws:apigatewayv2/stage:Stage"
AUTHORIZER = "aws:apigatewayv2/authorizer:Authorizer"


def run_program() -> None:
    runpy.run_path(str(PROGRAM), run_name="__main__")


def test_exports_the_stack_outputs(deploy: Callable[..., Deployment]) -> None:
    """The outputs keep the sample's names and point at what the program created."""
    deployment = deploy(run_program)

    outputs = {name: resolved(value) for name, value in deployment.outputs.items()}
    api_id = deployment.one("aws:apigatewayv2/api:Api", "api-api").resource_id
    pool = deployment.one("aws:cognito/userPool:UserPool", "auth-pool")
    client = deployment.one("aws:cognito/userPoolClient:UserPoolClient", "auth-web-client")
    table = deployment.one("aws:dynamodb/table:Table", "connections-table")
    assert outputs == {
        "region": REGION,
        "userPoolId": pool.resource_id,
        "userPoolWebClientId": client.resource_id,
        "webSocketEndpoint": f"wss://{api_id}.execute-api.{REGION}.amazonaws.com/prod",
        "managementEndpoint": f"https://{api_id}.execute-api.{REGION}.amazonaws.com/prod",
        "connectionTableName": table.state["name"],
        "alarmTopicArn": deployment.one("aws:sns/topic:Topic", "ops-alarms").state["arn"],
        "dashboardName": "wsauth-test-ops-dashboard",
    }


def test_functions_point_at_this_stacks_pool_client_and_table(
    deploy: Callable[..., Deployment],
) -> None:
    """The authorizer checks tokens of this pool and client; the websocket function writes
    this table, and its policy names this table and index."""
    deployment = deploy(run_program)
    pool = deployment.one("aws:cognito/userPool:UserPool", "auth-pool")
    client = deployment.one("aws:cognito/userPoolClient:UserPoolClient", "auth-web-client")
    table = deployment.one("aws:dynamodb/table:Table", "connections-table")

    authorizer_env = deployment.one(FUNCTION, "api-authorizer").inputs["environment"]["variables"]
    assert authorizer_env["USER_POOL_ID"] == pool.resource_id
    assert authorizer_env["APP_CLIENT_ID"] == client.resource_id
    websocket_env = deployment.one(FUNCTION, "api-websocket").inputs["environment"]["variables"]
    assert websocket_env["CONNECTION_TABLE_NAME"] == table.state["name"]
    policy = json.loads(
        deployment.one("aws:iam/rolePolicy:RolePolicy", "api-websocket-policy").inputs["policy"]
    )
    resources = {r for statement in policy["Statement"] for r in statement["Resource"]}
    assert {table.state["arn"], f"{table.state['arn']}/index/userIdIndex"} <= resources


def test_makes_one_provider_call(deploy: Callable[..., Deployment]) -> None:
    """The only invoke is the account id that reads the region's API Gateway settings, which
    mocks and the local cloud answer."""
    deployment = deploy(run_program)

    assert deployment.resources
    assert deployment.calls == ["aws:index/getCallerIdentity:getCallerIdentity"]


def test_creates_the_four_components(deploy: Callable[..., Deployment]) -> None:
    """The stack is exactly one of each component (no domain configured), with the project's
    type tokens."""
    deployment = deploy(run_program)

    components = [(r.typ, r.name) for r in deployment.resources if r.typ.startswith("wsauth:")]
    assert sorted(components) == [
        ("wsauth:index:ApiMonitoring", "ops"),
        ("wsauth:index:AuthPool", "auth"),
        ("wsauth:index:ConnectionStore", "connections"),
        ("wsauth:index:SecuredWebSocketApi", "api"),
    ]


def test_defaults_when_no_config_is_set(deploy: Callable[..., Deployment]) -> None:
    """With no wsauth config, the stack gets the documented defaults."""
    deployment = deploy(run_program)

    authorizer_fn = deployment.one(FUNCTION, "api-authorizer")
    assert authorizer_fn.inputs["architectures"] == ["arm64"]
    assert authorizer_fn.inputs["runtime"] == "python3.13"
    assert authorizer_fn.inputs["environment"]["variables"]["TOKEN_USE"] == "id"
    assert authorizer_fn.inputs["environment"]["variables"]["TOKEN_QUERY_KEY"] == "idToken"
    stage = deployment.one(STAGE, "api-stage")
    assert stage.inputs["name"] == "prod"
    assert "accessLogSettings" in stage.inputs
    pool = deployment.one("aws:cognito/userPool:UserPool", "auth-pool")
    assert pool.inputs["deletionProtection"] == "INACTIVE"
    assert pool.inputs["adminCreateUserConfig"]["allowAdminCreateUserOnly"] is False


def test_config_flows_into_the_components(deploy: Callable[..., Deployment]) -> None:
    """Every wsauth config key reaches the setting it names."""
    deployment = deploy(
        run_program,
        config={
            "wsauth:stageName": "beta_2",
            "wsauth:tokenUse": "access",
            "wsauth:tokenSource": "protocol",
            "wsauth:tokenQueryKey": "jwt",
            "wsauth:clockLeewaySeconds": "5",
            "wsauth:lambdaArchitecture": "x86_64",
            "wsauth:lambdaRuntime": "python3.11",
            "wsauth:logRetentionDays": "7",
            "wsauth:throttlingBurstLimit": "50",
            "wsauth:throttlingRateLimit": "12.5",
            "wsauth:accessLogging": "false",
            "wsauth:selfSignUp": "false",
            "wsauth:deletionProtection": "true",
        },
    )

    authorizer_fn = deployment.one(FUNCTION, "api-authorizer")
    variables = authorizer_fn.inputs["environment"]["variables"]
    assert (variables["TOKEN_USE"], variables["TOKEN_SOURCE"]) == ("access", "protocol")
    assert (variables["TOKEN_QUERY_KEY"], variables["CLOCK_LEEWAY_SECONDS"]) == ("jwt", "5")
    for function in deployment.of_type(FUNCTION):
        assert function.inputs["architectures"] == ["x86_64"]
        assert function.inputs["runtime"] == "python3.11"
    for log_group in deployment.of_type("aws:cloudwatch/logGroup:LogGroup"):
        assert log_group.inputs["retentionInDays"] == 7
    stage = deployment.one(STAGE, "api-stage")
    assert stage.inputs["name"] == "beta_2"
    assert stage.inputs["defaultRouteSettings"]["throttlingBurstLimit"] == 50
    assert stage.inputs["defaultRouteSettings"]["throttlingRateLimit"] == 12.5
    assert "accessLogSettings" not in stage.inputs
    authorizer = deployment.one(AUTHORIZER, "api-authorizer")
    assert authorizer.inputs["identitySources"] == ["route.request.header.Sec-WebSocket-Protocol"]
    pool = deployment.one("aws:cognito/userPool:UserPool", "auth-pool")
    assert pool.inputs["deletionProtection"] == "ACTIVE"
    assert pool.inputs["adminCreateUserConfig"]["allowAdminCreateUserOnly"] is True
    table = deployment.one("aws:dynamodb/table:Table", "connections-table")
    assert table.inputs["deletionProtectionEnabled"] is True
    outputs = {name: resolved(value) for name, value in deployment.outputs.items()}
    assert outputs["webSocketEndpoint"].endswith("/beta_2")
    assert outputs["managementEndpoint"].endswith("/beta_2")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("tokenUse", "refresh", "token_use must be one of access, id"),
        ("tokenSource", "cookie", "token_source must be one of protocol, query"),
        ("tokenQueryKey", "id token", "token_query_key must be"),
        ("lambdaArchitecture", "aarch64", "lambda_architecture must be one of arm64, x86_64"),
        ("lambdaRuntime", "python3.10", "lambda_runtime must be one of python3.11"),
        ("logRetentionDays", "8", "log_retention_days must be one of 0, 1, 3, 5, 7, 14"),
        ("stageName", "prod/v1", "stage_name must be 1 to 128 letters"),
        ("stageName", "", "stage_name must be 1 to 128 letters"),
        ("throttlingBurstLimit", "-1", "throttling_burst_limit must be an integer from 0"),
        ("throttlingRateLimit", "-0.5", "throttling_rate_limit must be a number from 0"),
        ("clockLeewaySeconds", "3600", "clock_leeway_seconds must be an integer from 0 to 300"),
        ("logRetentionDays", "thirty", "wsauth:logRetentionDays"),
        ("deletionProtection", "maybe", "wsauth:deletionProtection"),
    ],
)
def test_bad_config_is_refused_before_any_resource(
    deploy: Callable[..., Deployment], key: str, value: str, message: str
) -> None:
    """A bad value stops the program with a message naming the setting, and nothing is declared."""
    with pytest.raises((ValueError, pulumi.ConfigTypeError)) as refused:
        deploy(run_program, config={f"wsauth:{key}": value})

    assert message in str(refused.value)
    assert declared_so_far() == []
