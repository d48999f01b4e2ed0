"""AWS Signature Version 4, checked as API Gateway checks a call to `@connections`.

What needs no secret is always checked: the header's form, the credential scope (service
`execute-api`, the API's region, the request's date) and the clock (5 minutes either way).
The signature itself is recomputed for the access keys the local cloud knows (the ones its
Lambda workers and test helpers sign with); any other key is taken on trust, as moto takes
it: there is no IAM here to know its secret. So a request signed for the wrong region or
service, or a stale one, is refused locally just as AWS would refuse it.
"""

from __future__ import annotations

import calendar
import functools
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote

from .http import Request

__all__ = ["SERVICE", "Refusal", "check_signature"]

SERVICE = "execute-api"
_ALGORITHM = "AWS4-HMAC-SHA256"
_MAX_SKEW_SECONDS = 5 * 60
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check "
    "your AWS Secret Access Key and signing method. Consult the service documentation for "
    "details."
)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is refused: API Gateway's 403 error type and message."""

    error_type: str
    message: str


def check_signature(
    request: Request,
    body: bytes,
    *,
    region: str,
    secrets: Mapping[str, str],
    now: float | None = None,
) -> Refusal | None:
    """Check a request's SigV4 `Authorization` header.

    Args:
        request: The parsed request (its `raw_path` is what was signed).
        body: The request body.
        region: The API's region; the credential must be scoped to it.
        secrets: Secret access key by access key id, for the keys whose signature is verified.
        now: The current time (epoch seconds); the clock by default.

    Returns:
        None when the request may proceed, else the refusal.
    """
    authorization = request.header("Authorization")
    if not authorization:
        return Refusal("MissingAuthenticationTokenException", "Missing Authentication Token")
    algorithm, _, rest = authorization.partition(" ")
    fields = dict(_field(part) for part in rest.split(","))
    credential = fields.get("Credential", "")
    signed_headers = fields.get("SignedHeaders", "")
    signature = fields.get("Signature", "")
    if algorithm != _ALGORITHM or not (credential and signed_headers and signature):
        return Refusal(
            "IncompleteSignatureException",
            f"Authorization header requires the {_ALGORITHM} algorithm and 'Credential', "
            "'SignedHeaders' and 'Signature' parameters.",
        )
    amz_date = request.header("X-Amz-Date") or ""
    signed_at = _parse_amz_date(amz_date)
    if signed_at is None:
        return Refusal(
            "IncompleteSignatureException",
            "Authorization header requires existence of a valid 'X-Amz-Date' header.",
        )
    scope = credential.split("/")
    if len(scope) != 5:
        return Refusal("IncompleteSignatureException", "Credential is not a valid scope.")
    access_key, date, scope_region, service, terminator = scope
    refusal = _scope_refusal(date, scope_region, service, terminator, amz_date, region)
    if refusal is not None:
        return refusal
    clock = time.time() if now is None else now
    if abs(clock - signed_at) > _MAX_SKEW_SECONDS:
        return Refusal(
            "InvalidSignatureException",
            f"Signature expired or not yet current: {amz_date} is more than 5 min from "
            f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(clock))}.",
        )
    names = signed_headers.split(";")
    if "host" not in names:
        return Refusal(
            "InvalidSignatureException",
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        )
    secret = secrets.get(access_key)
    if secret is None:
        return None  # a key we cannot know: accepted, as moto accepts it
    payload_hash = hashlib.sha256(body).hexdigest()
    declared_hash = request.header("X-Amz-Content-SHA256")
    if declared_hash is not None and declared_hash != payload_hash:
        # Signed in place of the body, so it must be the body's, or any body would pass.
        return Refusal(
            "InvalidSignatureException",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )
    repeated = len(request.headers) != len(request.by_name)
    canonical = "\n".join(
        [
            request.method,
            _canonical_uri(request.raw_path),
            _canonical_query(request.query),
            "".join(f"{name}:{_header_value(request, name, repeated)}\n" for name in names),
            signed_headers,
            payload_hash,
        ]
    )
    string_to_sign = "\n".join(
        [
            _ALGORITHM,
            amz_date,
            "/".join(scope[1:]),
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = _signing_key(secret, date, scope_region, service)
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return Refusal("InvalidSignatureException", _MISMATCH)
    return None


def _field(part: str) -> tuple[str, str]:
    name, _, value = part.strip().partition("=")
    return name, value


@functools.lru_cache(maxsize=8)  # calls within a second share the value
def _parse_amz_date(value: str) -> int | None:
    # `20240101T000000Z`; parsed by hand: `time.strptime` costs more than the signature.
    if len(value) != 16 or value[8] != "T" or value[15] != "Z":
        return None
    digits = value[:8] + value[9:15]
    if not digits.isdigit():
        return None
    try:
        return calendar.timegm(
            time.struct_time(
                (
                    int(digits[0:4]),
                    int(digits[4:6]),
                    int(digits[6:8]),
                    int(digits[8:10]),
                    int(digits[10:12]),
                    int(digits[12:14]),
                    0,
                    0,
                    0,
                )
            )
        )
    except (OverflowError, ValueError):
        return None


def _scope_refusal(
    date: str, scope_region: str, service: str, terminator: str, amz_date: str, region: str
) -> Refusal | None:
    if terminator != "aws4_request":
        message = "Credential should be scoped with a valid terminator: 'aws4_request'."
    elif service != SERVICE:
        message = f"Credential should be scoped to correct service: '{SERVICE}'."
    elif scope_region != region:
        message = f"Credential should be scoped to a valid region, not '{scope_region}'."
    elif date != amz_date[:8]:
        message = (
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{date}' != '{amz_date[:8]}'."
        )
    else:
        return None
    return Refusal("InvalidSignatureException", message)


@functools.lru_cache(maxsize=1024)  # a connection's posts all go to one path
def _canonical_uri(raw_path: str) -> str:
    # The path as sent, URI-encoded once more: how SigV4 canonicalizes all services but S3.
    return quote(_normalize(raw_path), safe="/~")


def _normalize(path: str) -> str:
    # RFC 3986's dot-segment removal, empty segments dropped too, as botocore's signer does.
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    trailing = "/" if path.endswith("/") and segments else ""
    return "/" + "/".join(segments) + trailing


def _canonical_query(query: str) -> str:
    if not query:
        return ""
    pairs = []
    for part in query.split("&"):
        name, _, value = part.partition("=")
        pairs.append((_encode(name), _encode(value)))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _encode(component: str) -> str:
    return quote(unquote(component), safe="-_.~")


def _header_value(request: Request, name: str, repeated: bool) -> str:
    if repeated:  # some header came more than once: AWS joins a name's values with ","
        values = [value for header, value in request.headers if header.lower() == name]
        return ",".join(" ".join(value.split()) for value in values)
    return " ".join(request.by_name.get(name, "").split())


@functools.lru_cache(maxsize=64)
def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key
