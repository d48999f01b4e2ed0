"""The CloudWatch dashboard body of one API: what to look at first when operating it.

Built from plain names (resolved outputs), so its JSON can be checked and drawn without AWS.
Widgets sit on CloudWatch's 24-column grid; every metric names this stack's resources only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Where the functions publish their own metrics (embedded metric format), by ApiId and Stage.
from wsauth.handlers.metrics import CONNECTION_COUNT, FAILED_PUSHES, GONE_PUSHES
from wsauth.handlers.metrics import NAMESPACE as METRICS_NAMESPACE

__all__ = ["METRICS_NAMESPACE", "DashboardSubject", "dashboard_body"]


@dataclass(frozen=True)
class DashboardSubject:
    """The resources one dashboard shows."""

    region: str
    api_id: str
    stage: str
    authorizer_function: str
    websocket_function: str
    sweeper_function: str
    counter_function: str
    table_name: str
    index_names: Sequence[str]
    authorizer_namespace: str
    """Namespace of the metrics filtered from the authorizer's decision lines."""
    alarm_arns: Sequence[str]


def dashboard_body(subject: DashboardSubject) -> str:
    """Return the dashboard's JSON body."""
    s = subject
    stage = ("ApiId", s.api_id, "Stage", s.stage)
    functions = (
        ("authorizer", s.authorizer_function),
        ("websocket", s.websocket_function),
        ("minute job", s.sweeper_function),
        ("counter", s.counter_function),
    )

    def per_function(metric: str, stat: str) -> list[list[Any]]:
        return [
            ["AWS/Lambda", metric, "FunctionName", name, {"label": label, "stat": stat}]
            for label, name in functions
        ]

    table_throttles = [
        ["AWS/DynamoDB", metric, "TableName", s.table_name, {"label": f"table {label}"}]
        for metric, label in (("ReadThrottleEvents", "reads"), ("WriteThrottleEvents", "writes"))
    ] + [
        [
            "AWS/DynamoDB",
            metric,
            "TableName",
            s.table_name,
            "GlobalSecondaryIndexName",
            index,
            {"label": f"{index} {label}"},
        ]
        for index in s.index_names
        for metric, label in (("ReadThrottleEvents", "reads"), ("WriteThrottleEvents", "writes"))
    ]
    widgets = [
        _single_value(
            (0, 0, 6, 6),
            "Connections now",
            [[METRICS_NAMESPACE, CONNECTION_COUNT, *stage, {"label": "open connections"}]],
            s.region,
        ),
        _time_series(
            (6, 0, 9, 6),
            "Connects and messages per minute",
            [
                ["AWS/ApiGateway", "ConnectCount", *stage, {"label": "connects"}],
                ["AWS/ApiGateway", "MessageCount", *stage, {"label": "messages"}],
            ],
            s.region,
        ),
        _time_series(
            (15, 0, 9, 6),
            "Authorizer decisions per minute",
            [
                [s.authorizer_namespace, outcome, {"label": outcome.lower()}]
                for outcome in ("Allow", "Deny", "Error")
            ],
            s.region,
        ),
        _time_series(
            (0, 6, 8, 6),
            "Function duration, p99 (ms)",
            per_function("Duration", "p99"),
            s.region,
            stat="p99",
        ),
        _time_series((8, 6, 8, 6), "Function errors", per_function("Errors", "Sum"), s.region),
        _time_series(
            (16, 6, 8, 6),
            "API Gateway errors",
            [
                ["AWS/ApiGateway", metric, *stage, {"label": metric}]
                for metric in ("IntegrationError", "ExecutionError", "ClientError")
            ],
            s.region,
        ),
        _time_series(
            (0, 12, 8, 8),
            "Throttles",
            per_function("Throttles", "Sum") + table_throttles,
            s.region,
        ),
        _time_series(
            (8, 12, 8, 8),
            "Pushes that did not arrive",
            [
                [METRICS_NAMESPACE, FAILED_PUSHES, *stage, {"label": "failed (429, 5xx)"}],
                [METRICS_NAMESPACE, GONE_PUSHES, *stage, {"label": "gone (410)"}],
            ],
            s.region,
        ),
        {
            "type": "alarm",
            "x": 16,
            "y": 12,
            "width": 8,
            "height": 8,
            "properties": {"title": "Alarms", "alarms": list(s.alarm_arns)},
        },
    ]
    if not s.alarm_arns:
        widgets.pop()
    return json.dumps({"widgets": widgets}, separators=(",", ":"))


def _time_series(
    box: tuple[int, int, int, int],
    title: str,
    metrics: list[list[Any]],
    region: str,
    *,
    stat: str = "Sum",
) -> dict[str, Any]:
    return _metric_widget(box, title, metrics, region, view="timeSeries", stat=stat)


def _single_value(
    box: tuple[int, int, int, int], title: str, metrics: list[list[Any]], region: str
) -> dict[str, Any]:
    widget = _metric_widget(box, title, metrics, region, view="singleValue", stat="Maximum")
    widget["properties"]["sparkline"] = True
    return widget


def _metric_widget(
    box: tuple[int, int, int, int],
    title: str,
    metrics: list[list[Any]],
    region: str,
    *,
    view: str,
    stat: str,
) -> dict[str, Any]:
    x, y, width, height = box
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": width,
        "height": height,
        "properties": {
            "title": title,
            "view": view,
            "region": region,
            "stat": stat,
            "period": 60,
            "metrics": metrics,
        },
    }
