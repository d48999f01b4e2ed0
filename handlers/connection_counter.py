"""The counter Lambda: keeps the live connection count from the connection table's stream.

Handler string: `handlers.connection_counter.handler`, triggered by the table's DynamoDB Stream
(old images; the event source mapping passes only INSERT and REMOVE records, from the stream's
start). Each batch adds (connection items created) - (connection items removed) to
`stats#connections` in one write: whatever removed an item (`$disconnect`, a 410, the sweeper,
the TTL after a lost `$disconnect`, a hand in the console), the count follows the table, and
`$connect` does not wait for it. Users' items and the count's own item are not connections.

The count belongs to one stream (`streamLabel` on the item, the stream's creation time): a
connection stored before that stream existed was never counted in, so its removal is not
counted out (its `connectedAt` says so), and a new stream (the table's stream replaced) starts
the count over. Connections open when a stream starts are therefore missing from the count
until they have closed, within API Gateway's two hours.

A failed write raises: Lambda retries the batch in order until it succeeds, so no change is
lost (the `counter_errors` and `counter_lag` alarms watch it).

Environment: `CONNECTION_TABLE_NAME`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from . import connections

__all__ = ["count_change", "handler", "stream_started_ms"]


def stream_started_ms(stream_arn: str) -> int:
    """When a stream began (epoch ms), from its ARN's label (`…/stream/2026-11-27T17:50:49.315`).

    Raises:
        ValueError: The ARN is not a DynamoDB stream's.
    """
    _, found, label = stream_arn.rpartition("/stream/")
    if not found:
        raise ValueError(f"not a DynamoDB stream ARN: {stream_arn!r}")
    return int(datetime.fromisoformat(label).replace(tzinfo=UTC).timestamp() * 1000)


def count_change(records: list[dict[str, Any]], stream_started: int) -> tuple[int, int]:
    """Return how many counted connection items a batch of stream records created and removed.

    Args:
        records: DynamoDB stream records (old images).
        stream_started: When their stream began (epoch ms): older connections were never
            counted in.
    """
    created = removed = 0
    for record in records:
        change = record.get("dynamodb") or {}
        key = change.get("Keys", {}).get("connectionId", {}).get("S")
        if key is None or not connections.is_connection_key(key):
            continue
        event = record.get("eventName")
        if event == "INSERT":
            created += 1
        elif event == "REMOVE":
            connected_at = change.get("OldImage", {}).get("connectedAt", {}).get("N")
            if connected_at is None or int(connected_at) >= stream_started:
                removed += 1
    return created, removed


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Lambda entry point for a batch of the table's stream records.

    Returns:
        `{"created": n, "removed": n}` for the batch.

    Raises:
        botocore.exceptions.ClientError: The count could not be written (Lambda retries).
        RuntimeError: The environment is incomplete (a deployment error).
    """
    records = event.get("Records") or []
    created = removed = 0
    if records:
        stream_arn = records[0]["eventSourceARN"]
        created, removed = count_change(records, stream_started_ms(stream_arn))
        if created != removed:
            _add(created - removed, stream_arn.rpartition("/stream/")[2])
    print(json.dumps({"logger": "counter", "created": created, "removed": removed}))
    return {"created": created, "removed": removed}


def _add(change: int, stream_label: str) -> None:
    """Add `change` to the count of this stream; a newer stream's count starts over."""
    dynamodb = connections.dynamodb_client()
    request = {
        "TableName": connections.table_name_from_env(),
        "Key": {"connectionId": {"S": connections.COUNT_KEY}},
        "ExpressionAttributeValues": {":change": {"N": str(change)}, ":label": {"S": stream_label}},
    }
    while True:
        try:
            dynamodb.update_item(
                **request,
                UpdateExpression="ADD openConnections :change",
                ConditionExpression="streamLabel = :label",
            )
            return
        except dynamodb.exceptions.ConditionalCheckFailedException:
            pass
        try:
            # Labels are ISO times: a later stream sorts after an earlier one.
            dynamodb.update_item(
                **request,
                UpdateExpression="SET openConnections = :change, streamLabel = :label",
                ConditionExpression="attribute_not_exists(streamLabel) OR streamLabel < :label",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return
        except dynamodb.exceptions.ConditionalCheckFailedException as refused:
            stored = refused.response.get("Item", {}).get("streamLabel", {}).get("S", "")
        if stored != stream_label:
            # A batch of a stream older than the count's: replaced, its changes no longer count.
            print(
                json.dumps({"logger": "counter", "outcome": "stale_stream", "stream": stream_label})
            )
            return
        # Another shard's batch claimed the count for this stream in between: add to it.
