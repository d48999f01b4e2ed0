"""The websocket Lambda: `$connect` stores, `$disconnect` deletes, every other route echoes.

Handler string: `handlers.websocket.handler`. Environment (DESIGN §3): `CONNECTION_TABLE_NAME`,
`CONNECTION_TTL_SECONDS` (default 10800).

Echo: the sender receives `{"message": <body>}` as UTF-8 JSON text. A binary frame
(`isBase64Encoded`) whose bytes are UTF-8 is echoed as that text; other bytes are echoed as their
base64 text with `"isBase64Encoded": true` added, so JSON can carry them and the client can tell.

Management API endpoint: when `AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI` is set (the local cloud
sets it), boto3 takes it from the environment; otherwise it is `https://{domainName}/{stage}`
from the event, as AWS documents for `@connections`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import time
from typing import Any

from . import connections, sender

__all__ = ["echo_message", "handler", "management_endpoint", "on_connect", "on_disconnect"]

logger = logging.getLogger(__name__)

SUBPROTOCOL = "wsauth"
"""Answered on `$connect` when the client offered it (the token-in-header option)."""


def _status(code: int) -> dict[str, Any]:
    # A new dict per answer: the runtime owns what the handler returns.
    return {"statusCode": code}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point for every route of the WebSocket API.

    Args:
        event: API Gateway's WebSocket proxy event.
        context: Lambda's context (unused).

    Returns:
        The route's answer: `{"statusCode": ...}`, plus the subprotocol header on `$connect`.
    """
    request = event.get("requestContext") or {}
    route = request.get("routeKey")
    table_name = connections.table_name_from_env()
    if route == "$connect":
        return on_connect(
            event,
            connections.dynamodb_client(),
            table_name,
            ttl_seconds=connections.ttl_seconds_from_env(),
        )
    if route == "$disconnect":
        return on_disconnect(event, connections.dynamodb_client(), table_name)
    # `$default` and any custom route a program adds: echo.
    endpoint = management_endpoint(request)
    return echo_message(
        event,
        sender.management_client(endpoint, os.environ.get("AWS_REGION") or None),
        connections.dynamodb_client(),
        table_name,
    )


def on_connect(
    event: dict[str, Any], dynamodb: Any, table_name: str, *, ttl_seconds: int
) -> dict[str, Any]:
    """Store the new connection; answer 500 when it cannot be stored, so it is refused.

    The user comes from the authorizer's context; with no user there is nothing to vouch for
    the connection, and it is refused (403).

    Args:
        event: The `$connect` event.
        dynamodb: DynamoDB client.
        table_name: The connection table.
        ttl_seconds: How long the item may outlive a missed `$disconnect`.

    Returns:
        200 (with `Sec-WebSocket-Protocol: wsauth` when offered), 403 or 500.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    request = event.get("requestContext") or {}
    connection_id = request.get("connectionId")
    identity = request.get("authorizer") or {}
    user_id = identity.get("userId") or identity.get("principalId")
    if not connection_id or not user_id:
        _log("connect_refused", connection_id, reason="no_authorized_user")
        return _status(403)
    try:
        connections.put_connection(
            dynamodb,
            table_name,
            connection_id=connection_id,
            user_id=str(user_id),
            username=str(identity.get("username") or ""),
            connected_at_ms=int(request.get("connectedAt") or time.time() * 1000),
            ttl_seconds=ttl_seconds,
        )
    except (BotoCoreError, ClientError) as error:
        _log("connect_store_failed", connection_id, error=_error_name(error))
        return _status(500)
    if SUBPROTOCOL in _offered_subprotocols(event):
        # Browsers fail the handshake unless the server picks one of the offered subprotocols;
        # never the other one, which is the token.
        return {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": SUBPROTOCOL}}
    return _status(200)


def on_disconnect(event: dict[str, Any], dynamodb: Any, table_name: str) -> dict[str, Any]:
    """Delete the connection's item (harmless when it is unknown).

    Returns:
        200, or 500 when DynamoDB failed (API Gateway ignores it; the TTL still applies).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    connection_id = (event.get("requestContext") or {}).get("connectionId")
    if not connection_id:
        return _status(200)
    try:
        connections.delete_connection(dynamodb, table_name, connection_id)
    except (BotoCoreError, ClientError) as error:
        # API Gateway ignores this answer; the item's TTL still removes it.
        _log("disconnect_delete_failed", connection_id, error=_error_name(error))
        return _status(500)
    return _status(200)


def echo_message(
    event: dict[str, Any], management: Any, dynamodb: Any, table_name: str
) -> dict[str, Any]:
    """Post `{"message": <body>}` back to the sender through the management API.

    Args:
        event: A message event (`$default` or a custom route).
        management: `apigatewaymanagementapi` client for this API's stage.
        dynamodb: DynamoDB client, to forget the sender if it is gone (410).
        table_name: The connection table.

    Returns:
        200 when delivered or gone, 500 when the post failed otherwise.
    """
    connection_id = (event.get("requestContext") or {}).get("connectionId")
    if not connection_id:
        return _status(500)
    echo = _echo_document(event)
    data = json.dumps(echo, ensure_ascii=False).encode("utf-8")
    status, reason = sender.deliver(management, dynamodb, table_name, connection_id, data)
    if status == "failed":
        _log("echo_failed", connection_id, error=reason)
        return _status(500)
    return _status(200)


def management_endpoint(request_context: dict[str, Any]) -> str | None:
    """Return the `@connections` endpoint for this event, or None to use the configured one.

    An endpoint passed to boto3 explicitly overrides `AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI`,
    so the event's domain is used only when that variable is unset.

    Args:
        request_context: The event's `requestContext` (`domainName`, `stage`).
    """
    if os.environ.get("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI"):
        return None
    return f"https://{request_context['domainName']}/{request_context['stage']}"


def _echo_document(event: dict[str, Any]) -> dict[str, Any]:
    body = event.get("body")
    if body is None:
        return {"message": ""}
    if not event.get("isBase64Encoded"):
        return {"message": body}
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return {"message": body, "isBase64Encoded": True}
    try:
        return {"message": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {"message": base64.b64encode(raw).decode("ascii"), "isBase64Encoded": True}


def _offered_subprotocols(event: dict[str, Any]) -> list[str]:
    # Header names are case-insensitive; API Gateway keeps the client's spelling.
    offered: list[str] = []
    for source in ("multiValueHeaders", "headers"):
        for name, value in (event.get(source) or {}).items():
            if name.lower() != "sec-websocket-protocol":
                continue
            values = value if isinstance(value, list) else [value]
            for header in values:
                offered += [part.strip() for part in str(header).split(",") if part.strip()]
    return offered


def _error_name(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code") or type(error).__name__)
    return type(error).__name__


def _log(outcome: str, connection_id: str | None, **fields: Any) -> None:
    logger.warning(json.dumps({"outcome": outcome, "connectionId": connection_id, **fields}))
