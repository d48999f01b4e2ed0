"""Access to the connection table: which WebSocket connections belong to which Cognito user.

Item schema (DESIGN §3): `connectionId` (S, key), `userId` (S, `userIdIndex` key), `removedAt`
(N, epoch seconds, the table's TTL attribute), plus `connectedAt` (N, epoch milliseconds, as
API Gateway reports it) and `username` (S).

Functions take the DynamoDB client and table name as arguments; `dynamodb_client()` is the
lazily created default the Lambda handler uses.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any

__all__ = [
    "DEFAULT_TTL_SECONDS",
    "USER_ID_INDEX",
    "client_config",
    "connection_ids_of_user",
    "delete_connection",
    "dynamodb_client",
    "put_connection",
    "table_name_from_env",
    "ttl_seconds_from_env",
]

USER_ID_INDEX = "userIdIndex"
DEFAULT_TTL_SECONDS = 10800
"""Three hours: API Gateway closes any WebSocket connection after two."""


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
        now: Epoch seconds to count the TTL from; the current time by default.

    Raises:
        botocore.exceptions.ClientError: DynamoDB refused the write.
        botocore.exceptions.BotoCoreError: DynamoDB could not be reached.
    """
    started = time.time() if now is None else now
    item = {
        "connectionId": {"S": connection_id},
        "userId": {"S": user_id},
        "username": {"S": username},
        "connectedAt": {"N": str(int(connected_at_ms))},
        "removedAt": {"N": str(int(started) + ttl_seconds)},
    }
    dynamodb.put_item(TableName=table_name, Item=item)
    return item


def delete_connection(dynamodb: DynamoDBClient, table_name: str, connection_id: str) -> None:
    """Delete one connection's item; deleting an unknown id is not an error.

    Raises:
        botocore.exceptions.ClientError: DynamoDB refused the delete.
        botocore.exceptions.BotoCoreError: DynamoDB could not be reached.
    """
    dynamodb.delete_item(TableName=table_name, Key={"connectionId": {"S": connection_id}})


def connection_ids_of_user(
    dynamodb: DynamoDBClient, table_name: str, user_id: str, *, page_size: int | None = None
) -> Iterator[str]:
    """Yield the ids of every stored connection of one user, following pagination.

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
        # The table key is projected into every index, whatever its projection type.
        "ProjectionExpression": "connectionId",
    }
    if page_size is not None:
        request["Limit"] = page_size
    while True:
        page = dynamodb.query(**request)
        for item in page.get("Items", []):
            yield item["connectionId"]["S"]
        last_key = page.get("LastEvaluatedKey")
        if not last_key:
            return
        request["ExclusiveStartKey"] = last_key
