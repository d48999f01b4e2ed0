"""Metrics locally: EMF lines the functions print become metrics in the embedded CloudWatch."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from wsauth.localcloud.aws import EmbeddedAws
from wsauth.localcloud.lambdas import FunctionSpec, LambdaRuntime
from wsauth.localcloud.metrics import EmfError, MetricsPublisher, is_emf_line, parse_emf
from wsauth.localcloud.testing import LocalCloud, eventually

NO_DIRECTIVES = "_aws.CloudWatchMetrics must be a list"
DIMENSIONS = [{"Name": "ApiId", "Value": "abc123"}, {"Name": "Stage", "Value": "prod"}]


def emf(values: dict[str, Any], *, timestamp_ms: int | None = None, **extra: Any) -> bytes:
    """An EMF line as the handlers print it (handlers/metrics.py's shape)."""
    document = {
        "_aws": {
            "Timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": "WsAuth",
                    "Dimensions": [["ApiId", "Stage"]],
                    "Metrics": [{"Name": name, "Unit": "Count"} for name in values],
                }
            ],
        },
        "logger": "metrics",
        "ApiId": "abc123",
        "Stage": "prod",
        **values,
        **extra,
    }
    return json.dumps(document, separators=(",", ":")).encode() + b"\n"


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAws]:
    server = EmbeddedAws()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def publisher(aws: EmbeddedAws) -> Iterator[MetricsPublisher]:
    metrics = MetricsPublisher(lambda: aws.client("cloudwatch"))
    metrics.start()
    yield metrics
    metrics.close()


def _statistics(aws: EmbeddedAws, name: str, around: datetime) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = aws.client("cloudwatch").get_metric_statistics(
        Namespace="WsAuth",
        MetricName=name,
        Dimensions=DIMENSIONS,
        StartTime=around - timedelta(minutes=1),
        EndTime=around + timedelta(minutes=1),
        Period=60,
        Statistics=["Maximum", "Sum", "SampleCount"],
    )["Datapoints"]
    return points


def test_emf_line_becomes_a_metric_in_the_embedded_cloudwatch(
    aws: EmbeddedAws, publisher: MetricsPublisher
) -> None:
    """Namespace, dimensions, value, unit and timestamp as the line says; readable by boto3."""
    stamp = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    line = emf({"ConnectionCount": 3}, timestamp_ms=int(stamp.timestamp() * 1000))
    assert is_emf_line(line)
    assert publisher.submit(line, "sweeper#1")
    assert publisher.flush()
    [point] = _statistics(aws, "ConnectionCount", stamp)
    assert (point["Maximum"], point["SampleCount"], point["Unit"]) == (3.0, 1.0, "Count")
    assert abs(point["Timestamp"] - stamp) < timedelta(minutes=1)
    assert publisher.latest("WsAuth", "ConnectionCount", {"ApiId": "abc123", "Stage": "prod"}) == 3


def test_one_line_with_several_metrics_publishes_each(
    aws: EmbeddedAws, publisher: MetricsPublisher
) -> None:
    """FailedPushes and GonePushes from one line are two metrics with the same dimensions."""
    stamp = datetime(2030, 2, 2, tzinfo=UTC)
    line = emf({"FailedPushes": 2, "GonePushes": 1}, timestamp_ms=int(stamp.timestamp() * 1000))
    assert publisher.submit(line) and publisher.flush()
    assert [p["Sum"] for p in _statistics(aws, "FailedPushes", stamp)] == [2.0]
    assert [p["Sum"] for p in _statistics(aws, "GonePushes", stamp)] == [1.0]


def test_minute_report_names_the_latest_values_once(publisher: MetricsPublisher) -> None:
    """One line per namespace and dimensions published since the last report; then none."""
    publisher.submit(emf({"ConnectionCount": 5}))
    publisher.submit(emf({"ConnectionCount": 3}))
    publisher.submit(emf({"FailedPushes": 1}))
    assert publisher.flush()
    assert publisher.report() == [
        "metrics WsAuth ApiId=abc123 Stage=prod: ConnectionCount=3 FailedPushes=1"
    ]
    assert publisher.report() == []


def test_report_is_logged_on_its_own_timer(
    aws: EmbeddedAws, caplog: pytest.LogCaptureFixture
) -> None:
    """Every `report_seconds` (a minute in `wsauth local`) the thread logs what was published."""
    caplog.set_level(logging.INFO, logger="wsauth.localcloud.metrics")
    metrics = MetricsPublisher(lambda: aws.client("cloudwatch"), report_seconds=0.1)
    metrics.start()
    try:
        metrics.submit(emf({"GonePushes": 4}))

        def reported() -> list[str]:
            return [r.getMessage() for r in caplog.records if r.getMessage().startswith("metrics")]

        assert eventually(reported, timeout=10) == [
            "metrics WsAuth ApiId=abc123 Stage=prod: GonePushes=4"
        ]
    finally:
        metrics.close()


@pytest.mark.parametrize(
    "line",
    [
        b"hello from the handler\n",
        b"[INFO]\t2030-01-01T00:00:00Z\treq\tsent\n",
        b'{"logger":"authorizer","outcome":"allow"}\n',
    ],
)
def test_other_lines_are_not_emf(line: bytes) -> None:
    """Plain text, Lambda's log format and JSON without `_aws` are not even parsed."""
    assert not is_emf_line(line)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"_aws": oops', "not JSON"),
        (b'{"_aws": 1}', "no _aws object"),
        (emf({"ConnectionCount": 1}, timestamp_ms=5).replace(b'"Timestamp":5', b'"x":5'), "Time"),
        (emf({"ConnectionCount": "3"}), "finite number"),
        (emf({"ConnectionCount": True}), "finite number"),
        (emf({"ConnectionCount": 1}).replace(b'"Stage":"prod"', b'"Stage":7'), "Stage"),
        (emf({"ConnectionCount": 1}).replace(b'"Count"', b'"Things"'), "unknown unit"),
        (emf({"ConnectionCount": 1}).replace(b'"ConnectionCount":1', b'"Other":1'), "finite"),
    ],
)
def test_malformed_emf_is_refused(line: bytes, reason: str) -> None:
    """What CloudWatch would not publish raises `EmfError` saying why."""
    with pytest.raises(EmfError, match=reason):
        parse_emf(line)


def test_malformed_emf_line_is_ignored_with_one_debug_line(
    publisher: MetricsPublisher, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing is published; the log has one debug line naming the worker, nothing louder."""
    caplog.set_level(logging.DEBUG, logger="wsauth.localcloud.metrics")
    assert not publisher.submit(b'{"_aws":{"Timestamp":1}}\n', "websocket#2")
    assert publisher.flush()
    records = [r for r in caplog.records if r.name == "wsauth.localcloud.metrics"]
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.DEBUG, f"[websocket#2] not published, not valid EMF: {NO_DIRECTIVES}")
    ]
    assert publisher.report() == []


def test_latest_metric_helper_reads_the_newest_value(
    aws: EmbeddedAws, publisher: MetricsPublisher, tmp_path: Path
) -> None:
    """`LocalCloud.latest_metric` returns the last value published, not a minute's maximum."""
    now_ms = int(time.time() * 1000)
    publisher.submit(emf({"ConnectionCount": 7}, timestamp_ms=now_ms - 2000))
    publisher.submit(emf({"ConnectionCount": 4}, timestamp_ms=now_ms))
    assert publisher.flush()
    outputs = {"awsEndpoint": aws.endpoint, "region": aws.region}
    cloud = LocalCloud(subprocess.Popen(["true"]), outputs, tmp_path / "log")
    cloud.process.wait()
    dimensions = {"ApiId": "abc123", "Stage": "prod"}
    assert cloud.latest_metric("ConnectionCount", dimensions=dimensions) == 4
    assert cloud.latest_metric("ConnectionCount") == 4
    assert cloud.latest_metric("NoSuchMetric") is None


HANDLERS = """
import json, time

def report(event, context):
    print(event["line"])
    print("not a metric")
    return "ok"
"""


def test_workers_hand_emf_lines_to_the_sink_and_log_the_rest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Only the EMF line reaches the sink; the plain line is logged as before."""
    (tmp_path / "fns.py").write_text(textwrap.dedent(HANDLERS))
    spec = FunctionSpec(name="report", handler="fns.report", code_dir=tmp_path, timeout_seconds=5)
    received: list[tuple[bytes, str]] = []
    runtime = LambdaRuntime(
        {"report": spec}, max_workers=1, metrics=lambda line, label: received.append((line, label))
    )
    line = emf({"ConnectionCount": 2}).decode().strip()
    caplog.set_level(logging.INFO, logger="wsauth.localcloud.lambda")

    async def main() -> None:
        try:
            assert await runtime.invoke("report", {"line": line}) == "ok"
        finally:
            await runtime.close()  # the forwarder drains the pipe as the worker exits

    asyncio.run(main())
    assert received == [(line.encode() + b"\n", "report#1")]
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert "[report#1] not a metric" in messages
    assert not any("_aws" in message for message in messages)
