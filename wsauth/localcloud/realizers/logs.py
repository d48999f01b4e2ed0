"""CloudWatch Logs log groups: recorded (the workers' output goes to the local cloud's log)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wsauth.localcloud.realizers.base import ACCOUNT_ID, Creator, Realized, ServiceRealizer, record

__all__ = ["LogsRealizer"]


class LogsRealizer(ServiceRealizer):
    """`aws.cloudwatch.LogGroup`, recorded with its ARN."""

    service = "logs"

    def creators(self) -> Mapping[str, Creator]:
        return {"aws:cloudwatch/logGroup:LogGroup": self._log_group}

    def _log_group(self, name: str, inputs: dict[str, Any]) -> Realized:
        outputs = record(name, inputs)
        outputs["arn"] = f"arn:aws:logs:{self.region}:{ACCOUNT_ID}:log-group:{outputs['name']}"
        return outputs["id"], outputs
