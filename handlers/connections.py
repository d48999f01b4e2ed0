"""Access to the connection table: which WebSocket connections belong to which Cognito user.

Item schema (DESIGN §3): `connectionId` (S, key), `userId` (S, `userIdIndex` key), `removedAt`
(N, epoch seconds, the table's TTL attribute), `expiresAt` (N, epoch seconds: the `exp` of the
token that opened or last refreshed the connection), plus `connectedAt` (N, epoch milliseconds,
as API Gateway reports it), `username` (S) and `expiryBucket` (N, `expiresAt` // 600: the
partition key of `expiryIndex`, so the sweeper finds expired connections by a few queries,
never a Scan) and `counted` (BOOL: the connection is in its user's count, see `users`). Each
user's own item (`users`) shares the table, keyed `user#<sub>`.

The live number of open connections is the item `stats#connections` (`openConnections`, N),
kept by `connection_counter` from the table's stream: every connection item created counts one
in, every one removed (`$disconnect`, a 410, the TTL, a hand in the console) one out.
`open_connection_count` reads it. It has no `userId`, `expiryBucket` nor `removedAt`: in no
index, never expired by the TTL.

Functions take the DynamoDB client and table name as arguments; `dynamodb_client()` is the
lazily created default the Lambda handler uses.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from . import users

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any

__all__ = [
    "COUNT_KEY",
    "DEFAULT_TTL_SECONDS",
    "EXPIRY_BUCKET_SECONDS",
    "EXPIRY_INDEX",
    "USER_ID_INDEX",
    "client_config",
    "connection_ids_of_user",
    "StoredConnection",
    "connections_of_user",
    "forget_connection",
    "delete_connection",
    "dynamodb_client",
    "expired_connection_ids",
    "expiry_bucket",
    "move_expiry",
    "open_connection_count",
    "put_connection",
    "stored_expiry",
    "table_name_from_env",
    "ttl_seconds_from_env",
]

USER_ID_INDEX = "userIdIndex"
EXPIRY_INDEX = "expiryIndex"
EXPIRY_BUCKET_SECONDS = 600
"""Width of one `expiryBucket`: the sweeper queries one bucket per 10 minutes it looks back."""
DEFAULT_TTL_SECONDS = 10800
"""Three hours: API Gateway closes any WebSocket connection after two."""
COUNT_KEY = "stats#connections"
"""The live count's item: API Gateway's connection ids never hold `#`."""

logger = logging.getLogger(__name__)


@functools.cache
def _user_agent() -> str:
    import botocore.session

    # botocore's own identification (SDK, Python, OS), computed once per process.
    return f"{botocore.session.get_session().user_agent()} app/wsauth-handlers"


def client_config(**options: Any) -> Any:
    """Return the botocore `Config` for the handlers' clients, with `options` added.

    Two settings make each call cheaper, on Lambda as anywhere (measured: a
    `post_to_connection`'s request building and signing 388 → 240 µs):

    - a fixed `user_agent`: botocore otherwise assembles its User-Agent string from about
      twenty sanitized components twice per request (once for the headers, once more when
      the request is created), which cost more than the signature;
    - `parameter_validation=False`: every request is built here from values of known types
      (the service still validates what it receives and answers a ClientError).
    """
    from botocore.config import Config

    return Config(user_agent=_user_agent(), parameter_validation=False, **options)


@functools.cache
def dynamodb_client() -> DynamoDBClient:
    """Return the process's DynamoDB client, created on first use.

    Created from the standard environment (region, credentials, `AWS_ENDPOINT_URL_DYNAMODB`),
    so tests and the local cloud decide where it points; never at import time.
    """
    import boto3

    # Lambda's documented variable is AWS_REGION; botocore itself reads only AWS_DEFAULT_REGION.
    return boto3.client(
        "dynamodb", region_name=os.environ.get("AWS_REGION") or None, config=client_config()
    )


def table_name_from_env() -> str:
    """Return `CONNECTION_TABLE_NAME`, the table the function was configured with.

    Raises:
        RuntimeError: The variable is unset or empty (a deployment error).
    """
    name = os.environ.get("CONNECTION_TABLE_NAME", "")
    if not name:
        raise RuntimeError("CONNECTION_TABLE_NAME is not set")
    return name


def ttl_seconds_from_env() -> int:
    """Return `CONNECTION_TTL_SECONDS` (default 10800).

    Raises:
        RuntimeError: The value is not a positive integer.
    """
    raw = os.environ.get("CONNECTION_TTL_SECONDS", "")
    if not raw:
        return DEFAULT_TTL_SECONDS
    try:
        seconds = int(raw)
    except ValueError:
        seconds = 0
    if seconds <= 0:
        raise RuntimeError(f"CONNECTION_TTL_SECONDS must be a positive integer, not {raw!r}")
    return seconds


def put_connection(
    dynamodb: DynamoDBClient,
    table_name: str,
    *,
    connection_id: str,
    user_id: str,
    username: str,
    connected_at_ms: int,
    ttl_seconds: int,
    expires_at: int | None = None,
    counted: bool = False,
    now: float | None = None,
) -> dict[str, Any]:
    """Store one connection and return the item as written (DynamoDB's typed form).

    Args:
        dynamodb: DynamoDB client.
        table_name: The connection table.
        connection_id: API Gateway's connection id.
        user_id: The Cognito `sub` the authorizer verified.
        username: The Cognito username, for people reading the table.
        connected_at_ms: `requestContext.connectedAt` (epoch milliseconds).
        ttl_seconds: How long the item may outlive a missed `$disconnect`.
        expires_at: The `exp` of the token that opened the connection (None: no session
            bound, as with `sessionExpiry: off`).
        counted: Whether the connection is in its user's count (a limit is on), so that
            forgetting it counts it out.
        now: Epoch seconds to count the TTL from; the current time by default.

    Raises:
        botocore.exceptions.ClientError: DynamoDB refused the write.
        botocore.exceptions.BotoCoreError: DynamoDB could not be reached.
    """
    started = time.time() if now is None else now
    item: dict[str, dict[str, Any]] = {
        "connectionId": {"S": connection_id},
        "userId": {"S": user_id},
        "username": {"S": username},
        "connectedAt": {"N": str(int(connected_at_ms))},
        "removedAt": {"N": str(int(started) + ttl_seconds)},
    }
    if expires_at is not None:
        item["expiresAt"] = {"N": str(expires_at)}
        item["expiryBucket"] = {"N": str(expiry_bucket(expires_at))}
    if counted:
        item["counted"] = {"BOOL": True}
    dynamodb.put_item(TableName=table_name, Item=item)
    return item


def is_connection_key(key: str) -> bool:
    """Whether a table key is a connection's (not a user's item or the live count's)."""
    return "#" not in key


def open_connection_count(dynamodb: DynamoDBClient, table_name: str) -> int:
    """Return the live number of open connections (`stats#connections`), never below zero.

    One eventually consistent GetItem, whatever the table holds. The stored sum goes below zero
    only by a fault (a batch of removals counted twice): logged, read as 0.

    Raises:
        botocore.exceptions.ClientError: DynamoDB refused the read.
        botocore.exceptions.BotoCoreError: DynamoDB could not be reached.
    """
    answer = dynamodb.get_item(
        TableName=table_name,
        Key={"connectionId": {"S": COUNT_KEY}},
        ProjectionExpression="openConnections",
    )
    stored = int(answer.get("Item", {}).get("openConnections", {}).get("N", "0"))
    if stored < 0:
        logger.warning(json.dumps({"outcome": "connection_count_negative", "stored": stored}))
    return max(0, stored)


def expiry_bucket(expires_at: int) -> int:
    """Return the `expiryBucket` of a connection that expires at `expires_at` (epoch s)."""
    return expires_at // EXPIRY_BUCKET_SECONDS


def stored_expiry(dynamodb: DynamoDBClient, table_name: str, connection_id: str) -> int | None:
    """Return the connection's `expiresAt` as stored now (a refresh may have moved it).

    Returns:
        Epoch seconds, or None when the item is gone or carries no expiry.

    Raises:
        botocore.exceptions.ClientError: DynamoDB refused the read.
        botocore.exceptions.BotoCoreError: DynamoDB could not be reached.
    """
    answer = dynamodb.get_item(
        TableName=table_name,
        Key={"connectionId": {"S": connection_id}},
        ProjectionExpression="expiresAt",
        ConsistentRead=True,  # a refresh just written must count
    )
    value = answer.get("Item", {}).get("expiresAt", {}).get("N")
    return int(value) if value is not None else None


def move_expiry(
    dynamodb: DynamoDBClient, table_name: str, connection_id: str, user_id: str, expires_at: int
) -> bool:
    """Set a connection's expiry, only if the item exists and belongs to `user_id`.

    Returns:
        True when moved; False when the connection is gone or another user's.

    Raises:
        botocore.exceptions.ClientError: DynamoDB refused the write for another reason.
        botocore.exceptions.BotoCoreError: DynamoDB could not be reached.
    """
    try:
        dynamodb.update_item(
            TableName=table_name,
            Key={"connectionId": {"S": connection_id}},
            UpdateExpression="SET expiresAt = :expires, expiryBucket = :bucket",
            # Never resurrect a connection whose `$disconnect` already deleted it.
            ConditionExpression="attribute_exists(connectionId) AND userId = :user",
            ExpressionAttributeValues={
                ":expires": {"N": str(expires_at)},
                ":bucket": {"N": str(expiry_bucket(expires_at))},
                ":user": {"S": user_id},
            },
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return False
    return True


def expired_connection_ids(
    dynamodb: DynamoDBClient, table_name: str, *, expired_by: float, lookback_seconds: int
) -> Iterator[str]:
    """Yield every stored connection whose `expiresAt` is at or before `expired_by`.

    One query of `expiryIndex` per bucket from `lookback_seconds` ago to `expired_by`, each
    bounded by the sort key: what is read is what expired, whatever the table holds.

    Raises:
        botocore.exceptions.ClientError: DynamoDB refused a query.
        botocore.exceptions.BotoCoreError: DynamoDB could not be reached.
    """
    last = expiry_bucket(int(expired_by))
    first = expiry_bucket(int(expired_by) - lookback_seconds)
    for bucket in range(first, last + 1):
        request = {
            "TableName": table_name,
            "IndexName": EXPIRY_INDEX,
            "KeyConditionExpression": "expiryBucket = :bucket AND expiresAt <= :cutoff",
            "ExpressionAttributeValues": {
                ":bucket": {"N": str(bucket)},
                ":cutoff": {"N": str(int(expired_by))},
            },
            "ProjectionExpression": "connectionId",
        }
        for item in _query_items(dynamodb, request):
            yield item["connectionId"]["S"]


def delete_connection(dynamodb: DynamoDBClient, table_name: str, connection_id: str) -> None:
    """Delete one connection's item (counted out of its user's count if it was counted);
    deleting an unknown id is not an error.

    Raises:
        botocore.exceptions.ClientError: DynamoDB refused the delete.
        botocore.exceptions.BotoCoreError: DynamoDB could not be reached.
    """
    forget_connection(dynamodb, table_name, connection_id)


class StoredConnection(NamedTuple):
    """One connection of a user, as the table holds it."""

    connection_id: str
    expires_at: int | None
    """The session's end (epoch s), or None when no bound is recorded."""
    connected_at_ms: int | None


def connections_of_user(
    dynamodb: DynamoDBClient, table_name: str, user_id: str, *, page_size: int | None = None
) -> Iterator[StoredConnection]:
    """Yield every stored connection of one user.

    Args:
        dynamodb: DynamoDB client.
        table_name: The connection table.
        user_id: The Cognito `sub`.
        page_size: DynamoDB's `Limit` per query page; its 1 MB page cap otherwise.

    Raises:
        botocore.exceptions.ClientError: DynamoDB refused the query.
        botocore.exceptions.BotoCoreError: DynamoDB could not be reached.
    """
    request: dict[str, Any] = {
        "TableName": table_name,
        "IndexName": USER_ID_INDEX,
        "KeyConditionExpression": "userId = :user",
        "ExpressionAttributeValues": {":user": {"S": user_id}},
        # The index projects every attribute (see ConnectionStore).
        "ProjectionExpression": "connectionId, expiresAt, connectedAt",
    }
    if page_size is not None:
        request["Limit"] = page_size
    for item in _query_items(dynamodb, request):
        yield StoredConnection(
            item["connectionId"]["S"],
            _number(item, "expiresAt"),
            _number(item, "connectedAt"),
        )


def _number(item: dict[str, Any], name: str) -> int | None:
    value = item.get(name, {}).get("N")
    return int(value) if value is not None else None


def connection_ids_of_user(
    dynamodb: DynamoDBClient, table_name: str, user_id: str, *, page_size: int | None = None
) -> Iterator[str]:
    """Yield the ids of every stored connection of one user (see `connections_of_user`)."""
    for stored in connections_of_user(dynamodb, table_name, user_id, page_size=page_size):
        yield stored.connection_id


def _query_items(dynamodb: DynamoDBClient, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield every item a query finds, following its pages."""
    request = dict(request)
    while True:
        page = dynamodb.query(**request)
        yield from page.get("Items", [])
        last_key = page.get("LastEvaluatedKey")
        if not last_key:
            return
        request["ExclusiveStartKey"] = last_key


def forget_connection(dynamodb: DynamoDBClient, table_name: str, connection_id: str) -> str | None:
    """Delete a connection's item and take it out of its user's count if it was counted.

    Every path that ends a stored connection goes through here (`$disconnect`, a 410, the
    limit's healing), so the count follows the items.

    Returns:
        The connection's user, or None when there was no item.

    Raises:
        botocore.exceptions.ClientError: DynamoDB refused a write.
        botocore.exceptions.BotoCoreError: DynamoDB could not be reached.
    """
    answer = dynamodb.delete_item(
        TableName=table_name,
        Key={"connectionId": {"S": connection_id}},
        ReturnValues="ALL_OLD",
    )
    old = answer.get("Attributes") or {}
    user_id = old.get("userId", {}).get("S")
    if user_id is not None and old.get("counted", {}).get("BOOL"):
        users.uncount_connections(dynamodb, table_name, user_id)
    return user_id
