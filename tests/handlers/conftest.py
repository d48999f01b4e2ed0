"""Shared fixtures for the handler tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support import create_connection_table

# --- websocket handler & sender fixtures (moto) -------------------------------------------------

CONNECTION_TABLE = "wsauth-test-connections"
REGION = "us-east-1"


@pytest.fixture
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region; no endpoint override leaks in from the outer shell."""
    for name in (
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI",
        "CONNECTION_TTL_SECONDS",
        "SESSION_EXPIRY",
        "CLOCK_LEEWAY_SECONDS",
        "MAX_CONNECTIONS_PER_USER",
        "MANAGEMENT_ENDPOINT",
        "API_ID",
        "STAGE_NAME",
        # Inside Lambda the handlers print metrics lines; tests opt in (`emf_lines`).
        "AWS_LAMBDA_FUNCTION_NAME",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("CONNECTION_TABLE_NAME", CONNECTION_TABLE)


@pytest.fixture
def fresh_clients() -> Iterator[None]:
    """Forget the handlers' cached boto3 clients, so each test's clients see its moto mock."""
    from wsauth.handlers import connections, sender, sessions, websocket

    def forget() -> None:
        # A test may have replaced a factory with a stand-in (undone after this teardown).
        for factory in (connections.dynamodb_client, sender.management_client):
            getattr(factory, "cache_clear", lambda: None)()
        sessions._verifier = None
        websocket._settings = None

    forget()
    yield
    forget()


@pytest.fixture
def dynamodb(aws_environment: None, fresh_clients: None) -> Iterator[Any]:
    """A moto DynamoDB client with the connection table of DESIGN §3 created."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_connection_table(client, CONNECTION_TABLE)
        yield client


@pytest.fixture
def table_name(dynamodb: Any) -> str:
    """Name of the connection table the `dynamodb` fixture created."""
    return CONNECTION_TABLE


@pytest.fixture
def emf_lines(
    aws_environment: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[[], list[dict[str, Any]]]:
    """Run as inside a Lambda function; the returned callable gives the EMF lines printed to
    stdout since the last call, parsed (other lines, such as the sweeper's report, are skipped)."""
    import json

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "wsauth-test-function")

    def lines() -> list[dict[str, Any]]:
        found = []
        for line in capsys.readouterr().out.splitlines():
            if line.startswith("{") and "_aws" in (document := json.loads(line)):
                found.append(document)
        return found

    return lines


# --- end of websocket handler & sender fixtures -------------------------------------------------


# --- authorizer fixtures: RSA keys, a loopback JWKS server, token minting -----------------------
# Owned by the authorizer's tests (tests/handlers/test_authorizer*.py).

AUTH_POOL_ID = "eu-west-1_TestPool1"
AUTH_ISSUER = f"https://cognito-idp.eu-west-1.amazonaws.com/{AUTH_POOL_ID}"
AUTH_CLIENT_ID = "clientone1234567890"
AUTH_OTHER_CLIENT_ID = "clienttwo1234567890"
AUTH_NOW = 1_800_000_000.0
"""The fake wall clock tests start at; tokens are minted relative to it."""


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JWTs spell it."""
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class SigningKey:
    """An RSA (or EC) private key with the public JWK that describes it."""

    def __init__(self, kid: str, bits: int = 2048, ec: bool = False, **jwk_extra: Any) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec as ec_keys
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.kid = kid
        if ec:
            self.private_key: Any = ec_keys.generate_private_key(ec_keys.SECP256R1())
            numbers: Any = self.private_key.public_key().public_numbers()
            self.jwk: dict[str, Any] = {
                "kid": kid,
                "kty": "EC",
                "crv": "P-256",
                "alg": "ES256",
                "use": "sig",
                "x": b64url(numbers.x.to_bytes(32, "big")),
                "y": b64url(numbers.y.to_bytes(32, "big")),
            }
        else:
            self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
            numbers = self.private_key.public_key().public_numbers()
            self.jwk = {
                "kid": kid,
                "kty": "RSA",
                "alg": "RS256",
                "use": "sig",
                "e": b64url(numbers.e.to_bytes(3, "big")),
                "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            }
        self.jwk.update(jwk_extra)

    def sign(self, signing_input: bytes, hash_name: str = "SHA256") -> bytes:
        """PKCS#1 v1.5 signature with the named hash."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        digest = getattr(hashes, hash_name)()
        return self.private_key.sign(signing_input, padding.PKCS1v15(), digest)

    def public_pem(self) -> bytes:
        """The public key as PEM (what an HS256 forgery uses as its secret)."""
        from cryptography.hazmat.primitives import serialization

        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


class AuthKeys:
    """The keys the authorizer tests sign with."""

    def __init__(self) -> None:
        self.main = SigningKey("main-kid")
        self.second = SigningKey("second-kid")
        self.foreign = SigningKey("foreign-kid")
        self.weak = SigningKey("weak-kid", bits=1024)
        self.ec = SigningKey("ec-kid", ec=True)
        self.enc = SigningKey("enc-kid", use="enc")
        self.rs512 = SigningKey("rs512-kid", alg="RS512")

    def pool_jwks(self) -> list[dict[str, Any]]:
        """The pool's JWKS: two good keys plus some that must never verify RS256."""
        return [k.jwk for k in (self.main, self.second, self.weak, self.ec, self.enc, self.rs512)]


@pytest.fixture(scope="session")
def auth_keys() -> AuthKeys:
    """RSA/EC keys generated once per session (key generation is the slow part)."""
    return AuthKeys()


def id_claims(now: float = AUTH_NOW, **overrides: Any) -> dict[str, Any]:
    """Claims of a valid Cognito ID token; an override of None removes the claim."""
    claims: dict[str, Any] = {
        "sub": "7c1f1f4e-3b0a-4d5e-9f57-2b1c0a9e8d11",
        "cognito:groups": ["admins", "readers"],
        "iss": AUTH_ISSUER,
        "cognito:username": "alice",
        "aud": AUTH_CLIENT_ID,
        "event_id": "e1",
        "token_use": "id",
        "auth_time": int(now) - 10,
        "exp": int(now) + 3600,
        "iat": int(now) - 10,
        "jti": "a5b1c0de-0000-4000-8000-000000000001",
        "email": "alice@example.com",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def access_claims(now: float = AUTH_NOW, **overrides: Any) -> dict[str, Any]:
    """Claims of a valid Cognito access token; an override of None removes the claim."""
    claims: dict[str, Any] = {
        "sub": "7c1f1f4e-3b0a-4d5e-9f57-2b1c0a9e8d11",
        "cognito:groups": ["admins"],
        "iss": AUTH_ISSUER,
        "client_id": AUTH_CLIENT_ID,
        "origin_jti": "o1",
        "event_id": "e1",
        "token_use": "access",
        "scope": "aws.cognito.signin.user.admin",
        "auth_time": int(now) - 10,
        "exp": int(now) + 3600,
        "iat": int(now) - 10,
        "jti": "a5b1c0de-0000-4000-8000-000000000002",
        "username": "alice",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def encode_segment(value: Any) -> str:
    """base64url of a JSON value, or of raw bytes as given."""
    import json

    raw = value if isinstance(value, bytes) else json.dumps(value).encode("utf-8")
    return b64url(raw)


def mint(
    key: SigningKey,
    claims: Any,
    header: dict[str, Any] | None = None,
    *,
    header_segment: str | None = None,
    payload_segment: str | None = None,
    hash_name: str = "SHA256",
) -> str:
    """Sign a token with ``key`` (RS256 by default); the segments can be forced for forgeries."""
    head = {"kid": key.kid, "alg": "RS256"}
    head.update(header or {})
    head = {k: v for k, v in head.items() if v is not None}
    h = header_segment if header_segment is not None else encode_segment(head)
    p = payload_segment if payload_segment is not None else encode_segment(claims)
    signing_input = f"{h}.{p}".encode("ascii")
    return f"{h}.{p}.{b64url(key.sign(signing_input, hash_name))}"


class JwksServer:
    """A loopback JWKS endpoint that can be told to fail, hang, drip, lie or rotate keys."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.keys = keys
        self.mode = "ok"
        self.body: bytes | None = None
        self.requests = 0
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                server.requests += 1
                try:
                    server.serve(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the verifier gave up (oversize, drip): exactly what is tested

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/{AUTH_POOL_ID}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def document(self) -> bytes:
        import json

        if self.body is not None:
            return self.body
        return json.dumps({"keys": self.keys}).encode()

    def serve(self, request: Any) -> None:
        mode = self.mode
        if mode == "hang":
            self.release.wait()
            return
        if mode == "fail":
            request.send_error(500)
            return
        if mode == "redirect":
            request.send_response(302)
            request.send_header("Location", "http://127.0.0.1:9/elsewhere")
            request.end_headers()
            return
        body = self.document()
        if mode == "oversize":
            body = b'{"keys": [' + b" " * (70 * 1024) + b"]}"
        request.send_response(200)
        request.send_header("Content-Type", "application/json")
        if mode == "oversize_chunked":
            # No Content-Length: the reader must stop on its own cap.
            request.send_header("Connection", "close")
            request.end_headers()
            chunk = b" " * 4096
            for _ in range(40):
                request.wfile.write(chunk)
            return
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        if mode == "drip":
            # One byte at a time, slower than any deadline: only a whole-fetch bound stops it.
            for byte in body:
                if self.release.wait(0.05):
                    return
                request.wfile.write(bytes([byte]))
                request.wfile.flush()
            return
        request.wfile.write(body)

    def close(self) -> None:
        """Stop serving; hanging requests are released first."""
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def reset(self, keys: list[dict[str, Any]]) -> None:
        """Back to serving ``keys`` normally; releases any request still hanging."""
        import threading

        self.release.set()
        self.release = threading.Event()
        self.keys = list(keys)
        self.mode = "ok"
        self.body = None
        self.requests = 0


@pytest.fixture(scope="session")
def _jwks_server_process(auth_keys: AuthKeys) -> Iterator[JwksServer]:
    # One server per session: shutting one down costs its poll interval.
    server = JwksServer(auth_keys.pool_jwks())
    yield server
    server.close()


@pytest.fixture
def jwks_server(_jwks_server_process: JwksServer, auth_keys: AuthKeys) -> Iterator[JwksServer]:
    """A JWKS server on 127.0.0.1 (port 0), serving the pool's key set, reset for each test."""
    _jwks_server_process.reset(auth_keys.pool_jwks())
    yield _jwks_server_process
    _jwks_server_process.release.set()


class FakeClock:
    """A settable clock for both the wall (epoch) and the monotonic time."""

    def __init__(self, now: float = AUTH_NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    """Fake time shared by a verifier and its JWKS cache."""
    return FakeClock()


@pytest.fixture
def make_verifier(jwks_server: JwksServer, clock: FakeClock) -> Any:
    """Build a CognitoJwtVerifier against the loopback JWKS with the fake clock."""
    from wsauth.handlers.cognito_jwt import CognitoJwtVerifier, JwksCache

    def build(**options: Any) -> Any:
        jwks = JwksCache(
            options.pop("jwks_url", jwks_server.url),
            fetch_seconds=options.pop("fetch_seconds", 2.0),
            clock=clock,
        )
        settings: dict[str, Any] = {
            "user_pool_id": AUTH_POOL_ID,
            "client_ids": [AUTH_CLIENT_ID],
            "token_use": "id",
            "jwks": jwks,
            "clock": clock,
        }
        settings.update(options)
        return CognitoJwtVerifier(**settings)

    return build


@pytest.fixture
def authorizer_env(monkeypatch: pytest.MonkeyPatch, jwks_server: JwksServer) -> Iterator[None]:
    """The authorizer's environment pointing at the loopback JWKS; forgets the cold start."""
    from wsauth.handlers import authorizer

    for name in (
        "TOKEN_SOURCE",
        "TOKEN_QUERY_KEY",
        "CLOCK_LEEWAY_SECONDS",
        "AWS_ENDPOINT_URL_COGNITO_IDP",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("USER_POOL_ID", AUTH_POOL_ID)
    monkeypatch.setenv("APP_CLIENT_ID", f"{AUTH_CLIENT_ID},{AUTH_OTHER_CLIENT_ID}")
    monkeypatch.setenv("TOKEN_USE", "id")
    monkeypatch.setenv("JWKS_URL", jwks_server.url)
    authorizer.reset()
    yield
    authorizer.reset()


@pytest.fixture(scope="session")
def jwt_kit(auth_keys: AuthKeys) -> Any:
    """The helpers above as one object, so test modules need not import conftest."""
    from types import SimpleNamespace

    return SimpleNamespace(
        keys=auth_keys,
        mint=mint,
        id_claims=id_claims,
        access_claims=access_claims,
        encode_segment=encode_segment,
        b64url=b64url,
        pool_id=AUTH_POOL_ID,
        issuer=AUTH_ISSUER,
        client_id=AUTH_CLIENT_ID,
        other_client_id=AUTH_OTHER_CLIENT_ID,
        now=AUTH_NOW,
        JwksServer=JwksServer,
    )


# --- end of authorizer fixtures -----------------------------------------------------------------
