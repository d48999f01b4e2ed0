"""Sessions in the components: the refresh route, the sweeper on a schedule, exact IAM."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.components.fakes import Deployment
from tests.components.test_websocket_api import (
    CLIENT_ID,
    EXPIRY_INDEX_ARN,
    FUNCTION,
    INDEX_ARN,
    LOG_GROUP,
    PERMISSION,
    POOL_ARN,
    POOL_ID,
    TABLE_ARN,
    TABLE_NAME,
    build,
    execution_arn,
    policy_of,
    routes_by_key,
    statements,
)

RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"


def test_refresh_has_its_own_route_on_the_websocket_function(
    deploy: Callable[..., Deployment],
) -> None:
    """`{"action": "refreshToken"}` reaches the websocket function, invokable for that route."""
    deployment = deploy(build())
    route = routes_by_key(deployment)["refreshToken"]
    integration = deployment.one(
        "aws:apigatewayv2/integration:Integration", "ws-websocket-integration"
    )

    assert route.inputs["target"] == f"integrations/{integration.resource_id}"
    sources = {p.inputs.get("sourceArn") for p in deployment.of_type(PERMISSION)}
    assert f"{execution_arn(deployment)}/prod/refreshToken" in sources


def test_websocket_function_verifies_with_the_authorizers_rules(
    deploy: Callable[..., Deployment],
) -> None:
    """Refresh checks tokens as `$connect` does: same pool, clients, token use and leeway."""
    deployment = deploy(build(token_use="access", clock_leeway_seconds=30))
    websocket = deployment.one(FUNCTION, "ws-websocket").inputs["environment"]["variables"]
    authorizer = deployment.one(FUNCTION, "ws-authorizer").inputs["environment"]["variables"]

    rules = ("USER_POOL_ID", "APP_CLIENT_ID", "TOKEN_USE", "CLOCK_LEEWAY_SECONDS")
    assert {key: websocket[key] for key in rules} == {key: authorizer[key] for key in rules}
    assert websocket["USER_POOL_ID"] == POOL_ID and websocket["APP_CLIENT_ID"] == CLIENT_ID
    assert websocket["SESSION_EXPIRY"] == "enforce"


def test_sweeper_runs_every_minute(deploy: Callable[..., Deployment]) -> None:
    """A schedule rule targets the sweeper, which only that rule may invoke."""
    deployment = deploy(build())
    sweeper = deployment.one(FUNCTION, "ws-sweeper")
    rule = deployment.one(RULE, "ws-sweep-schedule")
    target = deployment.one(TARGET, "ws-sweep-target")
    invoke = deployment.one(PERMISSION, "ws-sweeper-schedule-invoke")

    assert sweeper.inputs["handler"] == "handlers.sweeper.handler"
    assert rule.inputs["scheduleExpression"] == "rate(1 minute)"
    assert target.inputs["rule"] == rule.state["name"]
    assert target.inputs["arn"] == sweeper.state["arn"]
    assert invoke.inputs == {
        "action": "lambda:InvokeFunction",
        "function": sweeper.inputs["name"],
        "principal": "events.amazonaws.com",
        "sourceArn": rule.state["arn"],
    }


def test_sweeper_knows_its_table_stage_and_leeway(deploy: Callable[..., Deployment]) -> None:
    """The sweeper closes this stage's connections, found in this table."""
    deployment = deploy(build(clock_leeway_seconds=5, stage_name="live"))
    variables = deployment.one(FUNCTION, "ws-sweeper").inputs["environment"]["variables"]
    api_id = deployment.one("aws:apigatewayv2/api:Api", "ws-api").resource_id

    assert variables == {
        "CONNECTION_TABLE_NAME": TABLE_NAME,
        "CONNECTION_TTL_SECONDS": "10800",
        "CLOCK_LEEWAY_SECONDS": "5",
        "MANAGEMENT_ENDPOINT": f"https://{api_id}.execute-api.eu-west-1.amazonaws.com/live",
        "SESSION_EXPIRY": "enforce",
        # The dimensions of the live count it publishes.
        "API_ID": api_id,
        "STAGE_NAME": "live",
    }


def test_sweeper_reads_only_its_index(deploy: Callable[..., Deployment]) -> None:
    """Query on `expiryIndex` only; DeleteItem (and the count's UpdateItem) for gone
    connections; POST and DELETE on this stage's connections; its own logs."""
    deployment = deploy(build(stage_name="live"))
    log_group_arn = deployment.one(LOG_GROUP, "ws-sweeper-logs").state["arn"]
    arn = execution_arn(deployment)

    assert statements(policy_of(deployment, "sweeper")) == [
        (["dynamodb:GetItem"], [TABLE_ARN]),
        (["dynamodb:Query"], [EXPIRY_INDEX_ARN]),
        (["dynamodb:DeleteItem", "dynamodb:UpdateItem"], [TABLE_ARN]),
        (
            ["execute-api:ManageConnections"],
            [f"{arn}/live/POST/@connections/*", f"{arn}/live/DELETE/@connections/*"],
        ),
        (
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [log_group_arn, f"{log_group_arn}:log-stream:*"],
        ),
    ]


def test_websocket_function_may_move_expiries_close_and_sign_out(
    deploy: Callable[..., Deployment],
) -> None:
    """With sessions and a limit the websocket function also updates items (refresh, the
    user's item), closes (DELETE) and checks (GET) this stage's connections, and signs users of
    this pool out everywhere; nothing more."""
    deployment = deploy(build(stage_name="live"))
    log_group_arn = deployment.one(LOG_GROUP, "ws-websocket-logs").state["arn"]
    arn = execution_arn(deployment)

    assert statements(policy_of(deployment, "websocket")) == [
        (
            ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem"],
            [TABLE_ARN],
        ),
        (["dynamodb:Query"], [INDEX_ARN]),
        (
            ["execute-api:ManageConnections"],
            [
                f"{arn}/live/POST/@connections/*",
                f"{arn}/live/DELETE/@connections/*",
                f"{arn}/live/GET/@connections/*",
            ],
        ),
        (["cognito-idp:AdminUserGlobalSignOut"], [POOL_ARN]),
        (
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [log_group_arn, f"{log_group_arn}:log-stream:*"],
        ),
    ]


def test_a_limit_alone_counts_and_heals(deploy: Callable[..., Deployment]) -> None:
    """Without sessions, a limit per user still needs the user's item (UpdateItem) and a GET
    of stored connections; nothing for sign-out."""
    deployment = deploy(build(session_expiry="off", expiry_index_arn=None, user_pool_arn=None))
    policy = json.dumps(policy_of(deployment, "websocket"))
    variables = deployment.one(FUNCTION, "ws-websocket").inputs["environment"]["variables"]

    assert variables["MAX_CONNECTIONS_PER_USER"] == "10"
    assert "dynamodb:UpdateItem" in policy and "/GET/@connections/*" in policy
    assert "DELETE" not in policy and "cognito-idp" not in policy


def test_off_declares_no_session_machinery(deploy: Callable[..., Deployment]) -> None:
    """`session_expiry: off` (and no limit): no refresh or sign-out route, a minute job that
    only counts, no extra rights."""
    deployment = deploy(
        build(
            session_expiry="off",
            max_connections_per_user=0,
            expiry_index_arn=None,
            user_pool_arn=None,
        )
    )

    assert not {"refreshToken", "signOutEverywhere"} & set(routes_by_key(deployment))
    sweeper = deployment.one(FUNCTION, "ws-sweeper").inputs["environment"]["variables"]
    assert sweeper["SESSION_EXPIRY"] == "off"
    assert [s["Action"] for s in policy_of(deployment, "sweeper")["Statement"]] == [
        ["dynamodb:GetItem"],
        ["logs:CreateLogStream", "logs:PutLogEvents"],
    ]
    policy = json.dumps(policy_of(deployment, "websocket"))
    assert "UpdateItem" not in policy and "DELETE" not in policy and "GET" not in policy
    assert "cognito-idp" not in policy


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"session_expiry": "strict"}, "session_expiry must be one of enforce, off"),
        ({"expiry_index_arn": None}, "expiry_index_arn is required with session_expiry 'enforce'"),
        ({"route_keys": ["refreshToken"]}, "route_keys must not name 'refreshToken'"),
        ({"route_keys": ["signOutEverywhere"]}, "route_keys must not name 'signOutEverywhere'"),
        ({"user_pool_arn": None}, "user_pool_arn is required with session_expiry 'enforce'"),
        ({"max_connections_per_user": -1}, "max_connections_per_user must be an integer from 0"),
    ],
)
def test_bad_session_settings_are_refused(
    deploy: Callable[..., Deployment], settings: dict[str, object], message: str
) -> None:
    """Each mistake is named before anything is declared."""
    with pytest.raises(ValueError, match=message):
        deploy(build(**settings))
