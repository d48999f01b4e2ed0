"""The Lambda handler: answers API Gateway expects, token sources, configuration and logs."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from wsauth.handlers import authorizer
from wsauth.handlers.cognito_jwt import JwksUnavailable

METHOD_ARN = "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod/$connect"


def _event(
    query: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    # The shape API Gateway sends a WebSocket REQUEST authorizer (trimmed to what matters).
    return {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "headers": headers,
        "queryStringParameters": query,
        "requestContext": {
            "routeKey": "$connect",
            "eventType": "CONNECT",
            "connectionId": "L0SM9cOFvHcCIhw=",
            "apiId": "abcdef1234",
            "stage": "prod",
        },
    }


def _token(kit: Any, **overrides: Any) -> str:
    # The handler reads the real clock: mint around it.
    return kit.mint(kit.keys.main, kit.id_claims(now=time.time(), **overrides))


def _log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_allow_answer(jwt_kit: Any, authorizer_env: None) -> None:
    """A valid ID token gets an Allow on the methodArn with the user and the session's bounds
    (the token's `exp` and `auth_time`) in context."""
    now = time.time()
    token = jwt_kit.mint(jwt_kit.keys.main, jwt_kit.id_claims(now=now))
    answer = authorizer.handler(_event(query={"idToken": token}), None)
    assert answer == {
        "principalId": "7c1f1f4e-3b0a-4d5e-9f57-2b1c0a9e8d11",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": METHOD_ARN}
            ],
        },
        "context": {
            "userId": "7c1f1f4e-3b0a-4d5e-9f57-2b1c0a9e8d11",
            "username": "alice",
            "tokenUse": "id",
            "groups": "admins,readers",
            "expiresAt": int(now) + 3600,
            "authTime": int(now) - 10,
        },
    }


def test_allow_access_token(
    jwt_kit: Any, authorizer_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With TOKEN_USE=access, an access token of an allowed client is accepted."""
    monkeypatch.setenv("TOKEN_USE", "access")
    claims = jwt_kit.access_claims(now=time.time(), client_id=jwt_kit.other_client_id)
    token = jwt_kit.mint(jwt_kit.keys.main, claims)
    answer = authorizer.handler(_event(query={"idToken": token}), None)
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert answer["context"] == {
        "userId": "7c1f1f4e-3b0a-4d5e-9f57-2b1c0a9e8d11",
        "username": "alice",
        "tokenUse": "access",
        "groups": "admins",
        "expiresAt": claims["exp"],
        "authTime": claims["auth_time"],
    }


def _is_deny(answer: dict[str, Any]) -> bool:
    statement = answer["policyDocument"]["Statement"]
    return (
        answer["policyDocument"]["Version"] == "2012-10-17"
        and len(statement) == 1
        and statement[0]["Effect"] == "Deny"
        and statement[0]["Action"] == "execute-api:Invoke"
        and "context" not in answer
    )


@pytest.mark.parametrize(
    "event",
    [
        _event(),
        _event(query={}),
        _event(query={"idToken": ""}),
        _event(query={"token": "x.y.z"}),
        _event(headers={"Sec-WebSocket-Protocol": "wsauth"}),
        {},
        {"methodArn": METHOD_ARN, "queryStringParameters": "idToken=x"},
        None,
        [],
    ],
    ids=[
        "no-params",
        "empty-params",
        "empty-token",
        "other-key",
        "header-not-used",
        "empty-event",
        "params-not-dict",
        "none-event",
        "list-event",
    ],
)
def test_deny_missing_token(authorizer_env: None, event: Any) -> None:
    """Without a token where configured the answer is Deny (even if the gateway let it in)."""
    assert _is_deny(authorizer.handler(event, None))


def test_deny_bad_token(jwt_kit: Any, authorizer_env: None) -> None:
    """A bad token gets a Deny on the methodArn."""
    answer = authorizer.handler(_event(query={"idToken": _token(jwt_kit, aud="nope")}), None)
    assert _is_deny(answer)
    assert answer["policyDocument"]["Statement"][0]["Resource"] == METHOD_ARN


def test_deny_without_method_arn(jwt_kit: Any, authorizer_env: None) -> None:
    """A valid token is still refused when the event names no resource to allow."""
    event = _event(query={"idToken": _token(jwt_kit)})
    del event["methodArn"]
    assert _is_deny(authorizer.handler(event, None))


def test_custom_query_key(
    jwt_kit: Any, authorizer_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TOKEN_QUERY_KEY names the query parameter that carries the token."""
    monkeypatch.setenv("TOKEN_QUERY_KEY", "jwt")
    token = _token(jwt_kit)
    assert _is_deny(authorizer.handler(_event(query={"idToken": token}), None))
    answer = authorizer.handler(_event(query={"jwt": token}), None)
    assert answer["principalId"] == "7c1f1f4e-3b0a-4d5e-9f57-2b1c0a9e8d11"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Sec-WebSocket-Protocol", "wsauth, {token}"),
        ("sec-websocket-protocol", "wsauth,{token}"),
        ("SEC-WEBSOCKET-PROTOCOL", "{token}, wsauth"),
        ("Sec-Websocket-Protocol", "{token}"),
    ],
    ids=["canonical", "lowercase-no-space", "uppercase-token-first", "token-only"],
)
def test_token_from_protocol_header(
    jwt_kit: Any, authorizer_env: None, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    """TOKEN_SOURCE=protocol takes the JWT among the offered subprotocols."""
    monkeypatch.setenv("TOKEN_SOURCE", "protocol")
    token = _token(jwt_kit)
    headers = {"Host": "example", name: value.format(token=token)}
    answer = authorizer.handler(_event(headers=headers), None)
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Allow"


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {},
        {"Sec-WebSocket-Protocol": "wsauth"},
        {"Sec-WebSocket-Protocol": "wsauth, {token}, {token}"},
        {"Sec-WebSocket-Protocol": "wsauth, {bad}"},
        {"X-Sec-WebSocket-Protocol": "wsauth, {token}"},
    ],
    ids=["no-headers", "empty-headers", "no-jwt", "two-jwts", "bad-jwt", "other-header"],
)
def test_protocol_header_deny(
    jwt_kit: Any, authorizer_env: None, monkeypatch: pytest.MonkeyPatch, headers: Any
) -> None:
    """TOKEN_SOURCE=protocol refuses a missing, ambiguous or bad subprotocol, and the query."""
    monkeypatch.setenv("TOKEN_SOURCE", "protocol")
    token, bad = _token(jwt_kit), _token(jwt_kit, iss="https://elsewhere")
    if headers:
        headers = {k: v.format(token=token, bad=bad) for k, v in headers.items()}
    event = _event(query={"idToken": token}, headers=headers)
    assert _is_deny(authorizer.handler(event, None))


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("USER_POOL_ID", ""),
        ("USER_POOL_ID", "nounderscore"),
        ("APP_CLIENT_ID", " , "),
        ("TOKEN_USE", "refresh"),
        ("TOKEN_SOURCE", "cookie"),
        ("CLOCK_LEEWAY_SECONDS", "soon"),
        ("CLOCK_LEEWAY_SECONDS", "-1"),
        ("JWKS_URL", "ftp://example.com/jwks.json"),
    ],
)
def test_misconfiguration_raises(
    jwt_kit: Any,
    authorizer_env: None,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
) -> None:
    """A misconfigured function fails (API Gateway answers 500) instead of deciding."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError):
        authorizer.handler(_event(query={"idToken": _token(jwt_kit)}), None)


def test_default_jwks_url_local_cloud(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without JWKS_URL, the JWKS comes from AWS_ENDPOINT_URL_COGNITO_IDP when that is set."""
    env = {"USER_POOL_ID": "us-east-1_Abc123", "APP_CLIENT_ID": "c"}
    config = authorizer.AuthorizerConfig.from_env(
        {**env, "AWS_ENDPOINT_URL_COGNITO_IDP": "http://127.0.0.1:5000/"}
    )
    assert config.jwks_url == "http://127.0.0.1:5000/us-east-1_Abc123/.well-known/jwks.json"
    assert authorizer.AuthorizerConfig.from_env(env).jwks_url == (
        "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Abc123/.well-known/jwks.json"
    )
    explicit = {**env, "JWKS_URL": "http://127.0.0.1:1/k.json", "AWS_ENDPOINT_URL_COGNITO_IDP": "x"}
    assert authorizer.AuthorizerConfig.from_env(explicit).jwks_url == "http://127.0.0.1:1/k.json"


def test_issuer_ignores_jwks_url(
    jwt_kit: Any, authorizer_env: None, monkeypatch: pytest.MonkeyPatch, jwks_server: Any
) -> None:
    """The issuer is always the AWS one, whatever host serves the JWKS."""
    local_issuer = jwks_server.url.rsplit("/.well-known", 1)[0]
    token = _token(jwt_kit, iss=local_issuer)
    assert _is_deny(authorizer.handler(_event(query={"idToken": token}), None))


def test_config_read_once(
    jwt_kit: Any, authorizer_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment is read at the first invocation only (the cold start)."""
    token = _token(jwt_kit)
    authorizer.handler(_event(query={"idToken": token}), None)
    monkeypatch.setenv("APP_CLIENT_ID", "someoneelse")
    answer = authorizer.handler(_event(query={"idToken": token}), None)
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Allow"


def test_raises_when_no_key(authorizer_env: None, jwt_kit: Any, jwks_server: Any) -> None:
    """With Cognito unreachable and no cached key, the handler raises instead of deciding."""
    jwks_server.mode = "fail"
    with pytest.raises(JwksUnavailable):
        authorizer.handler(_event(query={"idToken": _token(jwt_kit)}), None)


def test_one_log_line_per_decision(
    jwt_kit: Any, authorizer_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each decision logs one JSON line: outcome, reason, sub when known, connection, time."""
    token = _token(jwt_kit)
    authorizer.handler(_event(query={"idToken": token}), None)
    authorizer.handler(_event(query={"idToken": token}), None)
    authorizer.handler(_event(query={"idToken": _token(jwt_kit, exp=1)}), None)
    authorizer.handler(_event(), None)
    lines = _log_lines(capsys)
    assert [(x["outcome"], x["reason"], x["cached"]) for x in lines] == [
        ("allow", "ok", False),
        ("allow", "ok", True),
        ("deny", "expired", False),
        ("deny", "token_missing", False),
    ]
    assert {x["connectionId"] for x in lines} == {"L0SM9cOFvHcCIhw="}
    assert [x["sub"] for x in lines] == [
        "7c1f1f4e-3b0a-4d5e-9f57-2b1c0a9e8d11",
        "7c1f1f4e-3b0a-4d5e-9f57-2b1c0a9e8d11",
        None,
        None,
    ]
    assert all(type(x["ms"]) is float and x["ms"] >= 0 for x in lines)


def test_logs_never_hold_token_or_claims(
    jwt_kit: Any, authorizer_env: None, capsys: pytest.CaptureFixture[str], jwks_server: Any
) -> None:
    """Neither a token (nor any of its parts) nor other claims appear in the logs."""
    tokens = [_token(jwt_kit), _token(jwt_kit, aud="nope"), _token(jwt_kit, exp=1)]
    for token in tokens:
        authorizer.handler(_event(query={"idToken": token}), None)
    jwks_server.mode = "fail"
    authorizer.reset()
    with pytest.raises(JwksUnavailable):
        authorizer.handler(_event(query={"idToken": tokens[0]}), None)
    output = capsys.readouterr().out
    assert len(output.splitlines()) == 4
    for token in tokens:
        for part in token.split("."):
            assert part not in output
    for claim in ("alice@example.com", "alice", "admins", jwt_kit.issuer, jwt_kit.client_id):
        assert claim not in output


def test_imports_no_boto3() -> None:
    """The authorizer's cold start imports neither boto3 nor botocore (nor an HTTP client yet)."""
    import subprocess
    import sys

    code = (
        "import sys, wsauth.handlers.authorizer; "
        "print(sorted(m for m in ('boto3', 'botocore', 'http.client') if m in sys.modules))"
    )
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert child.stdout.strip() == "[]"
