"""Property tests: no mutation of a valid token is ever allowed."""

from __future__ import annotations

import base64
import itertools
import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from wsauth.handlers import authorizer
from wsauth.handlers.cognito_jwt import TokenRejected

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


@pytest.fixture
def warm(jwt_kit: Any, make_verifier: Any) -> tuple[Any, list[str]]:
    """A verifier whose cache already holds the valid tokens that get mutated."""
    verifier = make_verifier()
    tokens = [
        jwt_kit.mint(jwt_kit.keys.main, jwt_kit.id_claims()),
        jwt_kit.mint(jwt_kit.keys.second, jwt_kit.id_claims(sub="other-user")),
        jwt_kit.mint(jwt_kit.keys.main, jwt_kit.id_claims(**{"cognito:groups": None})),
    ]
    for token in tokens:
        assert verifier.verify(token).sub
    return verifier, tokens


def _refused(verifier: Any, token: str) -> None:
    with pytest.raises(TokenRejected):
        verifier.verify(token)


def test_changed_character_refused(warm: tuple[Any, list[str]]) -> None:
    """Replacing any one character of a valid token, anywhere, is refused."""
    verifier, tokens = warm

    @SETTINGS
    @given(
        index=st.integers(min_value=0, max_value=len(tokens) - 1),
        position=st.floats(min_value=0, max_value=1, exclude_max=True),
        replacement=st.sampled_from(ALPHABET + ".=+/ \x00é"),
    )
    def check(index: int, position: float, replacement: str) -> None:
        token = tokens[index]
        at = int(position * len(token))
        assume(token[at] != replacement)
        _refused(verifier, token[:at] + replacement + token[at + 1 :])

    check()


def test_flipped_bit_in_any_part_refused(warm: tuple[Any, list[str]]) -> None:
    """Flipping any bit of the decoded header, payload or signature is refused."""
    verifier, tokens = warm

    @SETTINGS
    @given(
        index=st.integers(min_value=0, max_value=len(tokens) - 1),
        part=st.integers(min_value=0, max_value=2),
        position=st.floats(min_value=0, max_value=1, exclude_max=True),
        bit=st.integers(min_value=0, max_value=7),
    )
    def check(index: int, part: int, position: float, bit: int) -> None:
        parts = tokens[index].split(".")
        raw = bytearray(base64.urlsafe_b64decode(parts[part] + "=" * (-len(parts[part]) % 4)))
        raw[int(position * len(raw))] ^= 1 << bit
        parts[part] = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
        _refused(verifier, ".".join(parts))

    check()


def test_insertions_and_deletions_refused(warm: tuple[Any, list[str]]) -> None:
    """Inserting or deleting characters anywhere in a valid token is refused."""
    verifier, tokens = warm

    @SETTINGS
    @given(
        index=st.integers(min_value=0, max_value=len(tokens) - 1),
        position=st.floats(min_value=0, max_value=1),
        deleted=st.integers(min_value=0, max_value=4),
        inserted=st.text(alphabet=ALPHABET + ".=", max_size=4),
    )
    def check(index: int, position: float, deleted: int, inserted: str) -> None:
        token = tokens[index]
        at = int(position * len(token))
        mutated = token[:at] + inserted + token[at + deleted :]
        assume(mutated != token)
        _refused(verifier, mutated)

    check()


def test_swapped_and_spliced_parts_refused(warm: tuple[Any, list[str]]) -> None:
    """Any arrangement of parts taken from valid tokens, other than a whole token, is refused."""
    verifier, tokens = warm
    pieces = [token.split(".") for token in tokens]
    candidates = {
        ".".join(parts)
        for length in (2, 3, 4)
        for parts in itertools.product(*[[p for t in pieces for p in t]] * length)
    }
    refused = sorted(candidates - set(tokens))
    assert len(refused) > 1000
    for token in refused:
        _refused(verifier, token)


def test_reencoded_claims_refused(jwt_kit: Any, warm: tuple[Any, list[str]]) -> None:
    """Re-encoding the payload (a claim changed, added, removed or merely re-spelled) is refused."""
    verifier, tokens = warm
    claim_names = sorted(jwt_kit.id_claims()) + ["nbf", "client_id", "username", "x"]

    @SETTINGS
    @given(
        index=st.integers(min_value=0, max_value=len(tokens) - 1),
        changes=st.dictionaries(st.sampled_from(claim_names), json_values, max_size=3),
        removed=st.sets(st.sampled_from(claim_names), max_size=2),
        sort_keys=st.booleans(),
        indent=st.none() | st.integers(min_value=0, max_value=2),
    )
    def check(
        index: int, changes: dict[str, Any], removed: set[str], sort_keys: bool, indent: Any
    ) -> None:
        head, payload, signature = tokens[index].split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims.update(changes)
        for name in removed:
            claims.pop(name, None)
        body = json.dumps(claims, sort_keys=sort_keys, indent=indent).encode()
        mutated = f"{head}.{base64.urlsafe_b64encode(body).rstrip(b'=').decode()}.{signature}"
        assume(mutated != tokens[index])
        _refused(verifier, mutated)

    check()


def test_reencoded_header_refused(jwt_kit: Any, warm: tuple[Any, list[str]]) -> None:
    """Re-encoding the header (alg, kid, jku, jwk, typ changed or re-spelled) is refused."""
    verifier, tokens = warm
    kids = [k.kid for k in (jwt_kit.keys.main, jwt_kit.keys.second, jwt_kit.keys.foreign)]

    @SETTINGS
    @given(
        index=st.integers(min_value=0, max_value=len(tokens) - 1),
        alg=st.sampled_from(["RS256", "none", "HS256", "RS512", "ES256", None]) | json_values,
        kid=st.sampled_from(kids) | json_values,
        extra=st.dictionaries(
            st.sampled_from(["typ", "jku", "jwk", "x5u", "x5c", "cty", "b64"]), json_values
        ),
    )
    def check(index: int, alg: Any, kid: Any, extra: dict[str, Any]) -> None:
        _, payload, signature = tokens[index].split(".")
        header = {"alg": alg, "kid": kid, **extra}
        head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
        mutated = f"{head}.{payload}.{signature}"
        assume(mutated != tokens[index])
        _refused(verifier, mutated)

    check()


def test_handler_denies_mutations(jwt_kit: Any, authorizer_env: None) -> None:
    """Through the Lambda handler, a mutated token never gets an Allow."""
    token = jwt_kit.mint(jwt_kit.keys.main, jwt_kit.id_claims(now=time.time()))

    def effect(candidate: str) -> str:
        event = {"methodArn": "arn:x", "queryStringParameters": {"idToken": candidate}}
        answer = authorizer.handler(event, None)
        return str(answer["policyDocument"]["Statement"][0]["Effect"])

    assert effect(token) == "Allow"

    @SETTINGS
    @given(
        position=st.floats(min_value=0, max_value=1, exclude_max=True),
        replacement=st.sampled_from(ALPHABET + "."),
    )
    def check(position: float, replacement: str) -> None:
        at = int(position * len(token))
        assume(token[at] != replacement)
        assert effect(token[:at] + replacement + token[at + 1 :]) == "Deny"

    check()


@SETTINGS
@given(
    st.text(max_size=300) | st.from_regex(r"\A[A-Za-z0-9_-]{0,40}(\.[A-Za-z0-9_=-]{0,40}){0,4}\Z")
)
def test_arbitrary_strings_refused(text: str) -> None:
    """Arbitrary strings, token-shaped or not, are refused without a key fetch."""
    from wsauth.handlers.cognito_jwt import CognitoJwtVerifier, JwksCache

    jwks = JwksCache("http://127.0.0.1:9/never-fetched.json")
    verifier = CognitoJwtVerifier(
        user_pool_id="eu-west-1_TestPool1", client_ids=["c"], token_use="id", jwks=jwks
    )
    with pytest.raises(TokenRejected):
        verifier.verify(text)
    assert jwks.fetch_count == 0
