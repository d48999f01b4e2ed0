"""Send to WebSocket clients through API Gateway's `@connections` management API.

Other services (and `wsauth notify`) use `send_to_user` to reach every connection of a Cognito
user, and `send_to_connection` for one; the websocket handler's echo goes through `deliver`, so a
410 Gone is handled in exactly one place: the connection is closed for good, its item deleted.

Every `@connections` call that fails or finds the connection gone is counted (`metrics`) into
the enclosing scope: the websocket function's invocation, the sweeper's run, or one
`send_to_user` / `send_to_connection` call, which publishes its own `FailedPushes` and
`GonePushes` when its endpoint is an execute-api one (the dimensions come from its URL).
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from . import connections, metrics, sessions

__all__ = [
    "DeliveryReport",
    "Payload",
    "close",
    "deliver",
    "encode_payload",
    "for_each_connection",
    "is_gone",
    "management_client",
    "send_to_connection",
    "send_to_user",
]

logger = logging.getLogger(__name__)

Payload = str | bytes | Mapping[str, Any]
"""Text (sent as UTF-8), raw bytes, or a JSON object."""

Outcome = tuple[Literal["delivered", "gone", "failed", "expired"], str | None]

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
    expired: list[str] = field(default_factory=list)
    """Connections whose session had expired: not delivered to, told so and closed."""

    @property
    def attempted(self) -> int:
        """How many connections were tried."""
        return len(self.delivered) + len(self.gone) + len(self.failed) + len(self.expired)

    def record(self, connection_id: str, outcome: Outcome) -> None:
        """Add one connection's outcome."""
        status, reason = outcome
        if status == "delivered":
            self.delivered.append(connection_id)
        elif status == "gone":
            self.gone.append(connection_id)
        elif status == "expired":
            self.expired.append(connection_id)
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
    return _on_connection(
        lambda: management.post_to_connection(ConnectionId=connection_id, Data=data),
        dynamodb,
        table_name,
        connection_id,
        "delivered",
    )


def close(
    management: Any,
    dynamodb: Any,
    table_name: str,
    connection_id: str,
    notice: bytes | None = sessions.SESSION_EXPIRED,
) -> Outcome:
    """Tell a connection why (`notice`), then close it; never raises.

    `DELETE @connections/{id}` makes API Gateway close the socket and run `$disconnect`, which
    deletes the item; a connection already gone (410) has its item deleted here.

    Returns:
        `("expired", None)` when closed, `("gone", None)` or `("failed", reason)`.
    """
    if notice is not None:
        status, reason = deliver(management, dynamodb, table_name, connection_id, notice)
        if status == "gone":
            return (status, reason)
    outcome = _on_connection(
        lambda: management.delete_connection(ConnectionId=connection_id),
        dynamodb,
        table_name,
        connection_id,
        "expired",
    )
    if notice is not None and outcome[0] == "gone":
        # Told, then gone before the DELETE: the client hung up on reading the notice.
        return ("expired", None)
    return outcome


def is_gone(error: Any) -> bool:
    """Whether a `@connections` ClientError says API Gateway no longer knows the connection."""
    code = error.response.get("Error", {}).get("Code", "")
    return bool(code == "GoneException" or _http_status(error) == 410)


def _on_connection(
    call: Callable[[], Any],
    dynamodb: Any,
    table_name: str,
    connection_id: str,
    done: Literal["delivered", "expired"],
) -> Outcome:
    """Make one `@connections` call; a connection that is gone (410) has its item deleted."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        call()
    except ClientError as error:
        if is_gone(error):
            metrics.count_push("gone")
            _forget(dynamodb, table_name, connection_id)
            return ("gone", None)
        metrics.count_push("failed")
        code = error.response.get("Error", {}).get("Code", "")
        return ("failed", code or f"HTTP {_http_status(error)}")
    except BotoCoreError as error:
        metrics.count_push("failed")
        return ("failed", type(error).__name__)
    return (done, None)


def _http_status(error: Any) -> int | None:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


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
    leeway_seconds: float = 0.0,
    dynamodb: Any = None,
    management: Any = None,
) -> DeliveryReport:
    """Send a payload to one connection, unless its session has expired.

    An expired connection (its stored `expiresAt` plus `leeway_seconds` has passed) gets no
    payload: it is told `{"type": "sessionExpired"}` and closed, and reported as expired.

    Args:
        connection_id: API Gateway's connection id.
        payload: Text, bytes, or a JSON object.
        table_name: The connection table (to delete the item if the connection is gone).
        endpoint_url: The stack's `managementEndpoint`.
        region: Signing region; see `management_client`.
        leeway_seconds: Clock skew tolerated on the session's expiry (the stack's leeway).
        dynamodb: A DynamoDB client; `connections.dynamodb_client()` by default.
        management: An `apigatewaymanagementapi` client; one for `endpoint_url` by default.

    Returns:
        A report with the connection in exactly one of its lists.

    Raises:
        botocore.exceptions.ClientError: The table could not be read.
    """
    data = encode_payload(payload)
    dynamodb = dynamodb if dynamodb is not None else connections.dynamodb_client()
    management = management if management is not None else management_client(endpoint_url, region)
    with _publishing_pushes(endpoint_url):
        expires_at = connections.stored_expiry(dynamodb, table_name, connection_id)
        report = DeliveryReport()
        report.record(
            connection_id,
            _deliver_unless_expired(
                management, dynamodb, table_name, connection_id, expires_at, data, leeway_seconds
            ),
        )
    return report


def _publishing_pushes(endpoint_url: str | None) -> metrics.publishing_pushes:
    """The push metrics scope of one send call, dimensioned by its execute-api endpoint."""
    api_id, stage = metrics.endpoint_dimensions(endpoint_url) or (None, None)
    return metrics.publishing_pushes(api_id, stage)


def _deliver_unless_expired(
    management: Any,
    dynamodb: Any,
    table_name: str,
    connection_id: str,
    expires_at: int | None,
    data: bytes,
    leeway_seconds: float,
) -> Outcome:
    if sessions.is_expired(expires_at, time.time(), leeway_seconds):
        return close(management, dynamodb, table_name, connection_id)
    return deliver(management, dynamodb, table_name, connection_id, data)


def send_to_user(
    user_id: str,
    payload: Payload,
    *,
    table_name: str,
    endpoint_url: str,
    region: str | None = None,
    max_concurrency: int = 16,
    leeway_seconds: float = 0.0,
    dynamodb: Any = None,
    management: Any = None,
) -> DeliveryReport:
    """Send a payload to every stored connection of one user, a bounded number at a time.

    Connections whose session has expired get no payload: they are told
    `{"type": "sessionExpired"}`, closed, and reported as expired.

    Args:
        user_id: The Cognito `sub` (the item's `userId`).
        payload: Text, bytes, or a JSON object.
        table_name: The connection table.
        endpoint_url: The stack's `managementEndpoint`.
        region: Signing region; see `management_client`.
        max_concurrency: Most posts in flight at once.
        leeway_seconds: Clock skew tolerated on the sessions' expiry (the stack's leeway).
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
    with _publishing_pushes(endpoint_url):
        found = list(connections.connections_of_user(dynamodb, table_name, user_id))
        return for_each_connection(
            [stored.connection_id for stored in found],
            lambda index, connection_id: _deliver_unless_expired(
                management,
                dynamodb,
                table_name,
                connection_id,
                found[index].expires_at,
                data,
                leeway_seconds,
            ),
            max_concurrency,
        )


def for_each_connection(
    connection_ids: list[str],
    act: Callable[[int, str], Outcome],
    max_concurrency: int = 16,
) -> DeliveryReport:
    """Run `act(index, connection_id)` for each connection, a bounded number at a time.

    Each runs in a copy of the caller's context, so its pushes are counted in the caller's
    metrics scope.

    Returns:
        The report of their outcomes.
    """
    report = DeliveryReport()
    if not connection_ids:
        return report
    workers = min(max_concurrency, len(connection_ids))
    # A context can be entered by one thread at a time: one copy per connection.
    contexts = [contextvars.copy_context() for _ in connection_ids]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wsauth-send") as pool:
        outcomes = list(
            pool.map(
                lambda context, index, connection_id: context.run(act, index, connection_id),
                contexts,
                range(len(connection_ids)),
                connection_ids,
            )
        )
    for connection_id, outcome in zip(connection_ids, outcomes, strict=True):
        report.record(connection_id, outcome)
    return report
