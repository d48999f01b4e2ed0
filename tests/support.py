"""Test and benchmark helpers that need no fixture machinery (importable as `tests.support`).

Dev-only: the tests and `bench/` use it; nothing that ships (components, handlers, wsauth) does.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

__all__ = ["connection_items", "create_connection_table", "next_json", "until_closed"]


async def next_json(websocket: Any, timeout: float = 30) -> Any:
    """The next message of a WebSocket client, parsed as JSON."""
    return json.loads(await asyncio.wait_for(websocket.recv(), timeout))


async def until_closed(websocket: Any, timeout: float = 30) -> None:
    """Read on until the server closes the connection; fail if it stays open past `timeout`."""
    from websockets.exceptions import ConnectionClosed

    try:
        while True:
            await asyncio.wait_for(websocket.recv(), timeout)
    except ConnectionClosed:
        return


def create_connection_table(dynamodb: Any, table_name: str) -> None:
    """Create a connection table with the key schema of DESIGN.md §3, as `ConnectionStore` does.

    Only what the handlers rely on: the `connectionId` hash key, the `userIdIndex` on `userId`
    (projecting ALL as the component's table does) and the `expiryIndex` on `expiryBucket` and
    `expiresAt`. The index names are spelled out, not imported from `handlers.connections`, so a
    handler querying another name fails against it.
    TTL, encryption and backups are the component's business, checked by its own tests.

    Args:
        dynamodb: A boto3 DynamoDB client (moto's, in-process or server).
        table_name: The table to create.
    """
    dynamodb.create_table(
        TableName=table_name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "connectionId", "AttributeType": "S"},
            {"AttributeName": "userId", "AttributeType": "S"},
            {"AttributeName": "expiryBucket", "AttributeType": "N"},
            {"AttributeName": "expiresAt", "AttributeType": "N"},
        ],
        KeySchema=[{"AttributeName": "connectionId", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "userIdIndex",
                "KeySchema": [{"AttributeName": "userId", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": "expiryIndex",
                "KeySchema": [
                    {"AttributeName": "expiryBucket", "KeyType": "HASH"},
                    {"AttributeName": "expiresAt", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
        ],
    )


def connection_items(dynamodb: Any, table_name: str) -> list[dict[str, Any]]:
    """Every connection's item in the table (a consistent Scan, fine for tests' small tables).

    The table also holds each user's own item (`user#<sub>`) and the live count's item
    (`stats#connections`); API Gateway's connection ids never hold `#`, so those are left out.
    """
    request: dict[str, Any] = {"TableName": table_name, "ConsistentRead": True}
    items: list[dict[str, Any]] = []
    while True:
        page = dynamodb.scan(**request)
        items += [item for item in page["Items"] if "#" not in item["connectionId"]["S"]]
        if not page.get("LastEvaluatedKey"):
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
