"""CloudWatch alarms and dashboards: recorded (nothing evaluates an alarm locally).

The metrics they watch are real here, though: the Lambda workers' embedded-metric-format lines
reach the embedded CloudWatch (`wsauth.localcloud.metrics`), where `get_metric_statistics`
reads them. Log groups, metric filters and EventBridge rules carry `aws:cloudwatch/…` tokens
too, but belong to CloudWatch Logs (`logs.py`) and EventBridge (`events.py`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from wsauth.localcloud.realizers.base import (
    ACCOUNT_ID,
    Creator,
    Realized,
    RealizeError,
    ServiceRealizer,
    stable_id,
)

__all__ = ["CloudWatchRealizer"]

_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
_DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"


class CloudWatchRealizer(ServiceRealizer):
    """`aws.cloudwatch.MetricAlarm` and `Dashboard`, recorded with their ARNs."""

    service = "cloudwatch"

    def creators(self) -> Mapping[str, Creator]:
        return {_ALARM: self._alarm, _DASHBOARD: self._dashboard}

    def _alarm(self, name: str, inputs: dict[str, Any]) -> Realized:
        alarm_name = inputs.get("name") or f"{name}-{stable_id(_ALARM + name, 7)}"
        self.note_recorded(_ALARM, "CloudWatch alarm", "CloudWatch alarms")
        return alarm_name, {
            **inputs,
            "id": alarm_name,
            "name": alarm_name,
            "arn": f"arn:aws:cloudwatch:{self.region}:{ACCOUNT_ID}:alarm:{alarm_name}",
        }

    def _dashboard(self, name: str, inputs: dict[str, Any]) -> Realized:
        dashboard_name = inputs.get("dashboardName") or name
        # PutDashboard refuses a body that is not a JSON object; so does `pulumi up`, so here.
        try:
            body = json.loads(inputs.get("dashboardBody") or "")
        except (TypeError, ValueError):
            body = None
        if not isinstance(body, dict):
            raise RealizeError(f"dashboard {dashboard_name}: dashboard_body must be a JSON object")
        self.note_recorded(_DASHBOARD, "dashboard", "dashboards")
        return dashboard_name, {
            **inputs,
            "id": dashboard_name,
            "dashboardName": dashboard_name,
            # Dashboards are global: no region in their ARN.
            "dashboardArn": f"arn:aws:cloudwatch::{ACCOUNT_ID}:dashboard/{dashboard_name}",
        }
