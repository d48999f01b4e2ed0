"""Tokens of the embedded user pool with the lifetimes a test needs.

Cognito's shortest token lifetime is five minutes, and moto's tokens live an hour: too long to
watch a session expire in a test. moto signs every pool's tokens with one RSA key it ships (its
public half is the pool's JWKS, which the authorizer fetches), so a token the pool issued can be
signed again with that key after its claims are changed: a real token of a real user, verified
by the same code as any other, that expires when the test says.
"""

from __future__ import annotations

import base64
import json
from typing import Any

__all__ = ["reissued"]

_MOTO_KEY = "cognitoidp/resources/jwks-private.json"
_MOTO_KID = "dummy"  # the kid moto writes, and the one its JWKS names


def reissued(token: str, **claims: Any) -> str:
    """Return `token` with `claims` replaced, signed again with the embedded pool's key.

    Args:
        token: A token the embedded pool issued (ID or access).
        **claims: Claims to set, e.g. `exp=int(time.time()) + 5` or `auth_time=...`.

    Returns:
        The new token (RS256, the pool's kid).
    """
    from jose import jwt
    from moto.utilities.utils import load_resource

    payload_segment = token.split(".")[1]
    payload: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload_segment + "=="))
    payload.update(claims)
    key = load_resource(_MOTO_KEY)
    return str(jwt.encode(payload, key, algorithm="RS256", headers={"kid": _MOTO_KID}))
