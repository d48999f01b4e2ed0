"""SecuredWebSocketApi under Pulumi mocks: routes, authorizer, stage, functions, IAM, validation."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from pulumi_wsauth import SecuredWebSocketApi, SecuredWebSocketApiArgs
from pulumi_wsauth.naming import physical_name as _physical_name
from tests.components.fakes import (
    ACCOUNT,
    PROJECT,
    REGION,
    STACK,
    Declared,
    Deployment,
    declared_so_far,
    resolved,
)

API = "aws:apigatewayv2/api:Api"
AUTHORIZER = "aws:apigatewayv2/authorizer:Authorizer"
INTEGRATION = "aws:apigatewayv2/integration:Integration"
ROUTE = "aws:apigatewayv2/route:Route"
STAGE = "aws:apigatewayv2/stage:Stage"
FUNCTION = "aws:lambda/function:Function"
PERMISSION = "aws:lambda/permission:Permission"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"

POOL_ID = f"{REGION}_AbCdEf123"
CLIENT_ID = "4example0client0id0abcdefg"
TABLE_NAME = "connections-1234567"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE_NAME}"
INDEX_ARN = f"{TABLE_ARN}/index/userIdIndex"
EXPIRY_INDEX_ARN = f"{TABLE_ARN}/index/expiryIndex"
STREAM_ARN = f"{TABLE_ARN}/stream/2026-11-27T00:00:00.000"
POOL_ARN = f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{POOL_ID}"


def build(
    seen: dict[str, Any] | None = None,
    extra: Callable[[SecuredWebSocketApi], None] | None = None,
    **settings: Any,
) -> Callable[[], None]:
    """A program declaring one SecuredWebSocketApi wired to fixed pool, client and table."""

    def program() -> None:
        args: dict[str, Any] = {
            "user_pool_id": POOL_ID,
            "app_client_ids": [CLIENT_ID],
            "connection_table_name": TABLE_NAME,
            "connection_table_arn": TABLE_ARN,
            "user_id_index_arn": INDEX_ARN,
            "expiry_index_arn": EXPIRY_INDEX_ARN,
            "connection_table_stream_arn": STREAM_ARN,
            "user_pool_arn": POOL_ARN,
            **settings,
        }
        api = SecuredWebSocketApi("ws", SecuredWebSocketApiArgs(**args))  # type: ignore[typeddict-item]
        if seen is not None:
            seen["api"] = api
        if extra is not None:
            extra(api)

    return program


def execution_arn(deployment: Deployment) -> str:
    return str(deployment.one(API, "ws-api").state["executionArn"])


def routes_by_key(deployment: Deployment) -> dict[str, Declared]:
    return {route.inputs["routeKey"]: route for route in deployment.of_type(ROUTE)}


def policy_of(deployment: Deployment, role_name: str) -> dict[str, Any]:
    document = deployment.one(ROLE_POLICY, f"ws-{role_name}-policy").inputs["policy"]
    return json.loads(document)


def statements(document: dict[str, Any]) -> list[tuple[list[str], list[str]]]:
    """(actions, resources) of each statement, lists either way."""
    result = []
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement and "NotResource" not in statement
        actions = statement["Action"]
        resources = statement["Resource"]
        result.append(
            (
                [actions] if isinstance(actions, str) else actions,
                [resources] if isinstance(resources, str) else resources,
            )
        )
    return result


# --- the API, its routes and authorizer ------------------------------------------------------


def test_api_is_websocket_routed_by_action(deploy: Callable[..., Deployment]) -> None:
    """A WebSocket API that selects routes by the message's `action`."""
    api = deploy(build()).one(API, "ws-api").inputs

    assert api["protocolType"] == "WEBSOCKET"
    assert api["routeSelectionExpression"] == "$request.body.action"
    assert api["name"] == f"{PROJECT}-{STACK}-ws-api"


def test_authorizer_is_a_request_authorizer_on_the_authorizer_function(
    deploy: Callable[..., Deployment],
) -> None:
    """A REQUEST authorizer of this API invokes the authorizer function."""
    deployment = deploy(build())
    authorizer = deployment.one(AUTHORIZER, "ws-authorizer").inputs
    function = deployment.one(FUNCTION, "ws-authorizer")

    assert authorizer["apiId"] == deployment.one(API, "ws-api").resource_id
    assert authorizer["authorizerType"] == "REQUEST"
    assert authorizer["authorizerUri"] == function.state["invokeArn"]
    # HTTP-API-only settings would make the AWS API refuse the authorizer.
    assert "authorizerPayloadFormatVersion" not in authorizer
    assert "enableSimpleResponses" not in authorizer


@pytest.mark.parametrize(
    ("settings", "identity_source"),
    [
        ({}, "route.request.querystring.idToken"),
        ({"token_query_key": "access_token"}, "route.request.querystring.access_token"),
        ({"token_source": "protocol"}, "route.request.header.Sec-WebSocket-Protocol"),
        (
            {"token_source": "protocol", "token_query_key": "jwt"},
            "route.request.header.Sec-WebSocket-Protocol",
        ),
    ],
)
def test_identity_source_follows_the_token_source(
    deploy: Callable[..., Deployment], settings: dict[str, Any], identity_source: str
) -> None:
    """The authorizer reads the token where the clients put it."""
    authorizer = deploy(build(**settings)).one(AUTHORIZER, "ws-authorizer")

    assert authorizer.inputs["identitySources"] == [identity_source]


def test_only_connect_is_authorized(deploy: Callable[..., Deployment]) -> None:
    """`$connect` carries the authorizer; no other route does (API Gateway allows no other)."""
    deployment = deploy(build())
    routes = routes_by_key(deployment)
    authorizer_id = deployment.one(AUTHORIZER, "ws-authorizer").resource_id

    assert set(routes) == {
        "$connect",
        "$disconnect",
        "$default",
        "refreshToken",
        "signOutEverywhere",
    }
    assert routes["$connect"].inputs["authorizationType"] == "CUSTOM"
    assert routes["$connect"].inputs["authorizerId"] == authorizer_id
    for key in ("$disconnect", "$default", "refreshToken", "signOutEverywhere"):
        assert routes[key].inputs["authorizationType"] == "NONE"
        assert "authorizerId" not in routes[key].inputs


def test_routes_proxy_to_the_websocket_function(deploy: Callable[..., Deployment]) -> None:
    """Every built-in route targets one AWS_PROXY integration of the websocket function."""
    deployment = deploy(build())
    integration = deployment.one(INTEGRATION, "ws-websocket-integration")
    function = deployment.one(FUNCTION, "ws-websocket")

    assert integration.inputs["integrationType"] == "AWS_PROXY"
    assert integration.inputs["integrationMethod"] == "POST"
    assert integration.inputs["integrationUri"] == function.state["invokeArn"]
    assert integration.inputs["apiId"] == deployment.one(API, "ws-api").resource_id
    for route in routes_by_key(deployment).values():
        assert route.inputs["target"] == f"integrations/{integration.resource_id}"
        assert route.inputs["apiId"] == integration.inputs["apiId"]


def test_route_keys_add_routes_on_the_websocket_function(
    deploy: Callable[..., Deployment],
) -> None:
    """Extra route keys are served by the websocket function, with their own permission."""
    deployment = deploy(build(route_keys=["sendmessage", "chat.join"]))
    routes = routes_by_key(deployment)
    integration = deployment.one(INTEGRATION, "ws-websocket-integration")
    permissions = {p.inputs.get("sourceArn"): p for p in deployment.of_type(PERMISSION)}

    for key in ("sendmessage", "chat.join"):
        assert routes[key].inputs["target"] == f"integrations/{integration.resource_id}"
        assert routes[key].inputs["authorizationType"] == "NONE"
        permission = permissions[f"{execution_arn(deployment)}/prod/{key}"]
        assert permission.inputs["function"] == "wsauth-test-ws-websocket"


def test_add_route_wires_another_function(deploy: Callable[..., Deployment]) -> None:
    """`add_route` gives the caller's function its own integration, route and permission."""

    def add_sender(api: SecuredWebSocketApi) -> None:
        function = aws.lambda_.Function(
            "sender",
            name="sender-fn",
            role="arn:aws:iam::123456789012:role/sender",
            runtime="python3.13",
            handler="app.handler",
            code=pulumi.AssetArchive({}),
        )
        api.add_route("sendmessage", function)

    deployment = deploy(build(extra=add_sender))
    sender = deployment.one(FUNCTION, "sender")
    integration = deployment.one(INTEGRATION, "ws-action-sendmessage-integration")
    route = routes_by_key(deployment)["sendmessage"]
    permission = deployment.one(PERMISSION, "ws-action-sendmessage-invoke").inputs

    assert integration.inputs["integrationType"] == "AWS_PROXY"
    assert integration.inputs["integrationUri"] == sender.state["invokeArn"]
    assert route.inputs["target"] == f"integrations/{integration.resource_id}"
    assert route.inputs["authorizationType"] == "NONE"
    assert permission["function"] == "sender-fn"
    assert permission["sourceArn"] == f"{execution_arn(deployment)}/prod/sendmessage"


@pytest.mark.parametrize(
    ("route_keys", "added", "message"),
    [
        ([], "$default", "route_key must be 1 to 128 letters"),
        ([], "", "route_key must be"),
        ([], "send message", "route_key must be"),
        (["sendmessage"], "sendmessage", "route_key 'sendmessage' is already routed"),
    ],
)
def test_add_route_refuses_bad_or_taken_keys(
    deploy: Callable[..., Deployment], route_keys: list[str], added: str, message: str
) -> None:
    """Built-in, malformed and already routed keys are refused."""

    def add(api: SecuredWebSocketApi) -> None:
        function = aws.lambda_.Function(
            "other",
            name="other-fn",
            role="arn:aws:iam::123456789012:role/other",
            runtime="python3.13",
            handler="app.handler",
            code=pulumi.AssetArchive({}),
        )
        api.add_route(added, function)

    with pytest.raises(ValueError, match="route_key") as refused:
        deploy(build(extra=add, route_keys=route_keys))

    assert message in str(refused.value)


def test_invoke_permissions_are_scoped_to_this_api(deploy: Callable[..., Deployment]) -> None:
    """API Gateway may invoke each function only for this API's stage and routes, or for its
    own authorizer (here without sessions; test_session_resources has the sweeper's)."""
    deployment = deploy(build(session_expiry="off"))
    arn = execution_arn(deployment)
    authorizer_id = deployment.one(AUTHORIZER, "ws-authorizer").resource_id
    granted = sorted(
        (p.inputs["function"], p.inputs["sourceArn"])
        for p in deployment.of_type(PERMISSION)
        if p.inputs["principal"] == "apigateway.amazonaws.com"
    )

    assert granted == sorted(
        [
            ("wsauth-test-ws-authorizer", f"{arn}/authorizers/{authorizer_id}"),
            ("wsauth-test-ws-websocket", f"{arn}/prod/$connect"),
            ("wsauth-test-ws-websocket", f"{arn}/prod/$disconnect"),
            ("wsauth-test-ws-websocket", f"{arn}/prod/$default"),
        ]
    )
    for permission in deployment.of_type(PERMISSION):
        assert permission.inputs["action"] == "lambda:InvokeFunction"
    # The only other principal: the minute job's schedule.
    (scheduled,) = (
        p
        for p in deployment.of_type(PERMISSION)
        if p.inputs["principal"] != ("apigateway.amazonaws.com")
    )
    assert scheduled.inputs["principal"] == "events.amazonaws.com"
    assert scheduled.inputs["function"] == "wsauth-test-ws-sweeper"


# --- the stage ---------------------------------------------------------------------------------


def test_stage_deploys_itself_with_throttling(deploy: Callable[..., Deployment]) -> None:
    """The stage redeploys on every change and throttles by default."""
    deployment = deploy(build())
    stage = deployment.one(STAGE, "ws-stage").inputs

    assert stage["name"] == "prod"
    assert stage["apiId"] == deployment.one(API, "ws-api").resource_id
    assert stage["autoDeploy"] is True
    assert stage["defaultRouteSettings"] == {
        "throttlingBurstLimit": 200,
        "throttlingRateLimit": 100,
        "loggingLevel": "OFF",
        "dataTraceEnabled": False,
        "detailedMetricsEnabled": False,
    }


def test_stage_waits_for_its_routes(deploy: Callable[..., Deployment]) -> None:
    """The first automatic deployment happens once every route exists."""
    deployment = deploy(build())
    stage = deployment.one(STAGE, "ws-stage")

    for route in deployment.of_type(ROUTE):
        assert route.urn in stage.dependencies


def test_access_logs_are_json_in_their_own_log_group(deploy: Callable[..., Deployment]) -> None:
    """Access logs go as JSON lines to a log group with retention, and never hold the token."""
    deployment = deploy(build(log_retention_days=90))
    stage = deployment.one(STAGE, "ws-stage").inputs
    log_group = deployment.one(LOG_GROUP, "ws-access-logs")
    api_id = deployment.one(API, "ws-api").resource_id

    assert log_group.inputs["name"] == f"/aws/apigateway/{api_id}/prod"
    assert log_group.inputs["retentionInDays"] == 90
    assert stage["accessLogSettings"]["destinationArn"] == log_group.state["arn"]
    record = json.loads(stage["accessLogSettings"]["format"])
    assert record["requestId"] == "$context.requestId"
    assert record["connectionId"] == "$context.connectionId"
    assert record["routeKey"] == "$context.routeKey"
    assert record["status"] == "$context.status"
    assert all(value.startswith("$context.") for value in record.values())
    assert not any("querystring" in value.lower() for value in record.values())


def test_access_logging_can_be_turned_off(deploy: Callable[..., Deployment]) -> None:
    """For accounts without API Gateway's CloudWatch role: no access log group, no settings."""
    deployment = deploy(build(access_logging=False, session_expiry="off"))

    assert "accessLogSettings" not in deployment.one(STAGE, "ws-stage").inputs
    assert sorted(g.name for g in deployment.of_type(LOG_GROUP)) == [
        "ws-authorizer-logs",
        "ws-counter-logs",
        "ws-sweeper-logs",
        "ws-websocket-logs",
    ]


# --- the functions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role_name", "handler", "memory", "timeout"),
    [
        ("authorizer", "handlers.authorizer.handler", 512, 5),
        ("websocket", "handlers.websocket.handler", 256, 10),
    ],
)
def test_functions_are_sized_on_purpose(
    deploy: Callable[..., Deployment], role_name: str, handler: str, memory: int, timeout: int
) -> None:
    """Each function has its handler string, arm64, the runtime, and its memory and timeout."""
    function = deploy(build()).one(FUNCTION, f"ws-{role_name}").inputs

    assert function["name"] == f"wsauth-test-ws-{role_name}"
    assert function["handler"] == handler
    assert function["architectures"] == ["arm64"]
    assert function["runtime"] == "python3.13"
    assert (function["memorySize"], function["timeout"]) == (memory, timeout)


def test_both_functions_run_one_archive_built_for_their_platform(
    deploy: Callable[..., Deployment], lambda_archive: list[tuple[str, str]]
) -> None:
    """The archive is built once, for the configured architecture and runtime."""
    deployment = deploy(build(lambda_architecture="x86_64", lambda_runtime="python3.12"))
    codes = {f.name: f.inputs["code"] for f in deployment.of_type(FUNCTION)}

    assert lambda_archive == [("x86_64", "python3.12")]
    assert isinstance(codes["ws-authorizer"], pulumi.FileArchive)
    assert codes["ws-authorizer"].path == codes["ws-websocket"].path
    for function in deployment.of_type(FUNCTION):
        assert function.inputs["architectures"] == ["x86_64"]
        assert function.inputs["runtime"] == "python3.12"


@pytest.mark.parametrize("role_name", ["authorizer", "websocket"])
def test_each_function_logs_to_its_own_group_created_first(
    deploy: Callable[..., Deployment], role_name: str
) -> None:
    """`/aws/lambda/<name>` with retention exists before the function, which logs to it."""
    deployment = deploy(build(log_retention_days=14))
    function = deployment.one(FUNCTION, f"ws-{role_name}")
    log_group = deployment.one(LOG_GROUP, f"ws-{role_name}-logs")

    assert log_group.inputs["name"] == f"/aws/lambda/{function.inputs['name']}"
    assert log_group.inputs["retentionInDays"] == 14
    assert function.inputs["loggingConfig"] == {
        "logFormat": "Text",
        "logGroup": log_group.inputs["name"],
    }
    assert log_group.urn in function.dependencies
    assert deployment.one(ROLE_POLICY, f"ws-{role_name}-policy").urn in function.dependencies


def test_authorizer_environment_names_the_pool_and_clients(
    deploy: Callable[..., Deployment],
) -> None:
    """The authorizer learns the pool, the clients (comma-joined) and the token rules."""
    deployment = deploy(
        build(
            app_client_ids=[CLIENT_ID, "second0client"],
            token_use="access",
            token_source="protocol",
            token_query_key="jwt",
            clock_leeway_seconds=30,
        )
    )
    variables = deployment.one(FUNCTION, "ws-authorizer").inputs["environment"]["variables"]

    assert variables == {
        "USER_POOL_ID": POOL_ID,
        "APP_CLIENT_ID": f"{CLIENT_ID},second0client",
        "TOKEN_USE": "access",
        "TOKEN_QUERY_KEY": "jwt",
        "TOKEN_SOURCE": "protocol",
        "CLOCK_LEEWAY_SECONDS": "30",
    }


def test_websocket_environment_names_the_table(deploy: Callable[..., Deployment]) -> None:
    """The websocket function learns the table and how long items outlive a lost disconnect
    (without sessions; with them it also gets the token rules, see test_session_resources)."""
    deployment = deploy(build(session_expiry="off"))
    variables = deployment.one(FUNCTION, "ws-websocket").inputs["environment"]["variables"]
    api_id = deployment.one(API, "ws-api").resource_id

    assert variables == {
        "CONNECTION_TABLE_NAME": TABLE_NAME,
        "CONNECTION_TTL_SECONDS": "10800",
        "SESSION_EXPIRY": "off",
        "MAX_CONNECTIONS_PER_USER": "10",
        # Never the event's domain: with a custom domain, @connections must stay on execute-api.
        "MANAGEMENT_ENDPOINT": f"https://{api_id}.execute-api.eu-west-1.amazonaws.com/prod",
    }


# --- IAM ---------------------------------------------------------------------------------------


def test_each_function_has_its_own_role_for_lambda_only(deploy: Callable[..., Deployment]) -> None:
    """One role per function, each assumable by Lambda alone, each attached to its function."""
    deployment = deploy(build(cloudwatch_role="external"))
    roles = {role.name: role for role in deployment.of_type(ROLE)}

    assert set(roles) == {
        "ws-authorizer-role",
        "ws-websocket-role",
        "ws-sweeper-role",
        "ws-counter-role",
    }
    for role_name in ("authorizer", "websocket", "sweeper", "counter"):
        role = roles[f"ws-{role_name}-role"]
        trust = json.loads(role.inputs["assumeRolePolicy"])
        assert trust["Statement"] == [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ]
        assert deployment.one(FUNCTION, f"ws-{role_name}").inputs["role"] == role.state["arn"]
        assert deployment.one(ROLE_POLICY, f"ws-{role_name}-policy").inputs["role"] == (
            role.resource_id
        )
    assert not deployment.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")


def test_authorizer_may_only_write_its_logs(deploy: Callable[..., Deployment]) -> None:
    """The authorizer's policy grants log writes to its own log group, and nothing else."""
    deployment = deploy(build())
    log_group_arn = deployment.one(LOG_GROUP, "ws-authorizer-logs").state["arn"]

    assert statements(policy_of(deployment, "authorizer")) == [
        (
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [log_group_arn, f"{log_group_arn}:log-stream:*"],
        )
    ]


def test_websocket_function_gets_exact_arns(deploy: Callable[..., Deployment]) -> None:
    """Items of this table, queries of its index, POST to this stage's connections, own logs
    (without sessions; with them, see test_session_resources)."""
    deployment = deploy(build(stage_name="live", session_expiry="off", max_connections_per_user=0))
    log_group_arn = deployment.one(LOG_GROUP, "ws-websocket-logs").state["arn"]
    arn = execution_arn(deployment)

    assert statements(policy_of(deployment, "websocket")) == [
        (["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem"], [TABLE_ARN]),
        (["dynamodb:Query"], [INDEX_ARN]),
        (["execute-api:ManageConnections"], [f"{arn}/live/POST/@connections/*"]),
        (
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [log_group_arn, f"{log_group_arn}:log-stream:*"],
        ),
    ]


# The only wildcards a policy may hold: connection ids and log stream names, which nobody can
# know in advance.
ALLOWED_WILDCARD_SUFFIXES = (
    "/POST/@connections/*",
    "/DELETE/@connections/*",
    "/GET/@connections/*",
    ":log-stream:*",
)


@pytest.mark.parametrize("role_name", ["authorizer", "websocket", "sweeper"])
def test_policies_hold_no_wildcards(deploy: Callable[..., Deployment], role_name: str) -> None:
    """No `*` in any action; in resources only as the last segment of connection or stream ids."""
    for actions, resources in statements(policy_of(deploy(build()), role_name)):
        for action in actions:
            assert "*" not in action and "?" not in action, action
        for resource in resources:
            assert resource.startswith("arn:aws:"), resource
            assert ":*:" not in resource and "::*" not in resource
            if "*" in resource:
                assert resource.endswith(ALLOWED_WILDCARD_SUFFIXES), resource
                assert resource.count("*") == 1, resource


# --- outputs and names -------------------------------------------------------------------------


def test_outputs_point_at_the_stage_and_functions(deploy: Callable[..., Deployment]) -> None:
    """`wss://` URL, management endpoint, function names, ids."""
    seen: dict[str, Any] = {}
    deployment = deploy(build(seen=seen, stage_name="v1"))
    api: SecuredWebSocketApi = seen["api"]
    api_id = deployment.one(API, "ws-api").resource_id
    host = f"{api_id}.execute-api.{REGION}.amazonaws.com"

    assert resolved(api.api_id) == api_id
    assert resolved(api.execution_arn) == execution_arn(deployment)
    assert resolved(api.stage_name) == "v1"
    assert resolved(api.websocket_url) == f"wss://{host}/v1"
    assert resolved(api.management_endpoint) == f"https://{host}/v1"
    assert resolved(api.authorizer_function_name) == "wsauth-test-ws-authorizer"
    assert resolved(api.websocket_function_name) == "wsauth-test-ws-websocket"


def test_children_belong_to_the_component(deploy: Callable[..., Deployment]) -> None:
    """Every resource the component declares is its child."""
    deployment = deploy(build())
    component = deployment.one("wsauth:index:SecuredWebSocketApi", "ws")

    children = [r for r in deployment.resources if r is not component]
    assert children
    assert all(r.parent == component.urn for r in children)


def test_long_names_stay_within_lambdas_limit_and_apart() -> None:
    """Names over 64 characters are shortened with a hash, keeping the role readable."""
    long_a = "a" * 80
    long_b = "a" * 79 + "b"

    name_a = _physical_name(long_a, "authorizer")
    assert len(name_a) <= 64
    assert name_a.endswith("-authorizer")
    assert name_a != _physical_name(long_b, "authorizer")
    assert _physical_name("ws.api", "websocket").endswith("-ws-api-websocket")


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"token_use": "refresh"}, "token_use must be one of access, id; got 'refresh'"),
        ({"token_source": "header"}, "token_source must be one of protocol, query"),
        ({"token_query_key": ""}, "token_query_key must be 1 to 128 letters"),
        ({"token_query_key": "id&token"}, "token_query_key must be 1 to 128 letters"),
        ({"lambda_architecture": "amd64"}, "lambda_architecture must be one of arm64, x86_64"),
        (
            {"lambda_runtime": "python3.9"},
            "lambda_runtime must be one of python3.11, python3.12, python3.13",
        ),
        ({"log_retention_days": 31}, "log_retention_days must be one of 0, 1, 3, 5, 7, 14, 30"),
        ({"log_retention_days": -1}, "log_retention_days must be one of"),
        ({"log_retention_days": True}, "log_retention_days must be one of"),
        ({"stage_name": "$default"}, "stage_name must be 1 to 128 letters, digits"),
        ({"stage_name": "x" * 129}, "stage_name must be 1 to 128"),
        ({"stage_name": "pr od"}, "stage_name must be"),
        ({"throttling_burst_limit": -1}, "throttling_burst_limit must be an integer from 0"),
        ({"throttling_burst_limit": 1.5}, "throttling_burst_limit must be an integer"),
        ({"throttling_rate_limit": -1.0}, "throttling_rate_limit must be a number from 0"),
        ({"throttling_rate_limit": float("nan")}, "throttling_rate_limit must be a number"),
        ({"clock_leeway_seconds": -1}, "clock_leeway_seconds must be an integer from 0 to 300"),
        ({"connection_ttl_seconds": 60}, "connection_ttl_seconds must be an integer from 7200"),
        ({"authorizer_memory_mb": 64}, "authorizer_memory_mb must be an integer from 128 to 10240"),
        ({"websocket_memory_mb": 20000}, "websocket_memory_mb must be an integer from 128"),
        ({"authorizer_timeout_seconds": 0}, "authorizer_timeout_seconds must be an integer from 1"),
        (
            {"websocket_timeout_seconds": 30},
            "websocket_timeout_seconds must be an integer from 1 to 29",
        ),
        ({"route_keys": ["$connect"]}, "route_keys must be 1 to 128 letters"),
        ({"route_keys": ["a", "a"]}, "route_keys must not repeat a key"),
        ({"app_client_ids": []}, "app_client_ids must be a non-empty list"),
        ({"app_client_ids": CLIENT_ID}, "app_client_ids must be a non-empty list"),
        ({"user_pool_id": None}, "user_pool_id is required"),
        ({"connection_table_arn": None}, "connection_table_arn is required"),
        ({"cloudwatch_role": "create"}, "cloudwatch_role must be 'auto', 'external' or an IAM"),
        ({"cloudwatch_role": "arn:aws:iam::12:role/x"}, "cloudwatch_role must be 'auto'"),
        ({"cloudwatch_role": "arn:aws:s3:::bucket"}, "cloudwatch_role must be 'auto'"),
    ],
)
def test_bad_arguments_are_refused_before_any_resource(
    deploy: Callable[..., Deployment], settings: dict[str, Any], message: str
) -> None:
    """Each bad argument fails with its name and what it accepts, and nothing is declared."""
    with pytest.raises(ValueError) as refused:
        deploy(build(**settings))

    assert message in str(refused.value)
    assert declared_so_far() == []


def test_validate_checks_settings_without_wiring() -> None:
    """`validate` lets a program refuse bad config before it declares the pool and table."""
    SecuredWebSocketApi.validate({"stage_name": "prod", "token_use": "access"})
    with pytest.raises(ValueError, match="token_use"):
        SecuredWebSocketApi.validate({"token_use": "both"})
