"""Sessions (DESIGN §7): a connection lives only as long as the token behind it.

API Gateway authorizes a WebSocket once, at `$connect`, and would keep it open two hours. The
authorizer puts the token's `exp` in its context (`expiresAt`), `$connect` stores it on the
item, and from then on:

* a message is handled only while `expiresAt` (plus the clock leeway) is ahead: the context is
  trusted while it says so, so a live session costs no table read; past it, the item is read,
  since an in-band refresh may have moved it;
* `{"action": "refreshToken", "token": ...}` moves it, once the token passes the authorizer's
  own checks (this module loads them on that route only) and names the same user;
* the senders and the scheduled sweeper close what has expired.

A connection whose item records no `expiresAt` (opened with `sessionExpiry: off`) is not
bounded by this module.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "REFRESH_ROUTE",
    "SESSION_EXPIRED",
    "SIGN_OUT_ROUTE",
    "context_number",
    "SessionSettings",
    "expiry_from_context",
    "is_expired",
    "token_refreshed",
    "token_rejected",
    "verify_refresh",
]

REFRESH_ROUTE = "refreshToken"
"""The route key (`action`) of an in-band refresh."""
SIGN_OUT_ROUTE = "signOutEverywhere"
"""The route key (`action`) with which a user ends all their sessions."""

SESSION_EXPIRED = b'{"type":"sessionExpired"}'
"""Sent to a connection just before the server closes it for an expired session."""


@dataclass(frozen=True)
class SessionSettings:
    """How the websocket function and the sweeper treat expiry."""

    enforce: bool = True
    leeway_seconds: float = 0.0
    max_connections_per_user: int = 0
    """0: no limit."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> SessionSettings:
        """Read `SESSION_EXPIRY` (`enforce`, the default, or `off`), `CLOCK_LEEWAY_SECONDS` and
        `MAX_CONNECTIONS_PER_USER` (default 0: no limit).

        Raises:
            RuntimeError: A value is not one of those (a deployment error).
        """
        mode = environ.get("SESSION_EXPIRY", "enforce").strip() or "enforce"
        if mode not in ("enforce", "off"):
            raise RuntimeError(f"SESSION_EXPIRY must be 'enforce' or 'off', not {mode!r}")
        try:
            leeway = float(environ.get("CLOCK_LEEWAY_SECONDS", "0").strip() or "0")
        except ValueError:
            raise RuntimeError("CLOCK_LEEWAY_SECONDS must be a number of seconds") from None
        raw_limit = environ.get("MAX_CONNECTIONS_PER_USER", "0").strip() or "0"
        if not raw_limit.isdigit():
            raise RuntimeError(
                f"MAX_CONNECTIONS_PER_USER must be an integer >= 0, not {raw_limit!r}"
            )
        return cls(
            enforce=mode == "enforce",
            leeway_seconds=leeway,
            max_connections_per_user=int(raw_limit),
        )


def expiry_from_context(request_context: Mapping[str, Any]) -> int | None:
    """Return the `expiresAt` the authorizer vouched for at `$connect`, or None if absent."""
    return context_number(request_context, "expiresAt")


def context_number(request_context: Mapping[str, Any], name: str) -> int | None:
    """Return a number the authorizer put in its context, or None if absent or not a number.

    API Gateway hands context values on as it got them or as strings; either is read.
    """
    authorizer = request_context.get("authorizer")
    if not isinstance(authorizer, Mapping):
        return None
    value = authorizer.get(name)
    if isinstance(value, bool):
        return None
    try:
        return int(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def is_expired(expires_at: float | None, now: float, leeway_seconds: float) -> bool:
    """Whether a session bounded by `expires_at` is over at `now` (the authorizer's own rule).

    None (no bound recorded) is never expired.
    """
    return expires_at is not None and now >= expires_at + leeway_seconds


def token_refreshed(expires_at: int) -> bytes:
    """The answer to a refresh that moved the session's end to `expires_at`."""
    return b'{"type":"tokenRefreshed","expiresAt":%d}' % expires_at


def token_rejected(reason: str) -> bytes:
    """The answer to a refresh that changed nothing, with the reason code."""
    return json.dumps({"type": "tokenRejected", "reason": reason}).encode()


_verifier: Any = None


def verify_refresh(token: object, user_id: str) -> tuple[Any, str | None]:
    """Check a refresh token exactly as the authorizer checks a handshake's, for `user_id`.

    Args:
        token: The message's `token`.
        user_id: The `sub` the connection was opened with.

    Returns:
        `(VerifiedToken, None)`, or `(None, reason)`: the authorizer's reason codes, plus
        `token_missing`, `other_user` and `jwks_unavailable`.

    Raises:
        ValueError: The function's authorizer settings are missing (a deployment error).
    """
    global _verifier
    if not isinstance(token, str) or not token:
        return None, "token_missing"
    # Loaded here, not at import: the echo path's cold start must not pay for python-jose.
    from .authorizer import Authorizer, AuthorizerConfig
    from .cognito_jwt import JwksUnavailable, TokenRejected

    if _verifier is None:
        _verifier = Authorizer(AuthorizerConfig.from_env(os.environ)).verifier
    try:
        verified = _verifier.verify(token)
    except TokenRejected as rejected:
        return None, rejected.reason
    except JwksUnavailable:
        return None, "jwks_unavailable"
    if verified.sub != user_id:
        return None, "other_user"
    return verified, None
