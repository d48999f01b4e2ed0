"""The verification rules: every forged, malformed, expired or foreign token is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import pytest

from wsauth.handlers.cognito_jwt import TokenRejected, b64url_decode


def _with_signature(token: str, signature: str) -> str:
    head, payload, _ = token.split(".")
    return f"{head}.{payload}.{signature}"


def _flip_signature_byte(kit: Any) -> str:
    token = kit.mint(kit.keys.main, kit.id_claims())
    head, payload, signature = token.split(".")
    raw = bytearray(b64url_decode(signature.encode()))
    raw[len(raw) // 2] ^= 0x01
    return f"{head}.{payload}.{kit.b64url(bytes(raw))}"


def _hs256_with_public_pem(kit: Any) -> str:
    # The classic key-confusion forgery: HMAC keyed with the RSA public key's PEM.
    head = kit.encode_segment({"alg": "HS256", "kid": kit.keys.main.kid, "typ": "JWT"})
    payload = kit.encode_segment(kit.id_claims())
    mac = hmac.new(kit.keys.main.public_pem(), f"{head}.{payload}".encode(), hashlib.sha256)
    return f"{head}.{payload}.{kit.b64url(mac.digest())}"


def _alg_none(kit: Any) -> str:
    head = kit.encode_segment({"alg": "none", "kid": kit.keys.main.kid})
    return f"{head}.{kit.encode_segment(kit.id_claims())}."


def _standard_alphabet_signature(kit: Any) -> str:
    # Re-spell the signature with '+' and '/': same bytes to a lenient decoder.
    for n in range(50):
        token = kit.mint(kit.keys.main, kit.id_claims(jti=f"std-{n}"))
        signature = token.rsplit(".", 1)[1]
        if "-" in signature or "_" in signature:
            return _with_signature(token, signature.translate(str.maketrans("-_", "+/")))
    raise AssertionError("no signature with '-' or '_' in 50 tries")


def _non_canonical_signature(kit: Any) -> str:
    # 256 bytes take 342 characters; the last one carries 4 unused bits a lenient decoder drops.
    token = kit.mint(kit.keys.main, kit.id_claims())
    signature = token.rsplit(".", 1)[1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    respelled = signature[:-1] + alphabet[last | 0x01]
    assert respelled != signature
    assert base64.urlsafe_b64decode(respelled + "==") == base64.urlsafe_b64decode(signature + "==")
    return _with_signature(token, respelled)


def _claims(**overrides: Any) -> Callable[[Any], str]:
    return lambda kit: kit.mint(kit.keys.main, kit.id_claims(**overrides))


def _header(**overrides: Any) -> Callable[[Any], str]:
    return lambda kit: kit.mint(kit.keys.main, kit.id_claims(), overrides)


def _raw_header(segment: bytes) -> Callable[[Any], str]:
    return lambda kit: kit.mint(kit.keys.main, kit.id_claims(), header_segment=kit.b64url(segment))


def _raw_payload(segment: bytes) -> Callable[[Any], str]:
    return lambda kit: kit.mint(kit.keys.main, {}, payload_segment=kit.b64url(segment))


# (case id, token builder, reason code the verifier must give)
REFUSED: list[tuple[str, Callable[[Any], str], str]] = [
    # alg: RS256 only, never what the token asks for
    ("alg-none-unsigned", _alg_none, "alg_not_allowed"),
    ("alg-none-signed", _header(alg="none"), "alg_not_allowed"),
    ("alg-None-capitalised", _header(alg="None"), "alg_not_allowed"),
    ("alg-hs256-public-pem", _hs256_with_public_pem, "alg_not_allowed"),
    (
        "alg-rs384-header",
        lambda kit: kit.mint(kit.keys.main, kit.id_claims(), {"alg": "RS384"}, hash_name="SHA384"),
        "alg_not_allowed",
    ),
    (
        "alg-rs512-header",
        lambda kit: kit.mint(kit.keys.main, kit.id_claims(), {"alg": "RS512"}, hash_name="SHA512"),
        "alg_not_allowed",
    ),
    ("alg-ps256", _header(alg="PS256"), "alg_not_allowed"),
    ("alg-lowercase", _header(alg="rs256"), "alg_not_allowed"),
    ("alg-missing", _header(alg=None), "alg_not_allowed"),
    ("alg-list", _header(alg=["RS256"]), "alg_not_allowed"),
    ("crit-header", _header(crit=["exp"]), "crit_not_supported"),
    # kid: present, in the pool's JWKS, naming an RSA signature key that agrees on alg
    ("kid-missing", _header(kid=None), "kid_missing"),
    ("kid-empty", _header(kid=""), "kid_missing"),
    ("kid-number", _header(kid=1), "kid_missing"),
    (
        "kid-unknown",
        lambda kit: kit.mint(kit.keys.foreign, kit.id_claims()),
        "kid_unknown",
    ),
    ("kid-of-ec-key", _header(kid="ec-kid"), "kid_not_rsa"),
    ("kid-of-enc-key", lambda kit: kit.mint(kit.keys.enc, kit.id_claims()), "kid_not_for_signing"),
    (
        "kid-jwk-alg-rs512",
        lambda kit: kit.mint(kit.keys.rs512, kit.id_claims()),
        "kid_alg_mismatch",
    ),
    ("kid-of-1024-bit-key", lambda kit: kit.mint(kit.keys.weak, kit.id_claims()), "kid_weak_key"),
    # header keys pointing elsewhere are ignored: the pool's JWKS alone decides
    (
        "jku-to-attacker-jwks",
        lambda kit: kit.mint(
            kit.keys.foreign,
            kit.id_claims(),
            {"kid": kit.keys.main.kid, "jku": "https://attacker.example/jwks.json"},
        ),
        "bad_signature",
    ),
    (
        "x5u-to-attacker-cert",
        lambda kit: kit.mint(
            kit.keys.foreign,
            kit.id_claims(),
            {"kid": kit.keys.main.kid, "x5u": "https://attacker.example/cert.pem"},
        ),
        "bad_signature",
    ),
    (
        "embedded-jwk-of-signer",
        lambda kit: kit.mint(
            kit.keys.foreign,
            kit.id_claims(),
            {"kid": kit.keys.main.kid, "jwk": kit.keys.foreign.jwk},
        ),
        "bad_signature",
    ),
    (
        "embedded-jwk-unknown-kid",
        lambda kit: kit.mint(kit.keys.foreign, kit.id_claims(), {"jwk": kit.keys.foreign.jwk}),
        "kid_unknown",
    ),
    # signature
    ("signature-byte-flipped", _flip_signature_byte, "bad_signature"),
    (
        "signature-of-other-token",
        lambda kit: _with_signature(
            kit.mint(kit.keys.main, kit.id_claims()),
            kit.mint(kit.keys.main, kit.id_claims(sub="someone-else")).rsplit(".", 1)[1],
        ),
        "bad_signature",
    ),
    (
        "signed-by-foreign-key-with-pool-kid",
        lambda kit: kit.mint(kit.keys.foreign, kit.id_claims(), {"kid": kit.keys.main.kid}),
        "bad_signature",
    ),
    (
        "signed-by-other-pool-key",
        lambda kit: kit.mint(kit.keys.second, kit.id_claims(), {"kid": kit.keys.main.kid}),
        "bad_signature",
    ),
    (
        "signature-empty-valid-claims",
        lambda kit: _with_signature(kit.mint(kit.keys.main, kit.id_claims()), ""),
        "bad_signature",
    ),
    # issuer
    (
        "iss-other-pool",
        _claims(iss="https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Other"),
        "iss_mismatch",
    ),
    (
        "iss-trailing-slash",
        lambda kit: kit.mint(kit.keys.main, kit.id_claims(iss=kit.issuer + "/")),
        "iss_mismatch",
    ),
    (
        "iss-other-region",
        lambda kit: kit.mint(
            kit.keys.main, kit.id_claims(iss=kit.issuer.replace("eu-west-1.", "us-east-1."))
        ),
        "iss_mismatch",
    ),
    (
        "iss-http",
        lambda kit: kit.mint(kit.keys.main, kit.id_claims(iss=kit.issuer.replace("https", "http"))),
        "iss_mismatch",
    ),
    ("iss-missing", _claims(iss=None), "iss_mismatch"),
    (
        "iss-list",
        lambda kit: kit.mint(kit.keys.main, kit.id_claims(iss=[kit.issuer])),
        "iss_mismatch",
    ),
    # token_use
    ("token-use-access", _claims(token_use="access"), "token_use_mismatch"),
    ("token-use-missing", _claims(token_use=None), "token_use_mismatch"),
    ("token-use-uppercase", _claims(token_use="ID"), "token_use_mismatch"),
    # client
    ("aud-other-client", _claims(aud="someoneelsesclient"), "client_mismatch"),
    ("aud-missing", _claims(aud=None), "client_mismatch"),
    ("aud-list-without-client", _claims(aud=["someoneelsesclient"]), "client_mismatch"),
    # Cognito ID tokens carry one audience; like aws-jwt-verify, a list is refused outright.
    (
        "aud-list-with-client",
        lambda kit: kit.mint(kit.keys.main, kit.id_claims(aud=[kit.client_id])),
        "client_mismatch",
    ),
    (
        "aud-prefix-of-client",
        lambda kit: kit.mint(kit.keys.main, kit.id_claims(aud=kit.client_id[:-1])),
        "client_mismatch",
    ),
    (
        "client-id-instead-of-aud",
        lambda kit: kit.mint(kit.keys.main, kit.id_claims(aud=None, client_id=kit.client_id)),
        "client_mismatch",
    ),
    # time
    ("exp-missing", _claims(exp=None), "exp_missing"),
    (
        "exp-string",
        lambda kit: kit.mint(kit.keys.main, kit.id_claims(exp=str(int(kit.now) + 3600))),
        "exp_not_number",
    ),
    ("exp-bool", _claims(exp=True), "exp_not_number"),
    ("exp-infinite", _raw_payload(b'{"exp": 1e999}'), "exp_not_number"),
    (
        "exp-list",
        lambda kit: kit.mint(kit.keys.main, kit.id_claims(exp=[int(kit.now) + 3600])),
        "exp_not_number",
    ),
    (
        "expired",
        lambda kit: kit.mint(kit.keys.main, kit.id_claims(exp=int(kit.now) - 1)),
        "expired",
    ),
    (
        "expires-now",
        lambda kit: kit.mint(kit.keys.main, kit.id_claims(exp=int(kit.now))),
        "expired",
    ),
    (
        "nbf-future",
        lambda kit: kit.mint(kit.keys.main, kit.id_claims(nbf=int(kit.now) + 60)),
        "not_yet_valid",
    ),
    (
        "nbf-string",
        lambda kit: kit.mint(kit.keys.main, kit.id_claims(nbf=str(int(kit.now)))),
        "nbf_not_number",
    ),
    ("iat-string", _claims(iat="yesterday"), "iat_not_number"),
    ("iat-bool", _claims(iat=False), "iat_not_number"),
    # subject and user
    ("sub-missing", _claims(sub=None), "sub_missing"),
    ("sub-empty", _claims(sub=""), "sub_missing"),
    ("sub-number", _claims(sub=42), "sub_missing"),
    ("username-number", _claims(**{"cognito:username": 7}), "username_not_string"),
    ("groups-string", _claims(**{"cognito:groups": "admins"}), "groups_not_list"),
    ("groups-with-number", _claims(**{"cognito:groups": ["admins", 1]}), "groups_not_list"),
    ("jti-number", _claims(jti=5), "jti_not_string"),
    # structure: three canonical base64url parts of JSON objects
    ("empty-string", lambda kit: "", "malformed"),
    (
        "two-parts",
        lambda kit: kit.mint(kit.keys.main, kit.id_claims()).rsplit(".", 1)[0],
        "malformed",
    ),
    ("four-parts", lambda kit: kit.mint(kit.keys.main, kit.id_claims()) + ".e30", "malformed"),
    ("five-parts-jwe-shaped", lambda kit: "e30.e30.e30.e30.e30", "malformed"),
    ("whitespace", lambda kit: " " + kit.mint(kit.keys.main, kit.id_claims()), "malformed_header"),
    ("non-ascii", lambda kit: kit.mint(kit.keys.main, kit.id_claims()) + "é", "malformed"),
    ("too-long", lambda kit: "e30." + "A" * 20000 + ".e30", "malformed"),
    (
        "header-padded",
        lambda kit: _pad(kit.mint(kit.keys.main, kit.id_claims()), 0),
        "malformed_header",
    ),
    (
        "payload-padded",
        lambda kit: _pad(kit.mint(kit.keys.main, kit.id_claims()), 1),
        "malformed_payload",
    ),
    (
        "signature-padded",
        lambda kit: _pad(kit.mint(kit.keys.main, kit.id_claims()), 2),
        "malformed_payload",
    ),
    ("signature-standard-alphabet", _standard_alphabet_signature, "malformed_payload"),
    ("signature-non-canonical-bits", _non_canonical_signature, "malformed_payload"),
    ("header-not-json", _raw_header(b"{alg: RS256}"), "malformed_header"),
    ("header-json-array", _raw_header(b'["RS256", "main-kid"]'), "malformed_header"),
    ("header-json-string", _raw_header(b'"RS256"'), "malformed_header"),
    (
        "header-utf16",
        _raw_header('{"alg":"RS256","kid":"main-kid"}'.encode("utf-16")),
        "malformed_header",
    ),
    (
        "header-utf8-bom",
        _raw_header(b'\xef\xbb\xbf{"alg":"RS256","kid":"main-kid"}'),
        "malformed_header",
    ),
    ("header-invalid-utf8", _raw_header(b'{"alg":"RS256","kid":"\xff"}'), "malformed_header"),
    ("payload-json-string", _raw_payload(b'"hello"'), "malformed_payload"),
    ("payload-json-array", _raw_payload(b"[1, 2]"), "malformed_payload"),
    ("payload-not-json", _raw_payload(b"sub=alice"), "malformed_payload"),
    ("payload-nan", _raw_payload(b'{"exp": NaN}'), "malformed_payload"),
    ("payload-infinity", _raw_payload(b'{"exp": Infinity}'), "malformed_payload"),
    ("payload-trailing-garbage", _raw_payload(b'{"exp": 1}x'), "malformed_payload"),
]


def _pad(token: str, index: int) -> str:
    parts = token.split(".")
    parts[index] += "=" * (-len(parts[index]) % 4 or 4)
    return ".".join(parts)


@pytest.mark.parametrize(
    ("build", "reason"), [(b, r) for _, b, r in REFUSED], ids=[c for c, _, _ in REFUSED]
)
def test_refused_token(jwt_kit: Any, make_verifier: Any, build: Any, reason: str) -> None:
    """Each forged, malformed, expired or foreign ID token is refused for the expected reason."""
    verifier = make_verifier()
    with pytest.raises(TokenRejected) as rejected:
        verifier.verify(build(jwt_kit))
    assert rejected.value.reason == reason


def test_refused_table_is_large() -> None:
    """The table of refused tokens keeps at least the 30 cases the issue asks for."""
    assert len(REFUSED) >= 30
    assert len({case for case, _, _ in REFUSED}) == len(REFUSED)


ACCESS_REFUSED: list[tuple[str, Callable[[Any], str], str]] = [
    (
        "id-token-to-access-verifier",
        lambda kit: kit.mint(kit.keys.main, kit.id_claims()),
        "token_use_mismatch",
    ),
    (
        "client-id-wrong",
        lambda kit: kit.mint(kit.keys.main, kit.access_claims(client_id="someoneelsesclient")),
        "client_mismatch",
    ),
    (
        "client-id-missing",
        lambda kit: kit.mint(kit.keys.main, kit.access_claims(client_id=None)),
        "client_mismatch",
    ),
    (
        "aud-instead-of-client-id",
        lambda kit: kit.mint(kit.keys.main, kit.access_claims(client_id=None, aud=kit.client_id)),
        "client_mismatch",
    ),
    (
        "client-id-list",
        lambda kit: kit.mint(kit.keys.main, kit.access_claims(client_id=[kit.client_id])),
        "client_mismatch",
    ),
    (
        "username-list",
        lambda kit: kit.mint(kit.keys.main, kit.access_claims(username=["alice"])),
        "username_not_string",
    ),
    (
        "scope-list",
        lambda kit: kit.mint(kit.keys.main, kit.access_claims(scope=["openid"])),
        "scope_not_string",
    ),
]


@pytest.mark.parametrize(
    ("build", "reason"),
    [(b, r) for _, b, r in ACCESS_REFUSED],
    ids=[c for c, _, _ in ACCESS_REFUSED],
)
def test_refused_access_token(jwt_kit: Any, make_verifier: Any, build: Any, reason: str) -> None:
    """With TOKEN_USE=access, the client is checked against client_id and ID tokens are refused."""
    verifier = make_verifier(token_use="access")
    with pytest.raises(TokenRejected) as rejected:
        verifier.verify(build(jwt_kit))
    assert rejected.value.reason == reason


def test_valid_id_token(jwt_kit: Any, make_verifier: Any) -> None:
    """A valid ID token yields sub, cognito:username and cognito:groups."""
    user = make_verifier().verify(jwt_kit.mint(jwt_kit.keys.main, jwt_kit.id_claims()))
    assert user.sub == "7c1f1f4e-3b0a-4d5e-9f57-2b1c0a9e8d11"
    assert user.username == "alice"
    assert user.groups == ("admins", "readers")
    assert user.token_use == "id"


def test_valid_access_token(jwt_kit: Any, make_verifier: Any) -> None:
    """A valid access token yields the username claim, not cognito:username."""
    token = jwt_kit.mint(jwt_kit.keys.main, jwt_kit.access_claims(username="bob"))
    user = make_verifier(token_use="access").verify(token)
    assert (user.username, user.groups, user.token_use) == ("bob", ("admins",), "access")


def test_token_without_groups(jwt_kit: Any, make_verifier: Any) -> None:
    """A user in no group has no cognito:groups claim and an empty group list."""
    token = jwt_kit.mint(jwt_kit.keys.main, jwt_kit.id_claims(**{"cognito:groups": None}))
    assert make_verifier().verify(token).groups == ()


def test_second_pool_key_verifies(jwt_kit: Any, make_verifier: Any) -> None:
    """Every RS256 key of the pool's JWKS verifies the tokens it signed."""
    token = jwt_kit.mint(jwt_kit.keys.second, jwt_kit.id_claims())
    assert make_verifier().verify(token).sub


@pytest.mark.parametrize("client", ["clientone1234567890", "clienttwo1234567890"])
def test_several_allowed_clients(jwt_kit: Any, make_verifier: Any, client: str) -> None:
    """Each of several allowed app clients is accepted."""
    verifier = make_verifier(client_ids=[jwt_kit.client_id, jwt_kit.other_client_id])
    assert verifier.verify(jwt_kit.mint(jwt_kit.keys.main, jwt_kit.id_claims(aud=client))).sub


@pytest.mark.parametrize(
    ("claims", "leeway", "allowed"),
    [
        ({"exp": -5}, 10, True),
        ({"exp": -5}, 0, False),
        ({"exp": -10}, 10, False),
        ({"nbf": 5}, 10, True),
        ({"nbf": 5}, 0, False),
        ({"nbf": 0}, 0, True),
    ],
    ids=[
        "exp-within-leeway",
        "exp-no-leeway",
        "exp-at-leeway",
        "nbf-within-leeway",
        "nbf-no-leeway",
        "nbf-now",
    ],
)
def test_clock_leeway(
    jwt_kit: Any, make_verifier: Any, claims: dict[str, int], leeway: int, allowed: bool
) -> None:
    """exp and nbf are checked against the clock with the configured leeway."""
    offsets = {name: int(jwt_kit.now) + delta for name, delta in claims.items()}
    token = jwt_kit.mint(jwt_kit.keys.main, jwt_kit.id_claims(**offsets))
    verifier = make_verifier(leeway_seconds=leeway)
    if allowed:
        assert verifier.verify(token).sub
    else:
        with pytest.raises(TokenRejected):
            verifier.verify(token)


def test_b64url_decode_is_strict() -> None:
    """Only canonical unpadded base64url decodes."""
    assert b64url_decode(b"eyJhIjoxfQ") == b'{"a":1}'
    for spelling in (b"eyJhIjoxfQ==", b"eyJhIjoxfR", b"eyJh Ijox", b"eyJhIj+x", b"e"):
        with pytest.raises(ValueError):
            b64url_decode(spelling)


def test_repeated_token_comes_from_cache(jwt_kit: Any, make_verifier: Any) -> None:
    """A token verified once is answered from the cache the second time."""
    verifier = make_verifier()
    token = jwt_kit.mint(jwt_kit.keys.main, jwt_kit.id_claims())
    assert verifier.verify_cached(token)[1] is False
    assert verifier.verify_cached(token)[1] is True


def test_cached_token_not_used_past_exp(jwt_kit: Any, make_verifier: Any, clock: Any) -> None:
    """A cached token is refused once it expires."""
    verifier = make_verifier(leeway_seconds=5)
    token = jwt_kit.mint(jwt_kit.keys.main, jwt_kit.id_claims(exp=int(jwt_kit.now) + 60))
    verifier.verify(token)
    clock.advance(64)
    assert verifier.verify_cached(token)[1] is True
    clock.advance(1)
    with pytest.raises(TokenRejected) as rejected:
        verifier.verify(token)
    assert rejected.value.reason == "expired"


def test_cache_is_bounded(jwt_kit: Any, make_verifier: Any) -> None:
    """The least recently used token leaves the cache when it is full."""
    verifier = make_verifier(cache_size=2)
    a, b, c = (jwt_kit.mint(jwt_kit.keys.main, jwt_kit.id_claims(jti=j)) for j in "abc")
    for token in (a, b, a, c):
        verifier.verify(token)
    assert verifier.verify_cached(a)[1] is True
    assert verifier.verify_cached(b)[1] is False


def test_refused_token_is_not_cached(jwt_kit: Any, make_verifier: Any) -> None:
    """A refused token is refused again, never answered from the cache."""
    verifier = make_verifier()
    token = _flip_signature_byte(jwt_kit)
    for _ in range(2):
        with pytest.raises(TokenRejected):
            verifier.verify(token)


def test_verifier_rejects_bad_settings() -> None:
    """Settings that would weaken the checks are refused up front."""
    from wsauth.handlers.cognito_jwt import CognitoJwtVerifier, JwksCache

    jwks = JwksCache("http://127.0.0.1:9/jwks.json")
    good = {"user_pool_id": "eu-west-1_abc", "client_ids": ["c"], "token_use": "id", "jwks": jwks}
    for bad in (
        {"token_use": "refresh"},
        {"client_ids": []},
        {"client_ids": [""]},
        {"leeway_seconds": -1},
        {"user_pool_id": "nopool"},
    ):
        with pytest.raises(ValueError):
            CognitoJwtVerifier(**{**good, **bad})
    for url in ("file:///etc/passwd", "http:///jwks.json", "jwks.json", "http://h:x/jwks.json"):
        with pytest.raises(ValueError):
            JwksCache(url)


def test_claim_set_is_not_kept(jwt_kit: Any, make_verifier: Any) -> None:
    """The verified result carries the user, never the rest of the claims (e.g. email)."""
    user = make_verifier().verify(jwt_kit.mint(jwt_kit.keys.main, jwt_kit.id_claims()))
    assert "alice@example.com" not in repr(user)
