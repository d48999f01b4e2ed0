"""Each user's own item in the connection table: their last sign-out everywhere and how many
connections they have open (DESIGN §7).

The item is keyed `user#<sub>`; it has no `userId` nor `expiryBucket`, so neither index holds
it, and API Gateway's connection ids never hold `#`, so no connection's key can be one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any

__all__ = [
    "USER_ITEM_SECONDS",
    "USER_KEY_PREFIX",
    "count_connection",
    "record_sign_out",
    "signed_out_at",
    "uncount_connections",
    "user_state",
]

USER_KEY_PREFIX = "user#"
"""A user's own item is keyed `user#<sub>`: API Gateway's connection ids never hold `#`. It has
no `userId` nor `expiryBucket`, so neither index holds it."""
USER_ITEM_SECONDS = 86400 + 300
"""How long a user's item outlives its last write: Cognito's longest ID or access token
validity (a day) plus the largest clock leeway, so a sign-out record outlives every token it
revokes."""


def _user_key(user_id: str) -> dict[str, Any]:
    return {"connectionId": {"S": USER_KEY_PREFIX + user_id}}


def user_state(dynamodb: DynamoDBClient, table_name: str, user_id: str) -> dict[str, Any]:
    """Return the user's item (`signedOutAt`, `openConnections`), or {} when there is none.

    Raises:
        botocore.exceptions.ClientError: DynamoDB refused the read.
        botocore.exceptions.BotoCoreError: DynamoDB could not be reached.
    """
    answer = dynamodb.get_item(TableName=table_name, Key=_user_key(user_id), ConsistentRead=True)
    item: dict[str, Any] = answer.get("Item", {})
    return item


def signed_out_at(user_item: dict[str, Any]) -> int | None:
    """The epoch second of the user's last sign-out everywhere, from their item."""
    value = user_item.get("signedOutAt", {}).get("N")
    return int(value) if value is not None else None


def record_sign_out(dynamodb: DynamoDBClient, table_name: str, user_id: str, now: float) -> int:
    """Record that every session of the user that began before `now` is over.

    Returns:
        The recorded second (`signedOutAt`). A token whose `auth_time` is before it is refused;
        one from the same second is not, so a new sign-in works at once.

    Raises:
        botocore.exceptions.ClientError: DynamoDB refused the write.
        botocore.exceptions.BotoCoreError: DynamoDB could not be reached.
    """
    second = int(now)
    dynamodb.update_item(
        TableName=table_name,
        Key=_user_key(user_id),
        UpdateExpression="SET signedOutAt = :at, removedAt = :until",
        ExpressionAttributeValues={
            ":at": {"N": str(second)},
            ":until": {"N": str(second + USER_ITEM_SECONDS)},
        },
    )
    return second


def count_connection(
    dynamodb: DynamoDBClient, table_name: str, user_id: str, *, limit: int, now: float
) -> dict[str, Any] | None:
    """Count one more open connection for the user, unless `limit` are open already.

    The check and the count are one conditional write, so simultaneous handshakes cannot pass
    the limit together.

    Returns:
        The user's item after the count, or None when the limit is reached.

    Raises:
        botocore.exceptions.ClientError: DynamoDB refused the write for another reason.
        botocore.exceptions.BotoCoreError: DynamoDB could not be reached.
    """
    try:
        answer = dynamodb.update_item(
            TableName=table_name,
            Key=_user_key(user_id),
            UpdateExpression="ADD openConnections :one SET removedAt = :until",
            ConditionExpression="attribute_not_exists(openConnections) OR openConnections < :limit",
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":limit": {"N": str(limit)},
                ":until": {"N": str(int(now) + USER_ITEM_SECONDS)},
            },
            ReturnValues="ALL_NEW",
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return None
    item: dict[str, Any] = answer.get("Attributes", {})
    return item


def uncount_connections(
    dynamodb: DynamoDBClient, table_name: str, user_id: str, count: int = 1
) -> None:
    """Count `count` fewer open connections for the user (never below zero).

    Raises:
        botocore.exceptions.ClientError: DynamoDB refused the write for another reason.
        botocore.exceptions.BotoCoreError: DynamoDB could not be reached.
    """
    try:
        dynamodb.update_item(
            TableName=table_name,
            Key=_user_key(user_id),
            UpdateExpression="ADD openConnections :minus",
            ConditionExpression="openConnections >= :count",
            ExpressionAttributeValues={":minus": {"N": str(-count)}, ":count": {"N": str(count)}},
        )
    except dynamodb.exceptions.ConditionalCheckFailedException:
        pass  # already counted out (a healed count, or the limit was off when it connected)
