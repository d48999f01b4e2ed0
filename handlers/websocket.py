"""The websocket Lambda: `$connect` stores, `$disconnect` deletes, every other route echoes.

Handler string: `handlers.websocket.handler`. Environment (DESIGN §3): `CONNECTION_TABLE_NAME`,
`CONNECTION_TTL_SECONDS` (default 10800), `SESSION_EXPIRY` and `CLOCK_LEEWAY_SECONDS` (see
`sessions`), and for the `refreshToken` route the authorizer's own settings (`USER_POOL_ID`,
`APP_CLIENT_ID`, `TOKEN_USE`, optional `JWKS_URL`).

Sessions (DESIGN §7): every message is first checked against the session's expiry; an expired
session's message is not handled: the client gets `{"type": "sessionExpired"}` and is closed.
`{"action": "refreshToken", "token": ...}` moves the expiry after the authorizer's checks.

Echo: the sender receives `{"message": <body>}` as UTF-8 JSON text. A binary frame
(`isBase64Encoded`) whose bytes are UTF-8 is echoed as that text; other bytes are echoed as their
base64 text with `"isBase64Encoded": true` added, so JSON can carry them and the client can tell.

Management API endpoint: when `AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI` is set (the local cloud
sets it), boto3 takes it from the environment; otherwise `MANAGEMENT_ENDPOINT` (the stage's
execute-api URL), and only without it `https://{domainName}/{stage}` from the event.

Metrics (`metrics`): the `@connections` calls of one message's handling (the echo, a refresh's
answer, sign-out notices, closing an expired session) that failed or found the connection gone
are published as `FailedPushes` / `GonePushes`, one line at most, dimensioned by the event's
`apiId` and `stage`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import time
from typing import Any

from . import admission, connections, metrics, sender, sessions, users

__all__ = [
    "echo_message",
    "handler",
    "management_endpoint",
    "on_connect",
    "on_disconnect",
    "refresh_session",
    "sign_out_everywhere",
]

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
        settings = _session_settings()
        return on_connect(
            event,
            connections.dynamodb_client(),
            table_name,
            ttl_seconds=connections.ttl_seconds_from_env(),
            settings=settings,
            # Only a user at the limit needs `@connections` (to find connections gone unseen).
            management=_management(request) if settings.max_connections_per_user else None,
        )
    if route == "$disconnect":
        return on_disconnect(event, connections.dynamodb_client(), table_name)
    with metrics.publishing_pushes(request.get("apiId"), request.get("stage")):
        return _on_message(event, request, route, table_name)


def _on_message(
    event: dict[str, Any], request: dict[str, Any], route: Any, table_name: str
) -> dict[str, Any]:
    management = _management(request)
    dynamodb = connections.dynamodb_client()
    settings = _session_settings()
    if settings.enforce and _session_over(request, dynamodb, table_name, settings):
        _log("session_expired", request.get("connectionId"), route=route)
        sender.close(management, dynamodb, table_name, request.get("connectionId") or "")
        return _status(200)
    if route == sessions.REFRESH_ROUTE:
        return refresh_session(event, management, dynamodb, table_name)
    if route == sessions.SIGN_OUT_ROUTE:
        return sign_out_everywhere(event, management, dynamodb, table_name)
    # `$default` and any custom route a program adds: echo.
    return echo_message(event, management, dynamodb, table_name)


_settings: sessions.SessionSettings | None = None


def _management(request: dict[str, Any]) -> Any:
    return sender.management_client(
        management_endpoint(request), os.environ.get("AWS_REGION") or None
    )


def _session_settings() -> sessions.SessionSettings:
    global _settings
    if _settings is None:
        _settings = sessions.SessionSettings.from_env(os.environ)
    return _settings


def _session_over(
    request: dict[str, Any], dynamodb: Any, table_name: str, settings: sessions.SessionSettings
) -> bool:
    """Whether the connection's session has expired; reads the table only when the context
    says so, since an in-band refresh moves the stored expiry, not the context."""
    now = time.time()
    leeway = settings.leeway_seconds
    vouched = sessions.expiry_from_context(request)
    if vouched is not None and not sessions.is_expired(vouched, now, leeway):
        return False
    stored = connections.stored_expiry(dynamodb, table_name, request.get("connectionId") or "")
    return sessions.is_expired(stored, now, leeway)


def refresh_session(
    event: dict[str, Any], management: Any, dynamodb: Any, table_name: str
) -> dict[str, Any]:
    """Move the session's expiry to a new token's `exp`, or answer why not.

    The token must pass the authorizer's checks and name the connection's user. The client
    gets `{"type": "tokenRefreshed", "expiresAt": N}` or `{"type": "tokenRejected",
    "reason": code}`; a rejected token changes nothing.

    Returns:
        200 once answered, 500 when the answer could not be posted or the table failed.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    request = event.get("requestContext") or {}
    connection_id = request.get("connectionId") or ""
    identity = request.get("authorizer") or {}
    user_id = str(identity.get("userId") or identity.get("principalId") or "")
    try:
        message = json.loads(event.get("body") or "")
    except ValueError:
        message = None
    token = message.get("token") if isinstance(message, dict) else None
    verified, reason = sessions.verify_refresh(token, user_id)
    if verified is not None and _session_settings().enforce:
        try:
            user_item = users.user_state(dynamodb, table_name, user_id)
        except (BotoCoreError, ClientError) as error:
            _log("refresh_store_failed", connection_id, error=_error_name(error))
            return _status(500)
        if admission.is_revoked(user_item, verified.auth_time):
            verified, reason = None, "session_revoked"
    if verified is not None:
        expires_at = int(verified.exp)
        try:
            moved = connections.move_expiry(
                dynamodb, table_name, connection_id, user_id, expires_at
            )
        except (BotoCoreError, ClientError) as error:
            _log("refresh_store_failed", connection_id, error=_error_name(error))
            return _status(500)
        reason = None if moved else "connection_unknown"
    if reason is None:
        answer = sessions.token_refreshed(expires_at)
        _log("session_refreshed", connection_id, expiresAt=expires_at)
    else:
        answer = sessions.token_rejected(reason)
        _log("refresh_rejected", connection_id, reason=reason)
    status, failure = sender.deliver(management, dynamodb, table_name, connection_id, answer)
    if status == "failed":
        _log("refresh_answer_failed", connection_id, error=failure)
        return _status(500)
    return _status(200)


def on_connect(
    event: dict[str, Any],
    dynamodb: Any,
    table_name: str,
    *,
    ttl_seconds: int,
    settings: sessions.SessionSettings | None = None,
    management: Any = None,
) -> dict[str, Any]:
    """Admit and store the new connection; 403 when refused, 500 when it cannot be stored.

    The user comes from the authorizer's context; with no user there is nothing to vouch for
    the connection, and it is refused (403). A token from before the user's last sign-out
    everywhere is refused, and so is a connection past the user's limit (`admission`).

    Args:
        event: The `$connect` event.
        dynamodb: DynamoDB client.
        table_name: The connection table.
        ttl_seconds: How long the item may outlive a missed `$disconnect`.
        settings: Sessions enforced or not, the limit per user (the default: enforced, none).
        management: `@connections` client, needed with a limit (to heal a drifted count).

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
    settings = settings or sessions.SessionSettings()
    limit = settings.max_connections_per_user
    try:
        refused = admission.admit(
            dynamodb,
            table_name,
            management,
            user_id=str(user_id),
            auth_time=sessions.context_number(request, "authTime") or 0,
            limit=limit,
            check_revocation=settings.enforce,
            now=time.time(),
        )
    except (BotoCoreError, ClientError) as error:
        _log("connect_admission_failed", connection_id, error=_error_name(error))
        return _status(500)
    if refused is not None:
        _log("connect_refused", connection_id, reason=refused)
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
            # With sessions off no bound is recorded, so no sender or sweeper ever applies one.
            expires_at=sessions.expiry_from_context(request) if settings.enforce else None,
            counted=limit > 0,
        )
    except (BotoCoreError, ClientError) as error:
        _log("connect_store_failed", connection_id, error=_error_name(error))
        if limit > 0:
            with contextlib.suppress(BotoCoreError, ClientError):
                users.uncount_connections(dynamodb, table_name, str(user_id))
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


def sign_out_everywhere(
    event: dict[str, Any], management: Any, dynamodb: Any, table_name: str
) -> dict[str, Any]:
    """The connection's user signs out everywhere (`signout.sign_out_everywhere`).

    Every connection of the user, this one included, gets `{"type": "signedOut"}` and is
    closed; when that fails this one is told `{"type": "signOutFailed"}`.

    Returns:
        200, or 500 when the sign-out failed.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from . import signout

    request = event.get("requestContext") or {}
    connection_id = request.get("connectionId") or ""
    identity = request.get("authorizer") or {}
    user_id = str(identity.get("userId") or identity.get("principalId") or "")
    try:
        report = signout.sign_out_everywhere(
            user_id,
            user_pool_id=os.environ["USER_POOL_ID"],
            table_name=table_name,
            region=os.environ.get("AWS_REGION") or None,
            dynamodb=dynamodb,
            management=management,
        )
    except (BotoCoreError, ClientError, KeyError) as error:
        _log("sign_out_failed", connection_id, error=_error_name(error))
        sender.deliver(management, dynamodb, table_name, connection_id, signout.SIGN_OUT_FAILED)
        return _status(500)
    _log(
        "signed_out_everywhere",
        connection_id,
        closed=len(report.closed),
        gone=len(report.gone),
        failed=len(report.failed),
    )
    return _status(200)


def management_endpoint(request_context: dict[str, Any]) -> str | None:
    """Return the `@connections` endpoint for this event, or None to use the configured one.

    In order: None when `AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI` is set (boto3 then takes it
    from the environment); `MANAGEMENT_ENDPOINT` when set; else `https://{domainName}/{stage}`
    from the event.

    Args:
        request_context: The event's `requestContext` (`domainName`, `stage`).
    """
    # An endpoint passed to boto3 explicitly would override the variable (the local cloud's).
    if os.environ.get("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI"):
        return None
    # Through a custom domain the event's `domainName` is that domain, and its path mapping is
    # not the stage: `@connections` calls built from it are refused (403, the signature's host
    # and path do not match) or miss. The execute-api URL always reaches this stage.
    configured = os.environ.get("MANAGEMENT_ENDPOINT")
    if configured:
        return configured
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
