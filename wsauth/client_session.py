"""The client's side of a session on the socket (DESIGN.md §7): when to refresh, what to say.

A connection lives only as long as the token that opened it (or last refreshed it). Before that
token expires, the client sends `{"action": "refreshToken", "token": <JWT>}` with a fresh token
of the same kind; the server answers `{"type": "tokenRefreshed", "expiresAt": <epoch s>}` or
`{"type": "tokenRejected", "reason": <code>}`, and sends `{"type": "sessionExpired"}` just
before it closes an expired connection. After a sign-out everywhere (`{"action":
"signOutEverywhere"}` from any client of the user, or `wsauth signout`), every connection of the
user gets `{"type": "signedOut"}` and is closed (the asking one gets `{"type": "signOutFailed"}`
if the server could not do it). `wsauth connect` uses these helpers; the web
page (`web/app.js`) follows the same rules in JavaScript.
"""

from __future__ import annotations

import json
import time
from typing import Any

from wsauth.client import unverified_claims

__all__ = [
    "CONTROL_TYPES",
    "REFRESH_MARGIN_SECONDS",
    "REFRESH_RETRY_SECONDS",
    "clock_time",
    "control_message",
    "describe_control",
    "is_echoed_refresh",
    "refresh_delay",
    "refresh_request",
]

REFRESH_MARGIN_SECONDS = 300.0
"""Refresh this long before the token expires (or a quarter of its lifetime, if shorter)."""
REFRESH_RETRY_SECONDS = 15.0
"""After a refresh that failed for a passing reason (Cognito unreachable), try again this soon."""
CONTROL_TYPES = frozenset(
    {"tokenRefreshed", "tokenRejected", "sessionExpired", "signedOut", "signOutFailed"}
)
"""The `type`s of the server's control messages (anything else is data)."""

# The server's refusal codes (the authorizer's, plus the refresh's own) in words; any other code
# reads as the generic sentence. The code itself is always shown too, for a bug report.
_REJECTION_REASONS = {
    "expired": "the new token had already expired",
    "not_yet_valid": "the new token is not valid yet (check this computer's clock)",
    "bad_signature": "the new token's signature is not valid",
    "kid_unknown": "the new token's signing key is unknown to the server",
    "other_user": "the new token belongs to another user",
    "token_use_mismatch": "the new token is of the wrong kind (ID or access token)",
    "client_mismatch": "the new token is for another app client",
    "iss_mismatch": "the new token is from another user pool",
    "token_missing": "the request carried no token",
    "jwks_unavailable": "the server could not check the token just now",
    "connection_unknown": "the server no longer knows this connection",
    "session_revoked": "the user signed out everywhere, which ended this session",
}
_REJECTED = "the new token is not valid"


def refresh_delay(token: str, *, elapsed: float = 0.0) -> float:
    """Seconds from now until `token` should be replaced.

    The token's lifetime (`exp - iat`) is counted from when it arrived, on this machine's
    monotonic clock, rather than compared with `exp` on the wall clock: a computer whose clock
    is off by minutes still refreshes in time.

    Args:
        token: The JWT the connection presents (its claims are read, not verified).
        elapsed: Seconds since the token arrived.

    Returns:
        The delay (0 when the refresh is already due).
    """
    claims = unverified_claims(token)
    exp = float(claims.get("exp", 0))
    issued = claims.get("iat")
    lifetime = exp - float(issued) if isinstance(issued, int | float) else exp - time.time()
    margin = min(REFRESH_MARGIN_SECONDS, max(lifetime, 0.0) / 4)
    return max(0.0, lifetime - margin - elapsed)


def refresh_request(token: str) -> str:
    """The message that asks the server to extend the connection to `token`'s expiry."""
    return json.dumps({"action": "refreshToken", "token": token})


def control_message(text: str) -> dict[str, Any] | None:
    """The server's control message in `text`, or None when `text` is data (an echo, a push).

    Args:
        text: A received text frame.

    Returns:
        The decoded message when it is a JSON object whose `type` is one of `CONTROL_TYPES`.
    """
    try:
        message = json.loads(text)
    except ValueError:
        return None
    if isinstance(message, dict) and message.get("type") in CONTROL_TYPES:
        return message
    return None


def is_echoed_refresh(text: str) -> bool:
    """Whether `text` is the echo of our own refresh request.

    A stack older than in-band refresh has no `refreshToken` route, so `$default` echoes the
    request, token included; the token must not end up on a screen or in a log.
    """
    try:
        echoed = json.loads(text)
        request = json.loads(echoed["message"]) if isinstance(echoed, dict) else None
    except (KeyError, TypeError, ValueError):
        return False
    return isinstance(request, dict) and request.get("action") == "refreshToken"


def clock_time(epoch_seconds: float) -> str:
    """An instant as this machine's local time of day, `15:04:05`."""
    return time.strftime("%H:%M:%S", time.localtime(epoch_seconds))


def describe_control(message: dict[str, Any]) -> str:
    """A control message in plain words, for a person.

    Args:
        message: What `control_message` returned.

    Returns:
        One line, e.g. "session refreshed until 15:04:05".
    """
    kind = message.get("type")
    if kind == "tokenRefreshed":
        expires_at = message.get("expiresAt")
        if isinstance(expires_at, int | float) and not isinstance(expires_at, bool):
            return f"session refreshed until {clock_time(expires_at)}"
        return "session refreshed"
    if kind == "tokenRejected":
        reason = str(message.get("reason") or "")
        words = _REJECTION_REASONS.get(reason, _REJECTED)
        code = f" ({reason})" if reason else ""
        return f"token refresh refused: {words}{code}"
    if kind == "sessionExpired":
        return "session expired: the server closed the connection"
    if kind == "signedOut":
        return "signed out everywhere: the server closed the connection"
    if kind == "signOutFailed":
        return "the server could not sign out everywhere; try again"
    return f"control message {kind}"
