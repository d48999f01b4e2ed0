"""Send to WebSocket clients through API Gateway's `@connections` management API.

Other services (and `wsauth notify`) use `send_to_user` to reach every connection of a Cognito
user, and `send_to_connection` for one; the websocket handler's echo goes through `deliver`, so a
410 Gone is handled in exactly one place: the connection is closed for good, its item deleted.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from . import connections

__all__ = [
    "DeliveryReport",
    "Payload",
    "deliver",
    "encode_payload",
    "management_client",
    "send_to_connection",
    "send_to_user",
]

logger = logging.getLogger(__name__)

Payload = str | bytes | Mapping[str, Any]
"""Text (sent as UTF-8), raw bytes, or a JSON object."""

Outcome = tuple[Literal["delivered", "gone", "failed"], str | None]

_POOL_CONNECTIONS = 32
_EXECUTE_API_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?::\d+)?(?:/|$)")


@dataclass
class DeliveryReport:
    """What happened to each connection a payload was sent to."""

    delivered: list[str] = field(default_factory=list)
    """Connections that accepted the payload."""
    gone: list[str] = field(default_factory=list)
    """Connections API Gateway no longer knows (410); their items were deleted."""
    failed: dict[str, str] = field(default_factory=dict)
    """Connection id → reason (an AWS error code, or the client's error) for the others."""

    @property
    def attempted(self) -> int:
        """How many connections were tried."""
        return len(self.delivered) + len(self.gone) + len(self.failed)

    def record(self, connection_id: str, outcome: Outcome) -> None:
        """Add one connection's outcome."""
        status, reason = outcome
        if status == "delivered":
            self.delivered.append(connection_id)
        elif status == "gone":
            self.gone.append(connection_id)
        else:
            self.failed[connection_id] = reason or "unknown"


def encode_payload(payload: Payload) -> bytes:
    """Return the bytes to post: UTF-8 text, bytes as given, a mapping as compact JSON.

    Raises:
        TypeError: The payload is none of those.
    """
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    if isinstance(payload, Mapping):
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    raise TypeError(f"payload must be str, bytes or a mapping, not {type(payload).__name__}")


@functools.lru_cache(maxsize=16)
def management_client(endpoint_url: str | None, region: str | None = None) -> Any:
    """Return a cached `apigatewaymanagementapi` client for one endpoint.

    Args:
        endpoint_url: `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}` (the stack's
            `managementEndpoint`), or None to let boto3 take
            `AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI` from the environment.
        region: Signing region; taken from an `execute-api` endpoint's host when None, else
            from the standard environment.
    """
    import boto3

    if region is None and endpoint_url is not None:
        match = _EXECUTE_API_HOST.search(endpoint_url)
        region = match.group(1) if match else None
    # botocore keeps 10 connections by default; a fan-out with more threads would open and
    # throw away a connection per extra post.
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=endpoint_url,
        region_name=region,
        config=connections.client_config(max_pool_connections=_POOL_CONNECTIONS),
    )


def deliver(
    management: Any, dynamodb: Any, table_name: str, connection_id: str, data: bytes
) -> Outcome:
    """Post to one connection; a connection that is gone (410) has its item deleted.

    Never raises: every failure becomes an outcome, so one bad connection cannot stop a fan-out.

    Returns:
        `("delivered", None)`, `("gone", None)` or `("failed", reason)`.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        management.post_to_connection(ConnectionId=connection_id, Data=data)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "GoneException" or status == 410:
            _forget(dynamodb, table_name, connection_id)
            return ("gone", None)
        return ("failed", code or f"HTTP {status}")
    except BotoCoreError as error:
        return ("failed", type(error).__name__)
    return ("delivered", None)


def _forget(dynamodb: Any, table_name: str, connection_id: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        connections.delete_connection(dynamodb, table_name, connection_id)
    except (BotoCoreError, ClientError) as error:
        # The connection is gone either way; the item's TTL removes it later.
        logger.warning(
            json.dumps(
                {
                    "event": "delete_gone_connection_failed",
                    "connectionId": connection_id,
                    "error": type(error).__name__,
                }
            )
        )


def send_to_connection(
    connection_id: str,
    payload: Payload,
    *,
    table_name: str,
    endpoint_url: str,
    region: str | None = None,
    dynamodb: Any = None,
    management: Any = None,
) -> DeliveryReport:
    """Send a payload to one connection.

    Args:
        connection_id: API Gateway's connection id.
        payload: Text, bytes, or a JSON object.
        table_name: The connection table (to delete the item if the connection is gone).
        endpoint_url: The stack's `managementEndpoint`.
        region: Signing region; see `management_client`.
        dynamodb: A DynamoDB client; `connections.dynamodb_client()` by default.
        management: An `apigatewaymanagementapi` client; one for `endpoint_url` by default.

    Returns:
        A report with the connection in exactly one of its lists.
    """
    data = encode_payload(payload)
    dynamodb = dynamodb if dynamodb is not None else connections.dynamodb_client()
    management = management if management is not None else management_client(endpoint_url, region)
    report = DeliveryReport()
    report.record(connection_id, deliver(management, dynamodb, table_name, connection_id, data))
    return report


def send_to_user(
    user_id: str,
    payload: Payload,
    *,
    table_name: str,
    endpoint_url: str,
    region: str | None = None,
    max_concurrency: int = 16,
    dynamodb: Any = None,
    management: Any = None,
) -> DeliveryReport:
    """Send a payload to every stored connection of one user, a bounded number at a time.

    Args:
        user_id: The Cognito `sub` (the item's `userId`).
        payload: Text, bytes, or a JSON object.
        table_name: The connection table.
        endpoint_url: The stack's `managementEndpoint`.
        region: Signing region; see `management_client`.
        max_concurrency: Most posts in flight at once.
        dynamodb: A DynamoDB client; `connections.dynamodb_client()` by default.
        management: An `apigatewaymanagementapi` client; one for `endpoint_url` by default.

    Returns:
        The report; empty when the user has no connection.

    Raises:
        ValueError: `max_concurrency` is below 1.
        botocore.exceptions.ClientError: The table could not be queried.
    """
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be at least 1, not {max_concurrency}")
    data = encode_payload(payload)
    # Clients are created here, before any thread: boto3's client creation is not thread-safe,
    # while a created client is.
    dynamodb = dynamodb if dynamodb is not None else connections.dynamodb_client()
    management = management if management is not None else management_client(endpoint_url, region)
    connection_ids = list(connections.connection_ids_of_user(dynamodb, table_name, user_id))
    report = DeliveryReport()
    if not connection_ids:
        return report
    for connection_id, outcome in zip(
        connection_ids,
        _post_all(management, dynamodb, table_name, connection_ids, data, max_concurrency),
        strict=True,
    ):
        report.record(connection_id, outcome)
    return report


def _post_all(
    management: Any,
    dynamodb: Any,
    table_name: str,
    connection_ids: list[str],
    data: bytes,
    max_concurrency: int,
) -> Iterable[Outcome]:
    workers = min(max_concurrency, len(connection_ids))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wsauth-send") as pool:
        return list(
            pool.map(
                lambda connection_id: deliver(
                    management, dynamodb, table_name, connection_id, data
                ),
                connection_ids,
            )
        )
