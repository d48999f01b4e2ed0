"""The verifier's native fast paths (pybase64, orjson) decide exactly as the strict references.

The references are independent spellings of the rules: canonical base64url is what re-encodes
to the same string, and strict JSON is the standard library's scanner with NaN/Infinity and
surrounding whitespace refused (``_strict_json_object``, which also decides whatever orjson
refuses).
"""

from __future__ import annotations

import base64
import json
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from wsauth.handlers import cognito_jwt
from wsauth.handlers.cognito_jwt import TokenRejected, b64url_decode

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Spellings where strict parsers tend to disagree: whitespace and BOM, non-finite and huge
# numbers, lone surrogates, invalid UTF-8, control characters, structure.
TRICKY = [
    b" ", b"\n", b"\t", b"\xef\xbb\xbf", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf0\x9f\x98\x80",
    b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999", b"1E400", b"2.5e-400", b"01", b"1.",
    b"-", b"18446744073709551616", b"-9223372036854775809", b"123456789012345678901234567890",
    b'"\\ud800"', b'"\\udc00"', b'"\\ud83d\\ude00"', b'"\\u0000"', b"\x00", b"\x1f", b"\\",
    b'"', b",", b":", b"[", b"]", b"{", b"}", b"true", b"nul", b"/*", b"'",
]  # fmt: skip

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def json_documents(draw: Any) -> bytes:
    """A JSON object, often with a few tricky byte strings spliced in."""
    value = draw(st.dictionaries(st.text(max_size=6), json_values, max_size=5))
    separators = draw(st.sampled_from([(",", ":"), (", ", ": ")]))
    body = json.dumps(value, separators=separators, ensure_ascii=draw(st.booleans())).encode(
        "utf-8", "surrogatepass"
    )
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        at = draw(st.integers(min_value=0, max_value=len(body)))
        body = body[:at] + draw(st.sampled_from(TRICKY)) + body[at + draw(st.integers(0, 1)) :]
    return body


def _canonical_reference(segment: bytes) -> bytes:
    if not all(chr(c) in ALPHABET for c in segment) or len(segment) % 4 == 1:
        raise ValueError("not base64url")
    decoded = base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
    if base64.urlsafe_b64encode(decoded).rstrip(b"=") != segment:
        raise ValueError("not canonical")
    return decoded


def _outcome(function: Any, *args: Any) -> Any:
    try:
        return function(*args)
    except ValueError:
        return ValueError


def _numbers_as_orjson(value: Any) -> Any:
    # orjson reads integers outside 64 bits as floats; no rule depends on the difference
    # (any such exp/nbf/iat is a finite number either way, far from now).
    if type(value) is int and not -(2**63) <= value < 2**64:
        return float(value)
    if type(value) is list:
        return [_numbers_as_orjson(v) for v in value]
    if type(value) is dict:
        return {k: _numbers_as_orjson(v) for k, v in value.items()}
    return value


@SETTINGS
@given(
    segment=st.text(ALPHABET, max_size=90)
    | st.text(ALPHABET + "+/=*. \n\x00", max_size=90)
    | st.binary(max_size=60).map(lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode())
)
def test_b64url_decode_matches_canonical_reference(segment: str) -> None:
    """pybase64 behind our checks accepts exactly the canonical spellings, with the same bytes."""
    raw = segment.encode("ascii")
    assert _outcome(b64url_decode, raw) == _outcome(_canonical_reference, raw)


@SETTINGS
@given(document=json_documents())
# orjson refuses the lone surrogate, so json decides, and keeps the 21-digit integer an int.
@example(document=b'{"\\udc00":0,"":[184467440737095516161]}')
def test_json_fast_path_matches_standard_library(document: bytes) -> None:
    """orjson's verdict and value equal the strict standard-library parser's."""
    segment = base64.urlsafe_b64encode(document).rstrip(b"=")
    fast = _outcome(cognito_jwt._json_object, segment)
    strict = _outcome(cognito_jwt._strict_json_object, document)
    # Numbers compared as orjson reads them on both sides: a document orjson refuses for
    # another reason (a lone surrogate) is json's, whose integers past 64 bits stay integers.
    assert _numbers_as_orjson(fast) == _numbers_as_orjson(strict)


def test_signed_tricky_payloads_decided_as_without_fast_paths(
    jwt_kit: Any, make_verifier: Any
) -> None:
    """Pool-signed payloads with tricky JSON get the same verdict and reason either way."""
    fast = make_verifier(cache_size=0)
    strict = make_verifier(cache_size=0)
    claims = json.dumps(jwt_kit.id_claims()).encode()

    def refuse(raw: bytes) -> Any:
        raise ValueError("orjson disabled")

    def decide(verifier: Any, token: str) -> str:
        try:
            return verifier.verify(token).sub  # type: ignore[no-any-return]
        except TokenRejected as rejected:
            return f"rejected:{rejected.reason}"

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        splices=st.lists(
            st.tuples(st.integers(0, len(claims)), st.sampled_from(TRICKY), st.integers(0, 1)),
            max_size=2,
        )
    )
    def check(splices: list[tuple[int, bytes, int]]) -> None:
        body = claims
        for at, tricky, replace in splices:
            at = min(at, len(body))
            body = body[:at] + tricky + body[at + replace :]
        token = jwt_kit.mint(jwt_kit.keys.main, None, payload_segment=jwt_kit.b64url(body))
        verdict = decide(fast, token)
        with mock.patch.object(cognito_jwt, "_fast_loads", refuse):
            assert decide(strict, token) == verdict

    check()


def test_deeply_nested_payload_is_malformed(jwt_kit: Any, make_verifier: Any) -> None:
    """Nesting past every parser's depth limit is a Deny, not an unhandled RecursionError."""
    body = b'{"x":' + b"[" * 5000 + b"]" * 5000 + b"}"
    token = jwt_kit.mint(jwt_kit.keys.main, None, payload_segment=jwt_kit.b64url(body))
    with pytest.raises(TokenRejected, match="malformed_payload"):
        make_verifier().verify(token)
