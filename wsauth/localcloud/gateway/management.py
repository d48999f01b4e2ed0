"""The `@connections` management API: `POST`/`GET`/`DELETE /{stage}/@connections/{id}`.

Answers as API Gateway does, with the error types botocore maps to exceptions
(`x-amzn-ErrorType`: `GoneException` 410, `PayloadTooLargeException` 413,
`LimitExceededException` 429). Requests must carry a valid AWS SigV4 signature
(`sigv4.check_signature`): an unsigned, malformed, stale or wrongly scoped one is refused with
AWS's 403, before anything else is looked at.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from .http import Request, json_response, response
from .sigv4 import Refusal

__all__ = [
    "CONNECTIONS_SEGMENT",
    "ManagedConnection",
    "PostResult",
    "SignatureCheck",
    "handle_management",
    "missing_authentication_token",
]

CONNECTIONS_SEGMENT = "/@connections/"

PostResult = bool
"""True when the data was queued to the client, False when its buffer is full (429)."""

SignatureCheck = Callable[[Request, bytes], Refusal | None]
"""Checks a request's signature: None to proceed, else why it is refused (403)."""


class ManagedConnection(Protocol):
    """What the management API needs from a live WebSocket connection."""

    def post(self, data: bytes) -> PostResult:
        """Send `data` to the client as one message."""
        ...

    def describe(self) -> dict[str, Any]:
        """Return GetConnection's body (`connectedAt`, `identity`, `lastActiveAt`)."""
        ...

    def delete(self) -> None:
        """Close the client's connection (its `$disconnect` runs)."""
        ...


def _error(status: int, error_type: str, message: str | None, keep_alive: bool) -> bytes:
    return json_response(
        status,
        {"message": message},
        [("x-amzn-ErrorType", error_type)],
        close=not keep_alive,
    )


def missing_authentication_token(request: Request) -> bytes:
    """Answer a `@connections` call on a stage the API does not have.

    API Gateway answers a path it has no resource for as it answers an unsigned call, before
    looking at the signature.

    Args:
        request: The parsed request.

    Returns:
        The response bytes (403 MissingAuthenticationTokenException).
    """
    return _error(
        403,
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
        request.keep_alive,
    )


def handle_management(
    request: Request,
    body: bytes,
    connection_id: str,
    lookup: Callable[[str], ManagedConnection | None],
    max_message_bytes: int,
    check_signature: SignatureCheck,
) -> bytes:
    """Serve one `@connections` request.

    Args:
        request: The parsed request (path already matched `/{stage}/@connections/{id}`).
        body: The request body.
        connection_id: The decoded `{id}` path segment.
        lookup: Finds a live connection by id.
        max_message_bytes: Largest `POST` body accepted (API Gateway's 128 KB).
        check_signature: The SigV4 check every request passes first.

    Returns:
        The response bytes.
    """
    keep_alive = request.keep_alive
    refusal = check_signature(request, body)
    if refusal is not None:
        return _error(403, refusal.error_type, refusal.message, keep_alive)
    method = request.method
    if method not in ("POST", "GET", "DELETE"):
        return json_response(
            405,
            {"message": f"method {method} is not allowed on @connections"},
            [("Allow", "POST, GET, DELETE")],
            close=not keep_alive,
        )
    if method == "POST" and len(body) > max_message_bytes:
        return _error(413, "PayloadTooLargeException", "Request entity too large", keep_alive)
    connection = lookup(connection_id) if connection_id else None
    if connection is None:
        return _error(410, "GoneException", None, keep_alive)
    if method == "POST":
        if not connection.post(body):
            return _error(429, "LimitExceededException", "the client's buffer is full", keep_alive)
        return response(200, b"", close=not keep_alive)
    if method == "GET":
        payload = json.dumps(connection.describe()).encode()
        return response(200, payload, [("Content-Type", "application/json")], close=not keep_alive)
    connection.delete()
    return response(204, b"", close=not keep_alive)
