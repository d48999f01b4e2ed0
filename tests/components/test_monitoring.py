"""ApiMonitoring through the program: every alarm's metric, dimensions, rule and topic; the
dashboard's body; the authorizer's decision metrics; config and refused settings."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from pulumi_wsauth import ALARMS
from tests.components.fakes import ACCOUNT, REGION, Deployment, declared_so_far, resolved
from tests.components.test_stack import run_program

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
FILTER = "aws:cloudwatch/logMetricFilter:LogMetricFilter"
FUNCTION = "aws:lambda/function:Function"


class Stack:
    """The names of what the program declared, as the alarms must name them."""

    def __init__(self, deployment: Deployment) -> None:
        self.api_id = deployment.one("aws:apigatewayv2/api:Api", "api-api").resource_id
        self.table = deployment.one("aws:dynamodb/table:Table", "connections-table").state["name"]
        self.functions = {
            role: deployment.one(FUNCTION, f"api-{role}").inputs["name"]
            for role in ("authorizer", "websocket", "sweeper", "counter")
        }
        self.alarms = {alarm.inputs["name"]: alarm for alarm in deployment.of_type(ALARM)}

    def alarm(self, key: str) -> dict[str, Any]:
        return self.alarms[f"wsauth-test-ops-{key.replace('_', '-')}"].inputs


# alarm key → (namespace, metric, dimensions as a function of the stack), then the default rule
# (threshold, period, evaluation periods, datapoints to alarm).
EXPECTED: dict[str, tuple[str, str, Callable[[Stack], dict[str, str]], tuple[float, int, int, int]]]
EXPECTED = {
    "counter_errors": (
        "AWS/Lambda",
        "Errors",
        lambda s: {"FunctionName": s.functions["counter"]},
        (1, 300, 3, 3),
    ),
    "counter_lag": (
        "AWS/Lambda",
        "IteratorAge",
        lambda s: {"FunctionName": s.functions["counter"]},
        (300_000, 300, 1, 1),
    ),
    "count_missing": (
        "WsAuth",
        "ConnectionCount",
        lambda s: {"ApiId": s.api_id, "Stage": "prod"},
        (1, 300, 3, 3),
    ),
    "authorizer_errors": (
        "AWS/Lambda",
        "Errors",
        lambda s: {"FunctionName": s.functions["authorizer"]},
        (5, 300, 1, 1),
    ),
    "authorizer_throttles": (
        "AWS/Lambda",
        "Throttles",
        lambda s: {"FunctionName": s.functions["authorizer"]},
        (1, 300, 1, 1),
    ),
    "websocket_errors": (
        "AWS/Lambda",
        "Errors",
        lambda s: {"FunctionName": s.functions["websocket"]},
        (5, 300, 1, 1),
    ),
    "websocket_throttles": (
        "AWS/Lambda",
        "Throttles",
        lambda s: {"FunctionName": s.functions["websocket"]},
        (1, 300, 1, 1),
    ),
    "sweeper_errors": (
        "AWS/Lambda",
        "Errors",
        lambda s: {"FunctionName": s.functions["sweeper"]},
        (1, 300, 3, 3),
    ),
    "integration_errors": (
        "AWS/ApiGateway",
        "IntegrationError",
        lambda s: {"ApiId": s.api_id, "Stage": "prod"},
        (5, 300, 1, 1),
    ),
    "execution_errors": (
        "AWS/ApiGateway",
        "ExecutionError",
        lambda s: {"ApiId": s.api_id, "Stage": "prod"},
        (5, 300, 1, 1),
    ),
    "client_errors": (
        "AWS/ApiGateway",
        "ClientError",
        lambda s: {"ApiId": s.api_id, "Stage": "prod"},
        (100, 300, 1, 1),
    ),
    "failed_pushes": (
        "WsAuth",
        "FailedPushes",
        lambda s: {"ApiId": s.api_id, "Stage": "prod"},
        (10, 300, 1, 1),
    ),
}


def test_every_alarm_watches_this_stacks_metric_with_its_default_rule(
    deploy: Callable[..., Deployment],
) -> None:
    """One alarm per catalog entry; each counts (Sum) this API's, stage's, function's metric,
    fires at its documented default, treats no data as fine, and notifies the stack's topic."""
    deployment = deploy(run_program)
    stack = Stack(deployment)
    topic = deployment.one(TOPIC, "ops-alarms").state["arn"]

    assert sorted(stack.alarms) == sorted(
        f"wsauth-test-ops-{key.replace('_', '-')}" for key in ALARMS
    )
    for key, (namespace, metric, dimensions, rule) in EXPECTED.items():
        alarm = stack.alarm(key)
        assert (alarm["namespace"], alarm["metricName"]) == (namespace, metric), key
        assert alarm["dimensions"] == dimensions(stack), key
        assert alarm["statistic"] == STATISTICS.get(key, "Sum"), key
        assert (
            alarm["threshold"],
            alarm["period"],
            alarm["evaluationPeriods"],
            alarm["datapointsToAlarm"],
        ) == rule, key
    assert set(EXPECTED) | {"table_throttles"} == set(ALARMS)
    for name, alarm in stack.alarms.items():
        inputs = alarm.inputs
        if name.endswith("-count-missing"):
            continue
        assert inputs["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert inputs["treatMissingData"] == "notBreaching"
    for alarm in stack.alarms.values():
        inputs = alarm.inputs
        assert inputs["alarmActions"] == inputs["okActions"] == [topic]
        assert "README" in inputs["alarmDescription"]


STATISTICS = {"counter_lag": "Maximum", "count_missing": "SampleCount"}


def test_the_heartbeat_fires_when_the_count_stops(deploy: Callable[..., Deployment]) -> None:
    """`count_missing` watches for missing data: fewer than one ConnectionCount sample in each
    of three periods, with no data counted as breaching."""
    stack = Stack(deploy(run_program))
    alarm = stack.alarm("count_missing")

    assert alarm["comparisonOperator"] == "LessThanThreshold"
    assert alarm["treatMissingData"] == "breaching"


def test_table_throttles_add_up_the_table_and_both_indexes(
    deploy: Callable[..., Deployment],
) -> None:
    """One metric-math alarm over read and write throttle events of the table and each index;
    each term is filled with 0 (DynamoDB publishes only non-zero counts)."""
    deployment = deploy(run_program)
    stack = Stack(deployment)
    alarm = stack.alarm("table_throttles")

    assert "metricName" not in alarm and "namespace" not in alarm
    queries = alarm["metricQueries"]
    metrics = [q for q in queries if "metric" in q]
    assert all(q["returnData"] is False for q in metrics)
    watched = sorted(
        (
            q["metric"]["metricName"],
            q["metric"]["dimensions"].get("GlobalSecondaryIndexName", ""),
        )
        for q in metrics
    )
    assert watched == sorted(
        (metric, index)
        for metric in ("ReadThrottleEvents", "WriteThrottleEvents")
        for index in ("", "userIdIndex", "expiryIndex")
    )
    for query in metrics:
        assert query["metric"]["namespace"] == "AWS/DynamoDB"
        assert query["metric"]["dimensions"]["TableName"] == stack.table
        assert (query["metric"]["stat"], query["metric"]["period"]) == ("Sum", 300)
    (total,) = [q for q in queries if "expression" in q]
    assert total["returnData"] is True
    assert total["expression"] == " + ".join(f"FILL({q['id']}, 0)" for q in metrics)
    assert alarm["threshold"] == 10


def test_alarm_email_subscribes_to_the_stacks_topic(deploy: Callable[..., Deployment]) -> None:
    deployment = deploy(run_program, config={"wsauth:alarmEmail": "oncall@example.com"})
    topic = deployment.one(TOPIC, "ops-alarms")

    subscription = deployment.one(SUBSCRIPTION, "ops-alarm-email").inputs
    assert subscription == {
        "topic": topic.state["arn"],
        "protocol": "email",
        "endpoint": "oncall@example.com",
    }
    # No key: with SNS's AWS-managed key, CloudWatch could not publish.
    assert "kmsMasterKeyId" not in topic.inputs


def test_a_given_topic_replaces_the_stacks_own(deploy: Callable[..., Deployment]) -> None:
    given = f"arn:aws:sns:{REGION}:{ACCOUNT}:pager"
    deployment = deploy(
        run_program,
        config={"wsauth:alarmTopicArn": given, "wsauth:alarmEmail": "oncall@example.com"},
    )

    assert not deployment.of_type(TOPIC)
    for alarm in deployment.of_type(ALARM):
        assert alarm.inputs["alarmActions"] == [given]
    assert deployment.one(SUBSCRIPTION, "ops-alarm-email").inputs["topic"] == given
    assert resolved(deployment.outputs["alarmTopicArn"]) == given


def test_config_overrides_and_disables_alarms(deploy: Callable[..., Deployment]) -> None:
    """`wsauth:alarms` takes the component's rule keys in camelCase."""
    overrides = {
        "clientErrors": {"threshold": 500, "periodSeconds": 60, "evaluationPeriods": 5},
        "tableThrottles": {"enabled": False},
    }
    deployment = deploy(run_program, config={"wsauth:alarms": json.dumps(overrides)})
    stack = Stack(deployment)

    client = stack.alarm("client_errors")
    assert (client["threshold"], client["period"], client["evaluationPeriods"]) == (500, 60, 5)
    assert client["datapointsToAlarm"] == 1
    assert "wsauth-test-ops-table-throttles" not in stack.alarms
    assert len(stack.alarms) == len(ALARMS) - 1


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"wsauth:alarmEmail": "oncall"}, "alarm_email must be an email address"),
        ({"wsauth:alarmTopicArn": "pager"}, "alarm_topic_arn must be an SNS topic ARN"),
        ({"wsauth:alarms": '{"cpu": {}}'}, "alarms: unknown alarm 'cpu'"),
        ({"wsauth:alarms": '{"clientErrors": {"limit": 3}}'}, "unknown key 'limit'"),
        (
            {"wsauth:alarms": '{"clientErrors": {"periodSeconds": 90}}'},
            "period_seconds must be a multiple of 60",
        ),
        (
            {"wsauth:alarms": '{"sweeperErrors": {"datapointsToAlarm": 4}}'},
            "datapoints_to_alarm must be an integer from 1 to 3",
        ),
        ({"wsauth:alarms": '{"clientErrors": {"threshold": -1}}'}, "threshold must be a number"),
        ({"wsauth:alarms": '{"clientErrors": {"enabled": "no"}}'}, "enabled must be true or false"),
    ],
)
def test_bad_monitoring_config_is_refused_before_any_resource(
    deploy: Callable[..., Deployment], config: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        deploy(run_program, config=config)

    assert declared_so_far() == []


def test_monitoring_settings_without_monitoring_are_refused(
    deploy: Callable[..., Deployment],
) -> None:
    with pytest.raises(ValueError, match="wsauth:alarmEmail: no effect with wsauth:monitoring"):
        deploy(
            run_program,
            config={"wsauth:monitoring": "false", "wsauth:alarmEmail": "oncall@example.com"},
        )

    assert declared_so_far() == []


def test_monitoring_off_declares_none_of_it(deploy: Callable[..., Deployment]) -> None:
    deployment = deploy(run_program, config={"wsauth:monitoring": "false"})

    for typ in (ALARM, TOPIC, DASHBOARD, FILTER):
        assert not deployment.of_type(typ), typ
    assert "alarmTopicArn" not in deployment.outputs


def test_dashboard_can_be_left_out(deploy: Callable[..., Deployment]) -> None:
    deployment = deploy(run_program, config={"wsauth:dashboard": "false"})

    assert not deployment.of_type(DASHBOARD)
    assert deployment.of_type(ALARM)
    assert "dashboardName" not in deployment.outputs


def _metric_dimension_values(metric: list[Any]) -> tuple[str, str, list[str]]:
    """A dashboard metric `[namespace, name, dim, value, ..., {options}]`."""
    plain = [part for part in metric if isinstance(part, str)]
    namespace, name, *pairs = plain
    return namespace, name, pairs[1::2]


def test_dashboard_is_json_naming_only_this_stacks_resources(
    deploy: Callable[..., Deployment],
) -> None:
    deployment = deploy(run_program)
    stack = Stack(deployment)
    dashboard = deployment.one(DASHBOARD, "ops-dashboard").inputs
    body = json.loads(dashboard["dashboardBody"])

    assert dashboard["dashboardName"] == "wsauth-test-ops-dashboard"
    assert re.fullmatch(r"[0-9A-Za-z_-]{1,255}", dashboard["dashboardName"])
    ours = {stack.api_id, "prod", stack.table, "userIdIndex", "expiryIndex"}  # and functions
    ours |= set(stack.functions.values())
    namespaces = {
        "AWS/Lambda",
        "AWS/ApiGateway",
        "AWS/DynamoDB",
        "WsAuth",
        f"WsAuth/Authorizer/{stack.functions['authorizer']}",
    }
    throttles = next(w for w in body["widgets"] if w["properties"]["title"] == "Throttles")
    throttled = {tuple(_metric_dimension_values(m)[2]) for m in throttles["properties"]["metrics"]}
    for index in ("userIdIndex", "expiryIndex"):  # reads and writes of each index
        assert [m[1] for m in throttles["properties"]["metrics"] if index in m] == [
            "ReadThrottleEvents",
            "WriteThrottleEvents",
        ]
    assert {(name,) for name in stack.functions.values()} <= throttled
    titles = []
    cells: set[tuple[int, int]] = set()
    for widget in body["widgets"]:
        titles.append(widget["properties"]["title"])
        assert 0 <= widget["x"] and widget["x"] + widget["width"] <= 24
        area = {
            (x, y)
            for x in range(widget["x"], widget["x"] + widget["width"])
            for y in range(widget["y"], widget["y"] + widget["height"])
        }
        assert not area & cells, f"{widget['properties']['title']} overlaps another widget"
        cells |= area
        if widget["type"] == "alarm":
            assert sorted(widget["properties"]["alarms"]) == sorted(
                alarm.state["arn"] for alarm in stack.alarms.values()
            )
            continue
        assert widget["properties"]["region"] == REGION
        for metric in widget["properties"]["metrics"]:
            namespace, _, values = _metric_dimension_values(metric)
            assert namespace in namespaces
            assert set(values) <= ours, (widget["properties"]["title"], values)
    assert titles == [
        "Connections now",
        "Connects and messages per minute",
        "Authorizer decisions per minute",
        "Function duration, p99 (ms)",
        "Function errors",
        "API Gateway errors",
        "Throttles",
        "Pushes that did not arrive",
        "Alarms",
    ]


def _matches(pattern: str, event: dict[str, Any]) -> bool:
    """CloudWatch Logs' JSON filter syntax, for the `{ $.a = "x" && $.b = "y" }` it uses here."""
    body = re.fullmatch(r"\{ (.*) \}", pattern)
    assert body is not None, pattern
    for condition in body.group(1).split(" && "):
        field, value = re.fullmatch(r'\$\.(\w+) = "([^"]*)"', condition).groups()  # type: ignore[union-attr]
        if event.get(field) != value:
            return False
    return True


def test_decision_metrics_count_the_authorizers_own_log_lines(
    deploy: Callable[..., Deployment], capsys: pytest.CaptureFixture[str]
) -> None:
    """Three filters on the authorizer's log group; run against lines the real authorizer
    writes, each counts exactly its outcome."""
    from wsauth.handlers import authorizer

    deployment = deploy(run_program)
    stack = Stack(deployment)
    log_group = deployment.one("aws:cloudwatch/logGroup:LogGroup", "api-authorizer-logs")
    filters = {
        f.inputs["metricTransformation"]["name"]: f.inputs for f in deployment.of_type(FILTER)
    }

    authorizer._log(authorizer._ALLOW_HEAD, "sub-1", "conn-1", True, 0.0)
    authorizer._log(authorizer._head("deny", "token_expired"), None, "conn-2", False, 0.0)
    authorizer._log(authorizer._head("error", "jwks_unavailable"), None, "conn-3", False, 0.0)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    assert sorted(filters) == ["Allow", "Deny", "Error"]
    for (name, inputs), line in zip(sorted(filters.items()), lines, strict=True):
        assert inputs["logGroupName"] == log_group.inputs["name"]
        assert inputs["metricTransformation"] == {
            "name": name,
            "namespace": f"WsAuth/Authorizer/{stack.functions['authorizer']}",
            "value": "1",
            "unit": "Count",
        }
        assert [_matches(inputs["pattern"], candidate) for candidate in lines] == [
            candidate is line for candidate in lines
        ]


def test_nothing_new_may_publish_metrics_or_reach_other_resources(
    deploy: Callable[..., Deployment],
) -> None:
    """The functions publish through their logs (embedded metric format): no policy grants a
    CloudWatch, SNS or alarm action."""
    deployment = deploy(run_program, config={"wsauth:alarmEmail": "oncall@example.com"})

    for policy in deployment.of_type("aws:iam/rolePolicy:RolePolicy"):
        actions = {
            action
            for statement in json.loads(policy.inputs["policy"])["Statement"]
            for action in statement["Action"]
        }
        assert {a.split(":")[0] for a in actions} <= {
            "dynamodb",
            "execute-api",
            "logs",
            "cognito-idp",
        }, policy.name
        assert not any(a.startswith("logs:") and a not in _LOG_WRITES for a in actions)


_LOG_WRITES = {"logs:CreateLogStream", "logs:PutLogEvents"}


def test_monitoring_component_refuses_missing_inputs() -> None:
    from pulumi_wsauth import ApiMonitoring

    with pytest.raises(ValueError, match="api is required"):
        ApiMonitoring("ops", {"store": object()})  # type: ignore[typeddict-item]
