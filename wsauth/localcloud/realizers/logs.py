"""CloudWatch Logs log groups and metric filters: recorded (the workers' output goes to the
local cloud's log; metric filters are not applied to it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wsauth.localcloud.realizers.base import ACCOUNT_ID, Creator, Realized, ServiceRealizer, record

__all__ = ["LogsRealizer"]

_LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
_METRIC_FILTER = "aws:cloudwatch/logMetricFilter:LogMetricFilter"


class LogsRealizer(ServiceRealizer):
    """`aws.cloudwatch.LogGroup` (recorded with its ARN) and `LogMetricFilter` (recorded)."""

    service = "logs"

    def creators(self) -> Mapping[str, Creator]:
        return {_LOG_GROUP: self._log_group, _METRIC_FILTER: self._metric_filter}

    def _log_group(self, name: str, inputs: dict[str, Any]) -> Realized:
        outputs = record(name, inputs)
        outputs["arn"] = f"arn:aws:logs:{self.region}:{ACCOUNT_ID}:log-group:{outputs['name']}"
        self.note_recorded(_LOG_GROUP, "log group", "log groups")
        return outputs["id"], outputs

    def _metric_filter(self, name: str, inputs: dict[str, Any]) -> Realized:
        filter_name = inputs.get("name") or name
        self.note_recorded(_METRIC_FILTER, "log metric filter", "log metric filters")
        return filter_name, {**inputs, "id": filter_name, "name": filter_name}
