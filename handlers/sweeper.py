"""The minute job: publishes the live connection count, and closes every connection whose
session has expired, idle ones included.

Handler string: `handlers.sweeper.handler`, run on a schedule (every minute on AWS). Each run:

1. reads the live count (`connections.open_connection_count`: one GetItem, whatever the table
   holds; `connection_counter` keeps it) and publishes it as the `ConnectionCount` metric;
2. with `SESSION_EXPIRY=enforce` (the default) sweeps: a connection that sends nothing is never
   checked by the websocket function, so without this it would stay open, and keep receiving
   pushes from senders that do not check, until API Gateway's two hours. Expired connections
   are found through `expiryIndex`, one query per 10-minute bucket back to the connection TTL
   (no item lives longer), each bounded by `expiresAt`: the reads follow the number of expired
   connections, not the size of the table. With `off` no connection has a bound: no sweep.

The sweep's `@connections` calls that failed or found the connection gone are published as
`FailedPushes` / `GonePushes`, on the same metrics line as the count (`metrics`, printed only
inside Lambda).

Environment: `CONNECTION_TABLE_NAME`, `CONNECTION_TTL_SECONDS`, `SESSION_EXPIRY`,
`CLOCK_LEEWAY_SECONDS`, `MANAGEMENT_ENDPOINT` (the stage's `https://…/{stage}`, needed to sweep;
`AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI` wins when set, as in the local cloud), and `API_ID`,
`STAGE_NAME`: the metrics' dimensions (without them no metric is published).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from . import connections, metrics, sender, sessions

__all__ = ["handler", "sweep"]


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Lambda entry point for the schedule's events (their content is not used).

    Returns:
        `connections`: the live count (absent when it could not be read); with sessions
        enforced, also how many expired connections were `closed`, found `gone`, or `failed`.

    Raises:
        RuntimeError: The environment is incomplete (a deployment error), or the count could
            not be read (after the sweep, so that the function's errors alarm says so).
    """
    settings = sessions.SessionSettings.from_env(os.environ)
    table_name = connections.table_name_from_env()
    dynamodb = connections.dynamodb_client()
    endpoint = None
    if settings.enforce and not os.environ.get("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI"):
        endpoint = os.environ.get("MANAGEMENT_ENDPOINT") or None
        if endpoint is None:
            raise RuntimeError("MANAGEMENT_ENDPOINT is not set")
    result: dict[str, int] = {}
    count = _connection_count(dynamodb, table_name)
    if count is not None:
        result["connections"] = count
    with metrics.counting_pushes() as pushes:
        try:
            if settings.enforce:
                result.update(
                    sweep(
                        dynamodb,
                        sender.management_client(endpoint, os.environ.get("AWS_REGION") or None),
                        table_name,
                        now=time.time(),
                        leeway_seconds=settings.leeway_seconds,
                        lookback_seconds=connections.ttl_seconds_from_env(),
                    )
                )
        finally:
            # One line per run, the count's and the sweep's pushes together; the count is
            # published even when the sweep failed.
            values = {} if count is None else {metrics.CONNECTION_COUNT: count}
            metrics.publish(
                {**values, **pushes.metrics()},
                api_id=os.environ.get("API_ID"),
                stage=os.environ.get("STAGE_NAME"),
            )
    if count is None:
        raise RuntimeError("the live connection count could not be read (see the log line)")
    return result


def _connection_count(dynamodb: Any, table_name: str) -> int | None:
    """The live count, or None when it cannot be read (logged: the sweep still runs, then the
    run fails)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return connections.open_connection_count(dynamodb, table_name)
    except (BotoCoreError, ClientError) as error:
        response = getattr(error, "response", None) or {}
        code = response.get("Error", {}).get("Code") or type(error).__name__
        print(json.dumps({"logger": "sweeper", "outcome": "count_failed", "error": code}))
        return None


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
