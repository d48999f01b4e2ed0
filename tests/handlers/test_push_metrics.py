"""Metrics as EMF lines: their shape, when they are printed, and the push outcomes they count.

The shape is checked against CloudWatch's embedded metric format specification
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber

from tests.handlers.test_sender import ScriptedManagement, _error, _store
from tests.handlers.test_sessions import Management
from wsauth.handlers import connection_counter, connections, metrics, sender, sweeper, websocket

API_ID = "abcdef1234"
STAGE = "prod"
ENDPOINT = f"https://{API_ID}.execute-api.us-east-1.amazonaws.com/{STAGE}"
REGION = "us-east-1"

EmfLines = Callable[[], list[dict[str, Any]]]

# CloudWatch's `StandardUnit`s, the values `Unit` may take.
UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
    "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second",
    "Terabits/Second", "Count/Second", "None",
}  # fmt: skip


def assert_valid_emf(line: str) -> dict[str, Any]:
    """Check one log line against the EMF specification; return it parsed."""
    assert "\n" not in line, "one log event is one line"
    document = json.loads(line)
    assert isinstance(document, dict), "the root node is a JSON object"
    metadata = document["_aws"]
    assert isinstance(metadata, dict)
    timestamp = metadata["Timestamp"]
    assert isinstance(timestamp, int) and not isinstance(timestamp, bool)
    assert abs(timestamp - time.time() * 1000) < 10 * 60 * 1000, "epoch milliseconds, now"
    directives = metadata["CloudWatchMetrics"]
    assert isinstance(directives, list) and directives
    for directive in directives:
        # Objects the specification defines may hold no other member.
        assert set(directive) == {"Namespace", "Dimensions", "Metrics"}
        namespace = directive["Namespace"]
        assert isinstance(namespace, str) and 0 < len(namespace) <= 256
        assert not namespace.startswith("AWS/")
        assert isinstance(directive["Dimensions"], list)
        for dimension_set in directive["Dimensions"]:
            assert isinstance(dimension_set, list) and len(dimension_set) <= 30
            for name in dimension_set:
                # A dimension names a root member whose value is a non-empty string.
                assert isinstance(document[name], str) and document[name].strip()
                assert len(document[name]) <= 1024
        definitions = directive["Metrics"]
        assert isinstance(definitions, list) and 0 < len(definitions) <= 100
        for definition in definitions:
            assert set(definition) <= {"Name", "Unit", "StorageResolution"}
            assert definition.get("Unit", "None") in UNITS
            assert definition.get("StorageResolution", 60) in (1, 60)
            # A metric names a root member whose value is a number (or up to 100 of them).
            value = document[definition["Name"]]
            values = value if isinstance(value, list) else [value]
            assert 0 < len(values) <= 100
            for number in values:
                assert isinstance(number, int | float) and not isinstance(number, bool)
                assert math.isfinite(number)
    return document


# --- the line -----------------------------------------------------------------------------------


def test_the_count_line_is_exactly_the_contracts() -> None:
    """`ConnectionCount` in namespace WsAuth, dimensions ApiId and Stage, unit Count."""
    line = metrics.emf_line({"ConnectionCount": 3}, api_id="abc123", stage="prod")

    document = assert_valid_emf(line)
    assert document == {
        "_aws": {
            "Timestamp": document["_aws"]["Timestamp"],
            "CloudWatchMetrics": [
                {
                    "Namespace": "WsAuth",
                    "Dimensions": [["ApiId", "Stage"]],
                    "Metrics": [{"Name": "ConnectionCount", "Unit": "Count"}],
                }
            ],
        },
        "logger": "metrics",
        "ApiId": "abc123",
        "Stage": "prod",
        "ConnectionCount": 3,
    }


def test_several_metrics_share_one_line() -> None:
    """Each metric is declared once and carried once, in the order given."""
    line = metrics.emf_line(
        {"ConnectionCount": 0, "FailedPushes": 2, "GonePushes": 1},
        api_id=API_ID,
        stage=STAGE,
        timestamp_ms=int(time.time() * 1000),
    )

    document = assert_valid_emf(line)
    declared = document["_aws"]["CloudWatchMetrics"][0]["Metrics"]
    assert [metric["Name"] for metric in declared] == [
        "ConnectionCount",
        "FailedPushes",
        "GonePushes",
    ]
    assert (document["ConnectionCount"], document["FailedPushes"], document["GonePushes"]) == (
        0,
        2,
        1,
    )


def test_nothing_is_printed_outside_lambda(
    aws_environment: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without `AWS_LAMBDA_FUNCTION_NAME` (tests, a CLI, another service) no line is printed."""
    assert metrics.publish({"FailedPushes": 1}, api_id=API_ID, stage=STAGE) is False
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("values", "api_id", "stage"),
    [({}, API_ID, STAGE), ({"GonePushes": 1}, None, STAGE), ({"GonePushes": 1}, API_ID, "")],
    ids=["no-values", "no-api-id", "no-stage"],
)
def test_no_line_without_values_or_dimensions(
    emf_lines: EmfLines, values: dict[str, int], api_id: str | None, stage: str
) -> None:
    """Nothing to say, or no dimension to say it under: no line, even inside Lambda."""
    assert metrics.publish(values, api_id=api_id, stage=stage) is False
    assert emf_lines() == []


def test_a_line_is_printed_inside_lambda(emf_lines: EmfLines) -> None:
    """Inside Lambda the line goes to stdout, where CloudWatch Logs extracts it."""
    assert metrics.publish({"GonePushes": 2}, api_id=API_ID, stage=STAGE) is True
    assert [line["GonePushes"] for line in emf_lines()] == [2]


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        (ENDPOINT, (API_ID, STAGE)),
        (f"{ENDPOINT}/", (API_ID, STAGE)),
        (
            "https://a1b2c3d4e5.execute-api.cn-north-1.amazonaws.com.cn/live_2",
            ("a1b2c3d4e5", "live_2"),
        ),
        ("https://ws.example.com/prod", None),
        ("http://127.0.0.1:8080/prod", None),
        (f"https://{API_ID}.execute-api.us-east-1.amazonaws.com", None),
        (None, None),
    ],
    ids=["execute-api", "trailing-slash", "china", "custom-domain", "local", "no-stage", "none"],
)
def test_dimensions_come_from_an_execute_api_endpoint(
    endpoint: str | None, expected: tuple[str, str] | None
) -> None:
    """Only an execute-api URL names the API and stage; any other endpoint names none."""
    assert metrics.endpoint_dimensions(endpoint) == expected


def test_counts_are_exact_across_threads() -> None:
    """Outcomes counted from many threads at once are all counted."""
    counts = metrics.PushCounts()

    def count() -> None:
        for _ in range(1000):
            counts.add("failed")
            counts.add("gone")
            counts.add("delivered")

    threads = [threading.Thread(target=count) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert counts.metrics() == {"FailedPushes": 8000, "GonePushes": 8000}


def test_outcomes_outside_a_scope_are_not_counted_anywhere() -> None:
    """A push made outside any scope counts nowhere, and a scope sees only its own pushes."""
    metrics.count_push("failed")
    with metrics.counting_pushes() as outer:
        with metrics.counting_pushes() as inner:
            metrics.count_push("gone")
        metrics.count_push("failed")

    assert inner.metrics() == {"GonePushes": 1}
    assert outer.metrics() == {"FailedPushes": 1}


# --- the websocket function: one line per invocation ---------------------------------------------


def _message(route: str = "$default", body: str = "hi") -> dict[str, Any]:
    return {
        "requestContext": {
            "routeKey": route,
            "eventType": "MESSAGE",
            "connectionId": "conn-1",
            "domainName": f"{API_ID}.execute-api.{REGION}.amazonaws.com",
            "stage": STAGE,
            "apiId": API_ID,
        },
        "body": body,
        "isBase64Encoded": False,
    }


def _stubbed_management(monkeypatch: pytest.MonkeyPatch) -> Stubber:
    client = boto3.client("apigatewaymanagementapi", endpoint_url=ENDPOINT, region_name=REGION)
    monkeypatch.setattr(sender, "management_client", lambda *args, **kwargs: client)
    return Stubber(client)


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("LimitExceededException", 429, {"FailedPushes": 1}),
        ("InternalServerErrorException", 500, {"FailedPushes": 1}),
        ("GoneException", 410, {"GonePushes": 1}),
    ],
    ids=["429", "500", "410"],
)
def test_an_echo_that_fails_or_is_gone_is_counted_once(
    dynamodb: Any,
    emf_lines: EmfLines,
    monkeypatch: pytest.MonkeyPatch,
    code: str,
    status: int,
    expected: dict[str, int],
) -> None:
    """A 429 or 5xx counts one failed push, a 410 one gone push (not failed): one line."""
    with _stubbed_management(monkeypatch) as stub:
        stub.add_client_error(
            "post_to_connection", service_error_code=code, http_status_code=status
        )
        websocket.handler(_message(), None)

    (line,) = emf_lines()
    assert {name: line[name] for name in ("FailedPushes", "GonePushes") if name in line} == expected
    assert (line["ApiId"], line["Stage"]) == (API_ID, STAGE)
    assert [m["Name"] for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]] == list(expected)


def test_a_delivered_echo_prints_nothing(
    dynamodb: Any, emf_lines: EmfLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing failed, nothing gone: no line."""
    with _stubbed_management(monkeypatch) as stub:
        stub.add_response("post_to_connection", {})
        assert websocket.handler(_message(), None) == {"statusCode": 200}

    assert emf_lines() == []


def test_an_event_without_api_id_prints_nothing(
    dynamodb: Any, emf_lines: EmfLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No `apiId` in the request context: no dimension, no line (and no crash)."""
    event = _message()
    del event["requestContext"]["apiId"]
    with _stubbed_management(monkeypatch) as stub:
        stub.add_client_error("post_to_connection", http_status_code=429)
        assert websocket.handler(event, None) == {"statusCode": 500}

    assert emf_lines() == []


def test_sign_out_notices_of_one_invocation_make_one_line(
    dynamodb: Any, table_name: str, emf_lines: EmfLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Signing out five connections, two gone and one failing, from pool threads: one line."""
    from tests.handlers.test_signout import Cognito

    user = "sub-alice"
    for name in ("ok-1", "ok-2", "gone-1", "gone-2", "busy"):
        _store(dynamodb, table_name, user, name)
    management = Management(gone={"gone-1", "gone-2"})

    def busy_delete(ConnectionId: str) -> None:  # noqa: N803
        if ConnectionId == "busy":
            raise _error("LimitExceededException", 429)
        management.deleted.append(ConnectionId)

    monkeypatch.setattr(management, "delete_connection", busy_delete)
    monkeypatch.setattr(sender, "management_client", lambda *args, **kwargs: management)
    monkeypatch.setenv("USER_POOL_ID", "us-east-1_Pool")
    real_client = boto3.client
    cognito = Cognito()
    monkeypatch.setattr(
        boto3,
        "client",
        lambda service, **kwargs: (
            cognito if service == "cognito-idp" else real_client(service, **kwargs)
        ),
    )
    event = _message(route="signOutEverywhere", body='{"action": "signOutEverywhere"}')
    event["requestContext"]["connectionId"] = "ok-1"
    event["requestContext"]["authorizer"] = {"userId": user, "principalId": user}

    assert websocket.handler(event, None)["statusCode"] == 200

    (line,) = emf_lines()
    assert (line.get("FailedPushes"), line.get("GonePushes")) == (1, 2)


# --- the sweeper: one line per run --------------------------------------------------------------


def _inserted(connection_id: str) -> dict[str, Any]:
    return {
        "eventName": "INSERT",
        "dynamodb": {"Keys": {"connectionId": {"S": connection_id}}},
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/t/stream/2026-11-27T12:00:00.000",
    }


def test_the_sweepers_pushes_join_its_count_line(
    dynamodb: Any, table_name: str, emf_lines: EmfLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An expired connection found gone and one whose close failed are counted in the run's
    one line, with the count."""
    now = int(time.time())
    for connection_id in ("expired-gone", "expired-busy", "expired-ok"):
        connections.put_connection(
            dynamodb, table_name, connection_id=connection_id, user_id="u", username="u",
            connected_at_ms=1, ttl_seconds=10800, expires_at=now - 5,
        )  # fmt: skip
    management = Management(gone={"expired-gone"})
    real_delete = management.delete_connection

    def busy_delete(ConnectionId: str) -> None:  # noqa: N803
        if ConnectionId == "expired-busy":
            raise EndpointConnectionError(endpoint_url=ENDPOINT)
        real_delete(ConnectionId)

    monkeypatch.setattr(management, "delete_connection", busy_delete)
    monkeypatch.setattr(sender, "management_client", lambda *args, **kwargs: management)
    monkeypatch.setenv("MANAGEMENT_ENDPOINT", ENDPOINT)
    monkeypatch.setenv("API_ID", API_ID)
    monkeypatch.setenv("STAGE_NAME", STAGE)
    monkeypatch.setenv("CONNECTION_TABLE_NAME", table_name)
    connection_counter.handler({"Records": [_inserted(c) for c in ("a", "b", "c")]}, None)

    result = sweeper.handler({}, None)

    assert result == {"connections": 3, "closed": 1, "gone": 1, "failed": 1}
    (line,) = emf_lines()
    assert_valid_emf(json.dumps(line))
    assert (line["ConnectionCount"], line["FailedPushes"], line["GonePushes"]) == (3, 1, 1)


# --- the library senders: one line per call -----------------------------------------------------


def test_send_to_user_publishes_its_failures_under_its_endpoints_dimensions(
    dynamodb: Any, table_name: str, emf_lines: EmfLines
) -> None:
    """Failures and gone connections from the fan-out's threads make one line for the call."""
    _store(dynamodb, table_name, "sub-alice", "live", "gone", "busy", "unreachable")
    management = ScriptedManagement(
        {
            "gone": _error("GoneException", 410),
            "busy": _error("LimitExceededException", 429),
            "unreachable": EndpointConnectionError(endpoint_url=ENDPOINT),
        }
    )

    sender.send_to_user(
        "sub-alice", "hi", table_name=table_name, endpoint_url=ENDPOINT, dynamodb=dynamodb,
        management=management,
    )  # fmt: skip

    (line,) = emf_lines()
    assert (line["ApiId"], line["Stage"]) == (API_ID, STAGE)
    assert (line["FailedPushes"], line["GonePushes"]) == (2, 1)


def test_send_to_connection_publishes_a_gone_connection(
    dynamodb: Any, table_name: str, emf_lines: EmfLines
) -> None:
    """One call, one 410: one line with GonePushes only."""
    _store(dynamodb, table_name, "sub-alice", "c1")
    management = ScriptedManagement({"c1": _error("GoneException", 410)})

    sender.send_to_connection(
        "c1", "hi", table_name=table_name, endpoint_url=ENDPOINT, dynamodb=dynamodb,
        management=management,
    )  # fmt: skip

    (line,) = emf_lines()
    assert "FailedPushes" not in line and line["GonePushes"] == 1


@pytest.mark.parametrize(
    ("endpoint", "answers"),
    [
        ("https://ws.example.com/prod", {"c1": _error("LimitExceededException", 429)}),
        (ENDPOINT, {}),
    ],
    ids=["custom-domain-endpoint", "all-delivered"],
)
def test_send_to_user_prints_nothing_without_dimensions_or_failures(
    dynamodb: Any, table_name: str, emf_lines: EmfLines, endpoint: str, answers: dict[str, Any]
) -> None:
    """An endpoint that names no API, or a call where all went through: no line."""
    _store(dynamodb, table_name, "sub-alice", "c1", "c2")

    report = sender.send_to_user(
        "sub-alice", "hi", table_name=table_name, endpoint_url=endpoint, dynamodb=dynamodb,
        management=ScriptedManagement(answers),
    )  # fmt: skip

    assert report.attempted == 2
    assert emf_lines() == []


def test_each_send_call_is_its_own_line(
    dynamodb: Any, table_name: str, emf_lines: EmfLines
) -> None:
    """Two calls that each fail once: two lines of one, never one of two."""
    _store(dynamodb, table_name, "sub-alice", "c1")
    management = ScriptedManagement({"c1": ClientError({"Error": {"Code": "Boom"}}, "Post")})

    for _ in range(2):
        sender.send_to_user(
            "sub-alice", "hi", table_name=table_name, endpoint_url=ENDPOINT, dynamodb=dynamodb,
            management=management,
        )  # fmt: skip

    assert [line["FailedPushes"] for line in emf_lines()] == [1, 1]
