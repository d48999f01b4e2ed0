"""The sweeper Lambda: closes every connection whose session has expired, idle ones included.

Handler string: `handlers.sweeper.handler`, run on a schedule (every minute on AWS). A
connection that sends nothing is never checked by the websocket function, so without this it
would stay open, and keep receiving pushes from senders that do not check, until API Gateway's
two hours. Expired connections are found through `expiryIndex`, one query per 10-minute bucket
back to the connection TTL (no item lives longer), each bounded by `expiresAt`: the reads follow
the number of expired connections, not the size of the table.

Environment: `CONNECTION_TABLE_NAME`, `CONNECTION_TTL_SECONDS`, `CLOCK_LEEWAY_SECONDS`, and
`MANAGEMENT_ENDPOINT` (the stage's `https://…/{stage}`; `AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI`
wins when set, as in the local cloud).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from . import connections, sender, sessions

__all__ = ["handler", "sweep"]


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Lambda entry point for the schedule's events (their content is not used).

    Returns:
        How many expired connections were closed, found gone, or failed.

    Raises:
        RuntimeError: The environment is incomplete (a deployment error).
    """
    endpoint = None
    if not os.environ.get("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI"):
        endpoint = os.environ.get("MANAGEMENT_ENDPOINT") or None
        if endpoint is None:
            raise RuntimeError("MANAGEMENT_ENDPOINT is not set")
    return sweep(
        connections.dynamodb_client(),
        sender.management_client(endpoint, os.environ.get("AWS_REGION") or None),
        connections.table_name_from_env(),
        now=time.time(),
        leeway_seconds=sessions.SessionSettings.from_env(os.environ).leeway_seconds,
        lookback_seconds=connections.ttl_seconds_from_env(),
    )


def sweep(
    dynamodb: Any,
    management: Any,
    table_name: str,
    *,
    now: float,
    leeway_seconds: float,
    lookback_seconds: int,
) -> dict[str, int]:
    """Tell every expired connection so, and close it.

    Args:
        dynamodb: DynamoDB client.
        management: `apigatewaymanagementapi` client for the stage.
        table_name: The connection table.
        now: Epoch seconds.
        leeway_seconds: The clock leeway the authorizer allows on `exp`.
        lookback_seconds: How far back expiries are looked for.

    Returns:
        `{"closed": n, "gone": n, "failed": n}`.
    """
    expired = list(
        connections.expired_connection_ids(
            dynamodb,
            table_name,
            expired_by=now - leeway_seconds,
            lookback_seconds=lookback_seconds,
        )
    )
    report = sender.for_each_connection(
        expired,
        lambda _, connection_id: sender.close(management, dynamodb, table_name, connection_id),
    )
    counts = {"closed": len(report.expired), "gone": len(report.gone), "failed": len(report.failed)}
    print(json.dumps({"logger": "sweeper", **counts, "failures": report.failed}))
    return counts
