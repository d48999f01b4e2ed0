"""Tokens issued by moto's Cognito pass the authorizer: the local cloud accepts its own sign-ins."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wsauth.handlers import authorizer

PASSWORD = "Correct-Horse-9-battery"


def _moto_public_jwks() -> bytes:
    # moto signs every pool's tokens with one bundled key (kid "dummy"); its JWKS ships gzipped
    # in recent releases and plain in older ones.
    import moto.cognitoidp

    resources = Path(moto.cognitoidp.__file__).parent / "resources"
    plain = resources / "jwks-public.json"
    if plain.exists():
        return plain.read_bytes()
    return gzip.decompress((resources / "jwks-public.json.gz").read_bytes())


@pytest.fixture
def moto_sign_in(aws_environment: None) -> Iterator[dict[str, Any]]:
    """A moto user pool (email usernames) with a password-auth client and a signed-in user."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        cognito = boto3.client("cognito-idp", region_name="us-east-1")
        pool_id = cognito.create_user_pool(PoolName="wsauth-test", UsernameAttributes=["email"])[
            "UserPool"
        ]["Id"]
        client_id = cognito.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName="web",
            ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        )["UserPoolClient"]["ClientId"]
        cognito.admin_create_user(
            UserPoolId=pool_id,
            Username="carol@example.com",
            MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "email", "Value": "carol@example.com"}],
        )
        cognito.admin_set_user_password(
            UserPoolId=pool_id, Username="carol@example.com", Password=PASSWORD, Permanent=True
        )
        result = cognito.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "carol@example.com", "PASSWORD": PASSWORD},
        )["AuthenticationResult"]
        sub = next(
            a["Value"]
            for a in cognito.admin_get_user(UserPoolId=pool_id, Username="carol@example.com")[
                "UserAttributes"
            ]
            if a["Name"] == "sub"
        )
        yield {"pool_id": pool_id, "client_id": client_id, "sub": sub, **result}


@pytest.mark.parametrize(("token_use", "token_key"), [("id", "IdToken"), ("access", "AccessToken")])
def test_moto_token_allowed(
    moto_sign_in: dict[str, Any],
    jwks_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    token_use: str,
    token_key: str,
) -> None:
    """An ID or access token from moto's initiate_auth verifies against moto's JWKS."""
    jwks_server.body = _moto_public_jwks()
    monkeypatch.setenv("USER_POOL_ID", moto_sign_in["pool_id"])
    monkeypatch.setenv("APP_CLIENT_ID", moto_sign_in["client_id"])
    monkeypatch.setenv("TOKEN_USE", token_use)
    monkeypatch.setenv("JWKS_URL", jwks_server.url)
    authorizer.reset()
    try:
        event = {
            "methodArn": "arn:aws:execute-api:us-east-1:123456789012:api/prod/$connect",
            "queryStringParameters": {"idToken": moto_sign_in[token_key]},
        }
        answer = authorizer.handler(event, None)
    finally:
        authorizer.reset()
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    # With email usernames, moto (like Cognito) puts the sub in the username claims.
    context = answer["context"]
    assert {key: context[key] for key in ("userId", "username", "tokenUse", "groups")} == {
        "userId": moto_sign_in["sub"],
        "username": moto_sign_in["sub"],
        "tokenUse": token_use,
        "groups": "",
    }
    # moto, like Cognito, writes when the user signed in and when the token expires.
    assert context["authTime"] <= time.time() < context["expiresAt"]
