"""The `@connections` signature check against requests botocore itself signed."""

from __future__ import annotations

import hashlib
import time
from urllib.parse import quote

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from wsauth.localcloud.gateway.http import Request, parse_head
from wsauth.localcloud.gateway.sigv4 import check_signature

REGION = "eu-west-1"
SECRETS = {"testing": "testing"}


def botocore_signed(
    method: str,
    path: str,
    body: bytes = b"",
    *,
    query: str = "",
    secret: str = "testing",
    region: str = REGION,
    token: str | None = "session-token",
    headers: dict[str, str] | None = None,
) -> tuple[Request, bytes]:
    """Sign a request with botocore's own SigV4 signer and parse it as the gateway does."""
    url = f"http://127.0.0.1:8080{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    credentials = Credentials("testing", secret, token)
    SigV4Auth(credentials, "execute-api", region).add_auth(request)
    prepared = request.prepare()
    target = prepared.url.split("127.0.0.1:8080", 1)[1]
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1:8080"]
    lines += [f"{name}: {value}" for name, value in prepared.headers.items()]
    head = "\r\n".join(lines).encode("latin-1")
    return parse_head(head), body


def test_a_post_to_connection_as_boto3_signs_it_is_accepted() -> None:
    request, body = botocore_signed("POST", "/prod/@connections/" + quote("Ab1=", safe=""), b"hi")
    assert check_signature(request, body, region=REGION, secrets=SECRETS) is None


@pytest.mark.parametrize(
    ("tamper", "says"),
    [
        ("body", "does not match"),
        ("path", "does not match"),
        ("method", "does not match"),
        ("secret", "does not match"),
        ("token", "does not match"),
    ],
)
def test_any_change_to_what_was_signed_is_refused(tamper: str, says: str) -> None:
    path = "/prod/@connections/" + quote("Ab1=", safe="")
    request, body = botocore_signed(
        "POST", path, b"hi", secret="wrong" if tamper == "secret" else "testing"
    )
    if tamper == "body":
        body = b"ho"
    elif tamper == "path":
        request.raw_path = request.raw_path.replace("Ab1", "Ab2")
    elif tamper == "method":
        request.method = "DELETE"
    elif tamper == "token":
        request.by_name["x-amz-security-token"] = "another-token"
        request.headers = [
            (name, "another-token" if name.lower() == "x-amz-security-token" else value)
            for name, value in request.headers
        ]
    refusal = check_signature(request, body, region=REGION, secrets=SECRETS)
    assert refusal is not None
    assert refusal.error_type == "InvalidSignatureException"
    assert says in refusal.message


def test_a_declared_payload_hash_must_be_the_bodys() -> None:
    """`X-Amz-Content-SHA256` stands for the body in the signature: a body that does not
    match it is refused even though the signature over the header verifies."""
    declared = hashlib.sha256(b"signed body").hexdigest()
    request, _ = botocore_signed(
        "POST",
        "/prod/@connections/abc",
        b"signed body",
        headers={"X-Amz-Content-SHA256": declared},
    )
    assert check_signature(request, b"signed body", region=REGION, secrets=SECRETS) is None
    refusal = check_signature(request, b"another body", region=REGION, secrets=SECRETS)
    assert refusal is not None and "x-amz-content-sha256" in refusal.message


def test_query_string_and_extra_signed_headers_are_canonicalized() -> None:
    request, body = botocore_signed(
        "GET",
        "/prod/@connections/abc",
        query="b=2&a=1&a=0&c=%20x",
        headers={"X-Custom": "  two   spaces  "},
    )
    assert check_signature(request, body, region=REGION, secrets=SECRETS) is None


def test_a_header_sent_twice_is_signed_as_its_values_joined() -> None:
    """Sent as two lines, `X-Custom: a` and `X-Custom: b` are canonically `x-custom:a,b`."""
    request, body = botocore_signed("GET", "/prod/@connections/abc", headers={"X-Custom": "a,b"})
    lines = [
        line
        for name, value in request.headers
        for line in ([f"{name}: a", f"{name}: b"] if name == "X-Custom" else [f"{name}: {value}"])
    ]
    head = "\r\n".join([f"GET {request.raw_path} HTTP/1.1", *lines]).encode("latin-1")
    assert check_signature(parse_head(head), body, region=REGION, secrets=SECRETS) is None


def test_a_key_without_a_known_secret_is_taken_on_trust_but_its_scope_is_checked() -> None:
    request, body = botocore_signed("POST", "/prod/@connections/abc", b"hi", secret="whatever")
    assert check_signature(request, body, region=REGION, secrets={}) is None
    refusal = check_signature(request, body, region="us-east-1", secrets={})
    assert refusal is not None and "region" in refusal.message


def test_the_clock_allows_five_minutes_either_way() -> None:
    request, body = botocore_signed("POST", "/prod/@connections/abc", b"hi")
    now = time.time()
    for offset in (-290, 290):
        assert (
            check_signature(request, body, region=REGION, secrets=SECRETS, now=now + offset) is None
        )
    for offset in (-310, 310):
        refusal = check_signature(request, body, region=REGION, secrets=SECRETS, now=now + offset)
        assert refusal is not None and "5 min" in refusal.message


@settings(max_examples=200, deadline=None)
@given(
    connection_id=st.text(min_size=1, max_size=40),
    body=st.binary(max_size=200),
    flip=st.integers(min_value=0),
)
def test_every_id_and_body_verifies_and_any_flipped_byte_does_not(
    connection_id: str, body: bytes, flip: int
) -> None:
    """Whatever the id's characters (percent-encoded twice in the canonical path, as botocore
    does for every service but S3) and whatever the body, botocore's signature verifies."""
    path = "/prod/@connections/" + quote(connection_id, safe="")
    request, signed_body = botocore_signed("POST", path, body)
    assert check_signature(request, signed_body, region=REGION, secrets=SECRETS) is None
    if body:
        index = flip % len(body)
        changed = body[:index] + bytes([body[index] ^ 1]) + body[index + 1 :]
        assert check_signature(request, changed, region=REGION, secrets=SECRETS) is not None
