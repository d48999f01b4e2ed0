"""JWKS handling: fetched once, refetched sparingly, bounded in time and size, strict in shape."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from wsauth.handlers.cognito_jwt import JwksCache, JwksUnavailable, TokenRejected, parse_jwks


def _valid(kit: Any, key: Any = None) -> str:
    return kit.mint(key or kit.keys.main, kit.id_claims(jti=str(uuid.uuid4())))


def test_fetched_once(jwt_kit: Any, make_verifier: Any, jwks_server: Any) -> None:
    """Many verifications with known keys cost one fetch."""
    verifier = make_verifier()
    for key in (jwt_kit.keys.main, jwt_kit.keys.second) * 5:
        verifier.verify(_valid(jwt_kit, key))
    assert jwks_server.requests == 1


@pytest.mark.parametrize(
    "mode", ["fail", "hang", "drip", "oversize", "oversize_chunked", "redirect"]
)
def test_no_key_obtainable_raises(
    jwt_kit: Any, make_verifier: Any, jwks_server: Any, mode: str
) -> None:
    """With no cached key, an outage, a hang, a slow drip, an oversize or a redirect raises."""
    jwks_server.mode = mode
    verifier = make_verifier(fetch_seconds=0.3)
    with pytest.raises(JwksUnavailable):
        verifier.verify(_valid(jwt_kit))


def test_connection_refused_raises(jwt_kit: Any, make_verifier: Any) -> None:
    """A JWKS URL where nothing listens raises (API Gateway answers 500)."""
    verifier = make_verifier(jwks_url="http://127.0.0.1:9/jwks.json")
    with pytest.raises(JwksUnavailable):
        verifier.verify(_valid(jwt_kit))


MALFORMED_SETS = {
    "not-json": b"<html>",
    "json-array": b"[]",
    "keys-missing": b"{}",
    "keys-not-list": b'{"keys": {"kid": "main-kid"}}',
    "keys-empty": b'{"keys": []}',
    "key-not-object": b'{"keys": ["main-kid"]}',
    "key-without-kid": json.dumps({"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}).encode(),
    "nan": b'{"keys": [NaN]}',
    "not-utf8": b'{"keys": ["\xff"]}',
}


@pytest.mark.parametrize("body", MALFORMED_SETS.values(), ids=MALFORMED_SETS.keys())
def test_malformed_key_set_raises(
    jwt_kit: Any, make_verifier: Any, jwks_server: Any, body: bytes
) -> None:
    """A key set of the wrong shape is refused as a whole."""
    jwks_server.body = body
    with pytest.raises(JwksUnavailable):
        make_verifier().verify(_valid(jwt_kit))


def test_duplicate_kid_refused(jwt_kit: Any) -> None:
    """Two keys with the same kid make the key set ambiguous, so it is refused."""
    main = jwt_kit.keys.main.jwk
    with pytest.raises(JwksUnavailable):
        parse_jwks(json.dumps({"keys": [main, dict(main)]}).encode())


def test_set_without_rs256_key_refused(jwt_kit: Any) -> None:
    """A key set in which no key can verify RS256 is refused."""
    keys = [jwt_kit.keys.ec.jwk, jwt_kit.keys.enc.jwk, jwt_kit.keys.weak.jwk]
    with pytest.raises(JwksUnavailable):
        parse_jwks(json.dumps({"keys": keys}).encode())


def test_private_parts_ignored(jwt_kit: Any, make_verifier: Any, jwks_server: Any) -> None:
    """A JWK carrying private parameters is used as the public key it contains."""
    jwks_server.keys = [{**jwt_kit.keys.main.jwk, "d": "AQAB", "p": "AQAB"}]
    verifier = make_verifier()
    assert verifier.verify(_valid(jwt_kit)).sub
    assert isinstance(verifier.jwks.key_for(jwt_kit.keys.main.kid), rsa.RSAPublicKey)


def test_cached_keys_survive_outage(
    jwt_kit: Any, make_verifier: Any, jwks_server: Any, clock: Any
) -> None:
    """When Cognito becomes unreachable, cached keys keep verifying and unknown kids are denied."""
    verifier = make_verifier()
    verifier.verify(_valid(jwt_kit))
    jwks_server.mode = "fail"
    clock.advance(60)
    with pytest.raises(TokenRejected) as rejected:
        verifier.verify(_valid(jwt_kit, jwt_kit.keys.foreign))
    assert rejected.value.reason == "kid_unknown"
    assert jwks_server.requests == 2
    assert verifier.verify(_valid(jwt_kit)).sub


def test_failed_refetch_keeps_good_keys(
    jwt_kit: Any, make_verifier: Any, jwks_server: Any, clock: Any
) -> None:
    """A malformed answer on refetch does not replace the cached key set."""
    verifier = make_verifier()
    verifier.verify(_valid(jwt_kit))
    jwks_server.body = b'{"keys": []}'
    clock.advance(60)
    with pytest.raises(TokenRejected):
        verifier.verify(_valid(jwt_kit, jwt_kit.keys.foreign))
    assert verifier.verify(_valid(jwt_kit)).sub


def test_rotation_picks_up_new_key(
    jwt_kit: Any, make_verifier: Any, jwks_server: Any, clock: Any
) -> None:
    """A key added to the pool is fetched the first time a token names it."""
    verifier = make_verifier()
    verifier.verify(_valid(jwt_kit))
    jwks_server.keys = [jwt_kit.keys.main.jwk, jwt_kit.keys.foreign.jwk]
    clock.advance(10)
    assert verifier.verify(_valid(jwt_kit, jwt_kit.keys.foreign)).sub
    assert jwks_server.requests == 2


def test_rotation_drops_removed_key(
    jwt_kit: Any, make_verifier: Any, jwks_server: Any, clock: Any
) -> None:
    """Once a refetch no longer lists a key, its tokens (even cached ones) are refused."""
    verifier = make_verifier()
    old = _valid(jwt_kit)
    verifier.verify(old)
    jwks_server.keys = [jwt_kit.keys.foreign.jwk]
    clock.advance(10)
    verifier.verify(_valid(jwt_kit, jwt_kit.keys.foreign))
    with pytest.raises(TokenRejected) as rejected:
        verifier.verify(old)
    assert rejected.value.reason == "kid_unknown"


def test_unknown_kid_flood_is_throttled(
    jwt_kit: Any, make_verifier: Any, jwks_server: Any, clock: Any
) -> None:
    """A flood of unknown kids refetches at most once per 10 seconds."""
    verifier = make_verifier()
    verifier.verify(_valid(jwt_kit))

    def flood(count: int) -> None:
        for _ in range(count):
            token = jwt_kit.mint(
                jwt_kit.keys.foreign, jwt_kit.id_claims(), {"kid": str(uuid.uuid4())}
            )
            with pytest.raises(TokenRejected):
                verifier.verify(token)

    flood(50)
    assert jwks_server.requests == 1
    clock.advance(9.9)
    flood(50)
    assert jwks_server.requests == 1
    clock.advance(0.1)
    flood(50)
    assert jwks_server.requests == 2
    clock.advance(5)
    flood(50)
    assert jwks_server.requests == 2


def test_unknown_kid_before_first_load(jwt_kit: Any, make_verifier: Any, jwks_server: Any) -> None:
    """The first token loads the key set even if its kid is unknown; the next one does not."""
    verifier = make_verifier()
    for _ in range(3):
        with pytest.raises(TokenRejected):
            verifier.verify(_valid(jwt_kit, jwt_kit.keys.foreign))
    assert jwks_server.requests == 1


def test_junk_claims_cost_no_fetch(jwt_kit: Any, make_verifier: Any, jwks_server: Any) -> None:
    """A token whose claims are already wrong never triggers a JWKS fetch."""
    verifier = make_verifier()
    with pytest.raises(TokenRejected):
        verifier.verify(jwt_kit.mint(jwt_kit.keys.foreign, jwt_kit.id_claims(aud="x")))
    assert jwks_server.requests == 0


def test_https_uses_tls(jwks_server: Any) -> None:
    """An https JWKS URL is fetched over TLS: a plain-HTTP server does not satisfy it."""
    cache = JwksCache(jwks_server.url.replace("http://", "https://"), fetch_seconds=0.3)
    with pytest.raises(JwksUnavailable):
        cache.refresh()
    assert jwks_server.requests == 0


def test_before_any_key_an_outage_fails_fast_then_retries(
    jwt_kit: Any, make_verifier: Any, jwks_server: Any, clock: Any
) -> None:
    """With no key loaded, one attempt waits out the deadline; the next handshakes fail at once
    (API Gateway answers 500) until the retry interval passes, then the keys load."""
    from wsauth.handlers.cognito_jwt import JWKS_RETRY_SECONDS

    jwks_server.mode = "hang"
    verifier = make_verifier(fetch_seconds=0.3)
    with pytest.raises(JwksUnavailable, match="timed out"):
        verifier.verify(_valid(jwt_kit))
    for _ in range(5):
        with pytest.raises(JwksUnavailable, match="retrying within seconds"):
            verifier.verify(_valid(jwt_kit))
    assert jwks_server.requests == 1

    jwks_server.release.set()
    jwks_server.mode = "ok"
    clock.advance(JWKS_RETRY_SECONDS)
    assert verifier.verify(_valid(jwt_kit)).sub == jwt_kit.id_claims()["sub"]
    assert jwks_server.requests == 2
