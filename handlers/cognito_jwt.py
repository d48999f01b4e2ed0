"""Strict verification of Cognito JWTs against the user pool's JWKS.

The rules follow awslabs/aws-jwt-verify and are, where it is lenient, stricter:

* the token is exactly three canonical, unpadded base64url parts;
* header and payload are UTF-8 JSON objects (no NaN/Infinity, no BOM);
* ``alg`` is RS256, whatever the token asks for; ``crit`` is refused; ``jku``, ``x5u``,
  ``jwk`` and ``x5c`` are ignored, the key always comes from the pool's JWKS;
* ``kid`` is a string found in that JWKS, and the JWK is RSA, for signatures, agrees on
  ``alg`` and has a modulus of at least 2048 bits;
* ``iss`` is exactly the pool's issuer, ``token_use`` the configured one, the client is
  checked against ``aud`` (ID token, a string) or ``client_id`` (access token);
* ``exp`` is required and, like ``nbf`` and ``iat``, a finite number (never a bool or a
  string); ``nbf`` is honoured; a clock leeway (default 0) applies to both;
* ``sub`` is a non-empty string; ``cognito:groups`` is a list of strings.

Base64url is decoded by pybase64 (SIMD, validating) once the alphabet and the last character
are checked here. Header and payload JSON go through orjson (strict RFC 8259, parsed from the
bytes); whatever it refuses is handed to the standard library's parser, which decides, so
verdicts and reason codes are the standard library's.

python-jose is used where it is sharp-edge free: ``jose.jwk.construct(jwk, "RS256")`` builds
each key once per JWKS load, and the ``cryptography`` key inside it verifies the RS256
signature (PKCS#1 v1.5, SHA-256) with padding and hash objects built once. Every other check
is ours, because ``jose.jwt.decode`` accepts HMAC with the public key when no
``algorithms`` are given, skips ``aud`` when the claim is absent and takes some non-numeric
claims.

Not thread-safe by design: a Lambda process handles one event at a time. Callers that share
a verifier between threads must serialize calls.
"""

from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA256
from jose import jwk as jose_jwk
from orjson import loads as _fast_loads
from pybase64 import b64decode as _b64decode

__all__ = [
    "CognitoJwtVerifier",
    "JwksCache",
    "JwksUnavailable",
    "TokenRejected",
    "VerifiedToken",
    "b64url_decode",
    "cognito_issuer",
    "default_jwks_url",
]

ALGORITHM = "RS256"
MAX_TOKEN_CHARS = 16384
"""Longer strings are refused before any parsing (Cognito tokens are a few KiB at most)."""
JWKS_MAX_BYTES = 64 * 1024
JWKS_MAX_KEYS = 32
JWKS_FETCH_SECONDS = 1.5
JWKS_REFETCH_INTERVAL_SECONDS = 10.0
JWKS_RETRY_SECONDS = 2.0
MIN_RSA_BITS = 2048
DEFAULT_CACHE_SIZE = 1024
_HEADER_CACHE_SIZE = 16
_CACHE_KEY_CHARS = 64

_TOKEN_USES = frozenset({"id", "access"})
# Built once: RS256 is RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 3.3).
_PKCS1V15 = PKCS1v15()
_SHA256 = SHA256()
_NUMBER_TYPES = (int, float)
_new_tuple = tuple.__new__


class TokenRejected(Exception):
    """The token is not acceptable; ``reason`` is a short code safe to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class JwksUnavailable(Exception):
    """No usable key set could be obtained: the verifier cannot decide."""


class VerifiedToken(NamedTuple):
    """What a verified token says about its user (never the whole claim set)."""

    sub: str
    username: str
    groups: tuple[str, ...]
    token_use: str
    exp: float
    kid: str
    auth_time: float
    """When the user signed in (`auth_time`); 0 when the token does not say."""


def cognito_issuer(user_pool_id: str) -> str:
    """Return the issuer Cognito writes into the pool's tokens.

    Args:
        user_pool_id: ``{region}_{id}``, e.g. ``eu-west-1_AbC123``.

    Returns:
        ``https://cognito-idp.{region}.amazonaws.com/{user_pool_id}``.

    Raises:
        ValueError: the pool id has no region prefix.
    """
    region = _pool_region(user_pool_id)
    return f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"


def default_jwks_url(user_pool_id: str, cognito_endpoint: str | None = None) -> str:
    """Return where the pool's JWKS lives.

    Args:
        user_pool_id: ``{region}_{id}``.
        cognito_endpoint: ``AWS_ENDPOINT_URL_COGNITO_IDP`` when set (the local cloud's moto
            serves the JWKS under it), else None for AWS.

    Returns:
        The JWKS URL.
    """
    if cognito_endpoint:
        return f"{cognito_endpoint.rstrip('/')}/{user_pool_id}/.well-known/jwks.json"
    return f"{cognito_issuer(user_pool_id)}/.well-known/jwks.json"


def _pool_region(user_pool_id: str) -> str:
    region, sep, suffix = user_pool_id.partition("_")
    if not sep or not region or not suffix or not suffix.isalnum():
        raise ValueError(f"user pool id {user_pool_id!r} is not of the form <region>_<id>")
    return region


# base64url -> standard alphabet for binascii; "+", "/" and "=" map to "*", which strict mode
# refuses, so only the URL-safe alphabet without padding gets through.
_TO_STANDARD = bytes.maketrans(b"-_+/=", b"+/***")
_PADDING = (b"", b"", b"==", b"=")
_DASH, _UNDERSCORE, _PLUS, _SLASH, _EQUALS, _DOT = b"-_+/=."
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# The last character of a 2- or 3-character tail carries 4 or 2 unused bits that must be 0.
_CANONICAL_LAST: tuple[frozenset[int], ...] = (
    frozenset(),
    frozenset(),
    frozenset(c for i, c in enumerate(_ALPHABET) if i & 0b1111 == 0),
    frozenset(c for i, c in enumerate(_ALPHABET) if i & 0b11 == 0),
)


def b64url_decode(segment: bytes) -> bytes:
    """Decode canonical, unpadded base64url, refusing every other spelling.

    ``base64.urlsafe_b64decode`` silently drops foreign characters, accepts padding and the
    standard alphabet, and ignores the unused low bits of the last character, so several
    strings decode to the same bytes: a token could be re-spelled and still verify.

    Args:
        segment: ASCII bytes of one JWT part.

    Returns:
        The decoded bytes.

    Raises:
        ValueError: the segment is not canonical base64url (binascii.Error, which pybase64
            raises too, is a ValueError).
    """
    tail = len(segment) % 4
    if tail == 1 or (tail and segment[-1] not in _CANONICAL_LAST[tail]):
        raise ValueError("not canonical base64url")
    # Base64url of ASCII JSON rarely holds "-" or "_", so a JWT payload usually skips the
    # translation; the searches (memchr for an int needle) refuse what it would have refused.
    if _DASH in segment or _UNDERSCORE in segment:
        segment = segment.translate(_TO_STANDARD)
    elif _PLUS in segment or _SLASH in segment or _EQUALS in segment:
        raise ValueError("not base64url")
    # Only the standard alphabet (translated "+", "/", "=" became "*") and the padding added
    # here are left, so validating SIMD decoding refuses exactly what binascii's strict mode
    # refuses, at a third of its time for a token's payload and signature.
    return _b64decode(segment + _PADDING[tail], validate=True)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Python's json accepts NaN and Infinity (an Infinity ``exp`` would never expire); the
# decoder is built once because json.loads builds a new one whenever it gets options.
_JSON = json.JSONDecoder(parse_constant=_reject_constant)
_scan_json = _JSON.scan_once  # type: ignore[attr-defined]


def _json_object(segment: bytes) -> dict[str, Any]:
    raw = b64url_decode(segment)
    # orjson parses strict RFC 8259 straight from the bytes (invalid UTF-8, NaN and Infinity
    # refused) in a third of the time of UTF-8 decoding plus json's scanner. It allows
    # whitespace around the document, which tokens never carry and the rules refuse: braces
    # at both ends mean none, and that a document orjson accepts is an object.
    if raw[:1] == b"{" and raw[-1:] == b"}":
        try:
            return _fast_loads(raw)  # type: ignore[no-any-return]
        except ValueError:
            # What orjson refuses, json decides, so the verdict and reason stay json's:
            # 1e999 parses to inf (then exp_not_number), a lone surrogate escape is a string.
            pass
    return _strict_json_object(raw)


def _strict_json_object(raw: bytes) -> dict[str, Any]:
    # Strict UTF-8 first: json.loads(bytes) would also guess UTF-16/32 from the byte pattern.
    text = raw.decode("utf-8")
    # The scanner straight away (json's decode() adds a regex pass for surrounding
    # whitespace, which tokens never carry, so it is refused here).
    try:
        value, end = _scan_json(text, 0)
    except StopIteration:
        raise ValueError("not JSON") from None
    except RecursionError:
        # A payload can nest ~8000 levels within MAX_TOKEN_CHARS: junk, not a server error.
        raise ValueError("JSON nested too deeply") from None
    if end != len(text) or type(value) is not dict:
        raise ValueError("not a JSON object")
    return value


def _is_number(value: object) -> bool:
    # bool is an int subclass and 1e999 parses to inf: neither is a timestamp.
    return type(value) in _NUMBER_TYPES and math.isfinite(value)  # type: ignore[arg-type]


class JwksCache:
    """The pool's signing keys, fetched once and kept for the life of the process.

    An unknown ``kid`` triggers a refetch at most once per ``refetch_interval`` seconds, so
    a flood of junk tokens cannot hammer Cognito. A failed refetch keeps the cached keys.
    """

    def __init__(
        self,
        url: str,
        *,
        fetch_seconds: float = JWKS_FETCH_SECONDS,
        max_bytes: int = JWKS_MAX_BYTES,
        refetch_interval: float = JWKS_REFETCH_INTERVAL_SECONDS,
        retry_interval: float = JWKS_RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Create an empty cache; nothing is fetched until a key is needed.

        Args:
            url: the JWKS URL (http or https).
            fetch_seconds: the whole fetch (connect, request, every read) gives up after this.
            max_bytes: a larger answer is refused.
            refetch_interval: minimum seconds between fetches caused by unknown kids.
            retry_interval: before any key set has loaded, minimum seconds between attempts.
            clock: monotonic clock, injectable for tests.
        """
        import urllib.parse

        parts = urllib.parse.urlsplit(url)
        # An empty host would make http.client dial localhost; .port raises on a bad port.
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.port == 0:
            raise ValueError(f"JWKS URL must be an http(s) URL with a host, got {url!r}")
        self.url = url
        self.fetch_seconds = fetch_seconds
        self.max_bytes = max_bytes
        self.refetch_interval = refetch_interval
        self.retry_interval = retry_interval
        self._clock = clock
        # kid -> public key, or the reason code why that JWK cannot verify RS256.
        self._keys: dict[str, Any] | None = None
        self._last_attempt = -math.inf
        self.fetch_count = 0
        self.last_error: str | None = None

    def __contains__(self, kid: str) -> bool:
        """Whether ``kid`` names a usable key in the cached set (never fetches)."""
        key = self._keys.get(kid) if self._keys is not None else None
        return key is not None and type(key) is not str

    def key_for(self, kid: str) -> Any:
        """Return the verification key for ``kid``.

        Args:
            kid: the token header's key id.

        Returns:
            The ``cryptography`` RSA public key python-jose built from the JWK.

        Raises:
            TokenRejected: the kid is unknown (after at most one throttled refetch) or names
                a key that cannot verify RS256.
            JwksUnavailable: no key set was ever loaded and fetching one failed.
        """
        keys = self._keys
        key = keys.get(kid) if keys is not None else None
        if key is None:
            if keys is None:
                # Until a key set loads every handshake needs one: after a failed attempt the
                # next ones fail at once (500) for a short while, not each after the deadline.
                if self._clock() - self._last_attempt < self.retry_interval:
                    raise JwksUnavailable(f"{self.last_error}; retrying within seconds")
                self.refresh()
            elif self._clock() - self._last_attempt >= self.refetch_interval:
                try:
                    self.refresh()
                except JwksUnavailable:
                    # Cognito unreachable: the cached keys still decide; this kid is unknown.
                    pass
            key = self._keys.get(kid) if self._keys is not None else None
            if key is None:
                raise TokenRejected("kid_unknown")
        if type(key) is str:
            raise TokenRejected(key)
        return key

    def refresh(self) -> None:
        """Fetch and parse the key set, replacing the cached one only if the new one is good.

        Raises:
            JwksUnavailable: the fetch failed or the answer is not a usable key set.
        """
        self._last_attempt = self._clock()
        self.fetch_count += 1
        try:
            self._keys = parse_jwks(self._fetch())
        except JwksUnavailable as exc:
            self.last_error = str(exc)
            raise
        self.last_error = None

    def _fetch(self) -> bytes:
        # Imported here: only a cold start or a key rotation pays for it.
        from .jwks_fetch import FetchFailed, fetch

        try:
            return fetch(self.url, deadline_seconds=self.fetch_seconds, max_bytes=self.max_bytes)
        except FetchFailed as failure:
            raise JwksUnavailable(str(failure)) from None


def parse_jwks(body: bytes) -> dict[str, Any]:
    """Turn a JWKS document into ``kid -> key object`` (or ``kid -> reason`` when unusable).

    The set is refused as a whole when it is not a JSON object with a ``keys`` list of
    objects that each carry a string ``kid`` and ``kty``, when a kid repeats, or when no key
    can verify RS256. A JWK that is well formed but unusable (EC, ``use: enc``, another
    ``alg``, a short modulus) stays in the map with its reason, so a token naming it is
    refused without a refetch.

    Args:
        body: the raw answer.

    Returns:
        The key map.

    Raises:
        JwksUnavailable: the document is not a usable key set.
    """
    try:
        document = _JSON.decode(body.decode("utf-8"))
    except ValueError as exc:
        raise JwksUnavailable("JWKS is not JSON") from exc
    keys = document.get("keys") if type(document) is dict else None
    if type(keys) is not list or not keys or len(keys) > JWKS_MAX_KEYS:
        raise JwksUnavailable("JWKS has no valid keys list")
    parsed: dict[str, Any] = {}
    for entry in keys:
        if type(entry) is not dict:
            raise JwksUnavailable("JWKS key is not an object")
        kid, kty = entry.get("kid"), entry.get("kty")
        if type(kid) is not str or not kid or type(kty) is not str:
            raise JwksUnavailable("JWKS key lacks kid or kty")
        if kid in parsed:
            raise JwksUnavailable("JWKS repeats a kid")
        parsed[kid] = _rsa_key(entry)
    if all(type(key) is str for key in parsed.values()):
        raise JwksUnavailable("JWKS has no RS256 signing key")
    return parsed


def _rsa_key(entry: dict[str, Any]) -> Any:
    if entry["kty"] != "RSA":
        return "kid_not_rsa"
    if entry.get("use", "sig") != "sig":
        return "kid_not_for_signing"
    key_ops = entry.get("key_ops")
    if key_ops is not None and (type(key_ops) is not list or "verify" not in key_ops):
        return "kid_not_for_signing"
    if entry.get("alg", ALGORITHM) != ALGORITHM:
        return "kid_alg_mismatch"
    n, e = entry.get("n"), entry.get("e")
    try:
        if type(n) is not str or type(e) is not str:
            raise ValueError("n and e must be strings")
        modulus = int.from_bytes(b64url_decode(n.encode("ascii")), "big")
        exponent = int.from_bytes(b64url_decode(e.encode("ascii")), "big")
    except ValueError:
        return "kid_malformed"
    if modulus.bit_length() < MIN_RSA_BITS or exponent < 3 or exponent % 2 == 0:
        return "kid_weak_key"
    # Only n and e go to python-jose: a JWK that also carries "d" must not become a private key.
    # The cryptography key inside is kept, so each verification is one call into OpenSSL.
    try:
        return jose_jwk.construct({"kty": "RSA", "n": n, "e": e}, ALGORITHM).prepared_key
    except Exception:  # python-jose raises assorted types for bad numbers
        return "kid_malformed"


def _check_header(header_b64: bytes) -> str:
    try:
        header = _json_object(header_b64)
    except ValueError:
        raise TokenRejected("malformed_header") from None
    if header.get("alg") != ALGORITHM:
        raise TokenRejected("alg_not_allowed")
    if "crit" in header:
        # RFC 7515 4.1.11: extensions we do not understand must make the token invalid.
        raise TokenRejected("crit_not_supported")
    kid = header.get("kid")
    if type(kid) is not str or not kid:
        raise TokenRejected("kid_missing")
    return kid


class CognitoJwtVerifier:
    """Verify Cognito ID or access tokens of one user pool; remember recent good tokens."""

    def __init__(
        self,
        *,
        user_pool_id: str,
        client_ids: frozenset[str] | set[str] | list[str] | tuple[str, ...],
        token_use: str,
        jwks: JwksCache,
        leeway_seconds: float = 0,
        cache_size: int = DEFAULT_CACHE_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Configure the verifier; all checks are fixed here, not per call.

        Args:
            user_pool_id: the pool whose issuer tokens must carry.
            client_ids: the app clients allowed (``aud`` / ``client_id``).
            token_use: ``id`` or ``access``.
            jwks: the pool's key cache.
            leeway_seconds: tolerated clock skew for ``exp`` and ``nbf``.
            cache_size: how many verified tokens to remember (0 turns the cache off).
            clock: wall clock in epoch seconds, injectable for tests.
        """
        if token_use not in _TOKEN_USES:
            raise ValueError(f"token_use must be 'id' or 'access', got {token_use!r}")
        clients = frozenset(client_ids)
        if not clients or not all(type(c) is str and c for c in clients):
            raise ValueError("at least one non-empty app client id is required")
        if not 0 <= leeway_seconds <= 300:
            raise ValueError("leeway_seconds must be between 0 and 300")
        self.issuer = cognito_issuer(user_pool_id)
        self.client_ids = clients
        self.token_use = token_use
        self.jwks = jwks
        self.leeway = float(leeway_seconds)
        self._client_claim = "aud" if token_use == "id" else "client_id"
        self._username_claim = "cognito:username" if token_use == "id" else "username"
        # The signature's last characters -> (the whole token, what it verified to).
        self._cache: OrderedDict[str, tuple[str, VerifiedToken]] = OrderedDict()
        self._header_kids: dict[bytes, str] = {}
        self._cache_size = cache_size
        self._clock = clock

    def verify(self, token: str) -> VerifiedToken:
        """Verify a token.

        Args:
            token: the compact JWT.

        Returns:
            The verified user.

        Raises:
            TokenRejected: the token must not be accepted (reason code inside).
            JwksUnavailable: no key could be obtained to decide.
        """
        return self.verify_cached(token)[0]

    def verify_cached(self, token: str) -> tuple[VerifiedToken, bool]:
        """Verify a token, answering from the cache of recently verified ones when possible.

        Args:
            token: the compact JWT.

        Returns:
            The verified user and whether the answer came from the cache.

        Raises:
            TokenRejected: the token must not be accepted (reason code inside).
            JwksUnavailable: no key could be obtained to decide.
        """
        # Few calls and copies on purpose: this runs for every connection, and each extra
        # Python call or copy of the token is a visible share of the RSA verify it must stay
        # close to.
        if type(token) is not str or not 0 < len(token) <= MAX_TOKEN_CHARS:
            raise TokenRejected("malformed")
        now = self._clock()
        # Keyed by the token's last characters (signature bits, unique per token): hashing
        # those costs a tenth of hashing the whole token. A hit still needs the whole token
        # to be equal, so a look-alike only evicts (as any new token can) and is verified.
        cache_key = token[-_CACHE_KEY_CHARS:]
        cache = self._cache
        entry = cache.get(cache_key)
        if entry is not None and entry[0] == token:
            cached = entry[1]
            # A key removed from the JWKS since (rotation, revocation) voids its decisions.
            if now < cached.exp + self.leeway and cached.kid in self.jwks:
                cache.move_to_end(cache_key)
                return cached, True
            del cache[cache_key]
        try:
            raw = token.encode("ascii")
        except UnicodeEncodeError:
            raise TokenRejected("malformed") from None
        # rpartition + partition copy the token fewer times than split() and a slice for the
        # signing input, which here is the rpartition's head.
        signing_input, _, signature_b64 = raw.rpartition(b".")
        header_b64, dot, payload_b64 = signing_input.partition(b".")
        if not dot or _DOT in payload_b64:
            raise TokenRejected("malformed")
        # Cognito writes the same header for every token of a key: remember the few that
        # passed the checks (bounded, so junk headers cannot grow it).
        kid = self._header_kids.get(header_b64)
        if kid is None:
            kid = self._check_new_header(header_b64)
        try:
            claims = _json_object(payload_b64)
            signature = b64url_decode(signature_b64)
        except ValueError:
            raise TokenRejected("malformed_payload") from None
        # Claims come before the signature so junk costs no RSA operation and no JWKS fetch.
        verified = self._check_claims(claims, now, kid)
        try:
            self.jwks.key_for(kid).verify(signature, signing_input, _PKCS1V15, _SHA256)
        except InvalidSignature:
            raise TokenRejected("bad_signature") from None
        if self._cache_size > 0:
            cache[cache_key] = (token, verified)
            if len(cache) > self._cache_size:
                cache.popitem(last=False)
        return verified, False

    def _check_new_header(self, header_b64: bytes) -> str:
        kid = _check_header(header_b64)
        if len(self._header_kids) >= _HEADER_CACHE_SIZE:
            self._header_kids.clear()
        self._header_kids[header_b64] = kid
        return kid

    def _check_claims(self, claims: dict[str, Any], now: float, kid: str) -> VerifiedToken:
        # Written out flat, the usual type tested first: this runs for every fresh token, and
        # each call or loop here costs a visible share of the time an RSA verify takes.
        get = claims.get
        exp = get("exp")
        if type(exp) is not int:
            if exp is None:
                raise TokenRejected("exp_missing")
            if not _is_number(exp):
                raise TokenRejected("exp_not_number")
        leeway = self.leeway
        if now >= exp + leeway:
            raise TokenRejected("expired")
        nbf = get("nbf")
        if nbf is not None:
            if not _is_number(nbf):
                raise TokenRejected("nbf_not_number")
            if nbf - leeway > now:
                raise TokenRejected("not_yet_valid")
        iat = get("iat")
        if type(iat) is not int and iat is not None and not _is_number(iat):
            raise TokenRejected("iat_not_number")
        auth_time = get("auth_time", 0)
        if type(auth_time) is not int and not _is_number(auth_time):
            raise TokenRejected("auth_time_not_number")
        jti = get("jti")
        if type(jti) is not str and jti is not None:
            raise TokenRejected("jti_not_string")
        scope = get("scope")
        if scope is not None and type(scope) is not str:
            raise TokenRejected("scope_not_string")
        if get("iss") != self.issuer:
            raise TokenRejected("iss_mismatch")
        token_use = self.token_use
        if get("token_use") != token_use:
            raise TokenRejected("token_use_mismatch")
        client = get(self._client_claim)
        # A str check first: a list (or any unhashable) must not reach the set lookup.
        if type(client) is not str or client not in self.client_ids:
            raise TokenRejected("client_mismatch")
        sub = get("sub")
        if type(sub) is not str or not sub:
            raise TokenRejected("sub_missing")
        username = get(self._username_claim, "")
        if type(username) is not str:
            raise TokenRejected("username_not_string")
        groups = get("cognito:groups", ())
        if type(groups) is list:
            groups = tuple(groups)
            for group in groups:
                if type(group) is not str:
                    raise TokenRejected("groups_not_list")
        elif type(groups) is not tuple:
            # JSON never yields a tuple: only the default for an absent claim gets here.
            raise TokenRejected("groups_not_list")
        # tuple.__new__ directly: a NamedTuple's own __new__ is a Python-level function.
        return _new_tuple(VerifiedToken, (sub, username, groups, token_use, exp, kid, auth_time))
