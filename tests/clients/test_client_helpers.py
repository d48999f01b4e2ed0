"""Pieces the commands rely on: forging a signature, token URLs, tokens kept out of logs."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from wsauth.client import (
    ClientError,
    Tokens,
    forge_signature,
    unverified_claims,
    websocket_url,
)
from wsauth.outputs import parse_outputs

from .samples import STACK_OUTPUTS


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


HEADER = b64url(json.dumps({"alg": "RS256", "kid": "k1"}).encode())
PAYLOAD = b64url(json.dumps({"sub": "user-1", "exp": 2_000_000_000}).encode())


@pytest.mark.parametrize("signature_bytes", [b"\x00" * 256, bytes(range(256)), b"\xff" * 255])
def test_forged_token_differs_from_the_real_one_by_one_signature_bit(
    signature_bytes: bytes,
) -> None:
    """Header and claims stay genuine; the decoded signature differs in exactly one bit."""
    token = f"{HEADER}.{PAYLOAD}.{b64url(signature_bytes)}"
    header, payload, forged = forge_signature(token).split(".")
    assert (header, payload) == (HEADER, PAYLOAD)
    difference = [a ^ b for a, b in zip(unb64url(forged), signature_bytes, strict=True)]
    assert sum(bin(byte).count("1") for byte in difference) == 1


def test_token_goes_in_the_id_token_query_parameter() -> None:
    """The token is URL-encoded under `idToken`; without one the endpoint is unchanged."""
    outputs = parse_outputs(STACK_OUTPUTS, "test")
    token = f"{HEADER}.{PAYLOAD}.sig+/="
    url = websocket_url(outputs, token)
    assert url.startswith(STACK_OUTPUTS["webSocketEndpoint"] + "?")
    assert parse_qs(urlsplit(url).query) == {"idToken": [token]}
    assert websocket_url(outputs, None) == STACK_OUTPUTS["webSocketEndpoint"]


def test_tokens_never_appear_in_their_repr() -> None:
    """A logged or printed Tokens shows no token."""
    tokens = Tokens(id_token="id-secret", access_token="access-secret", refresh_token="r-secret")
    assert "secret" not in repr(tokens)


@pytest.mark.parametrize("token", ["", "only-one-part", "a.%%%.c", f"a.{b64url(b'[1]')}.c"])
def test_claims_of_a_non_jwt_are_a_readable_error(token: str) -> None:
    """Something that is not a JWT with a JSON object payload: ClientError, not a traceback."""
    with pytest.raises(ClientError, match="not a JWT"):
        unverified_claims(token)


def test_claims_are_read_from_the_payload() -> None:
    """The payload's claims, as they are (unverified: for addressing only)."""
    assert unverified_claims(f"{HEADER}.{PAYLOAD}.sig")["sub"] == "user-1"
