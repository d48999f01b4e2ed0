"""`wsauth connect` keeps its session alive in-band, against a fake server on port 0.

The fake server speaks the session protocol of DESIGN.md §7 (`refreshToken` in;
`tokenRefreshed`, `tokenRejected`, `sessionExpired`, `signedOut` out), so these tests need no
Cognito and no local cloud: the command's `converse` gets a real socket, short-lived tokens and
a `renew` that stands in for Cognito. The Cognito half (`refresh_tokens`) is checked against moto.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from wsauth.cli import CommandError
from wsauth.client import RefreshRefused, Tokens, refresh_tokens, sign_in
from wsauth.client_session import clock_time, refresh_delay
from wsauth.commands.connect import converse
from wsauth.outputs import StackOutputs, parse_outputs

from .samples import STACK_OUTPUTS

ServerScript = Callable[[ServerConnection], Awaitable[None]]


def jwt(**claims: Any) -> str:
    """An unsigned JWT with these claims (the client reads claims, it never verifies)."""

    def segment(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{segment({'alg': 'RS256', 'kid': 'k'})}.{segment(claims)}.c2lnbmF0dXJl"


def tokens_expiring_in(seconds: float, sub: str = "user-1") -> Tokens:
    now = int(time.time())
    token = jwt(sub=sub, iat=now, exp=now + seconds, token_use="id")
    return Tokens(id_token=token, access_token="access", refresh_token="refresh")


async def run_converse(
    script: ServerScript,
    tokens: Tokens,
    renew: Callable[[Tokens], Tokens],
    lines: list[str | None] | None = None,
) -> int:
    """Serve `script` on 127.0.0.1 port 0 and run the command's conversation against it."""
    async with serve(script, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        socket = await connect(f"ws://127.0.0.1:{port}/prod")
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        for line in lines or []:
            queue.put_nowait(line)
        return await asyncio.wait_for(converse(socket, tokens, renew, queue), 30)


@pytest.mark.timeout(60)
def test_refresh_token_is_sent_before_expiry_and_its_answer_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Before the token expires, a fresh token goes out as `refreshToken`; the answer is words."""
    tokens = tokens_expiring_in(4)
    expires_at = unverified_exp(tokens.id_token)
    fresh = tokens_expiring_in(3600)
    renewed_from: list[Tokens] = []
    received: list[tuple[float, Any]] = []
    new_expiry = int(time.time()) + 3600

    def renew(current: Tokens) -> Tokens:
        renewed_from.append(current)
        return fresh

    async def script(websocket: ServerConnection) -> None:
        request = json.loads(await websocket.recv())
        received.append((time.time(), request))
        await websocket.send(json.dumps({"type": "tokenRefreshed", "expiresAt": new_expiry}))
        await websocket.send(json.dumps({"message": "still here"}))
        await websocket.close()

    with pytest.raises(CommandError, match="the server closed the connection"):
        asyncio.run(run_converse(script, tokens, renew))

    [(sent_at, request)] = received
    assert request == {"action": "refreshToken", "token": fresh.id_token}
    assert sent_at < expires_at
    assert renewed_from == [tokens]
    out, err = capsys.readouterr()
    assert out.splitlines() == ['{"message": "still here"}']
    assert f"session refreshed until {clock_time(new_expiry)}" in err.splitlines()
    assert fresh.id_token not in out + err


def unverified_exp(token: str) -> float:
    payload = token.split(".")[1]
    return float(json.loads(base64.urlsafe_b64decode(payload + "==="))["exp"])


@pytest.mark.timeout(60)
def test_session_expired_ends_the_command_in_words(capsys: pytest.CaptureFixture[str]) -> None:
    """A refused refresh is said in words; `sessionExpired` ends the command with one line."""

    async def script(websocket: ServerConnection) -> None:
        await websocket.send(json.dumps({"type": "tokenRejected", "reason": "other_user"}))
        await websocket.send(json.dumps({"type": "sessionExpired"}))
        await websocket.close(1008, "session expired")

    def renew(current: Tokens) -> Tokens:
        raise AssertionError("no refresh is due within the test")

    with pytest.raises(CommandError) as raised:
        asyncio.run(run_converse(script, tokens_expiring_in(3600), renew))

    assert str(raised.value) == "session expired: the server closed the connection"
    out, err = capsys.readouterr()
    assert out == ""  # control messages are not data
    assert err.splitlines() == [
        "token refresh refused: the new token belongs to another user (other_user)"
    ]


@pytest.mark.timeout(60)
def test_signed_out_ends_the_command_in_words(capsys: pytest.CaptureFixture[str]) -> None:
    """`signedOut` (a sign-out everywhere) ends the command with one line, nothing on stdout."""

    async def script(websocket: ServerConnection) -> None:
        await websocket.send(json.dumps({"message": "before"}))
        await websocket.send(json.dumps({"type": "signedOut"}))
        await websocket.close()

    def renew(current: Tokens) -> Tokens:
        raise AssertionError("no refresh is due within the test")

    with pytest.raises(CommandError) as raised:
        asyncio.run(run_converse(script, tokens_expiring_in(3600), renew))

    assert str(raised.value) == "signed out everywhere: the server closed the connection"
    out, err = capsys.readouterr()
    assert out.splitlines() == ['{"message": "before"}']  # the control message is not data
    assert err == ""


@pytest.mark.timeout(60)
def test_revoked_session_refresh_is_said_in_words(capsys: pytest.CaptureFixture[str]) -> None:
    """A refresh refused because the user signed out everywhere says so, with its code."""

    async def script(websocket: ServerConnection) -> None:
        await websocket.send(json.dumps({"type": "tokenRejected", "reason": "session_revoked"}))
        await websocket.close()

    def renew(current: Tokens) -> Tokens:
        raise AssertionError("no refresh is due within the test")

    with pytest.raises(CommandError, match="the server closed the connection"):
        asyncio.run(run_converse(script, tokens_expiring_in(3600), renew))
    assert capsys.readouterr().err.splitlines() == [
        "token refresh refused: the user signed out everywhere, which ended this session "
        "(session_revoked)"
    ]


@pytest.mark.timeout(60)
def test_refused_refresh_token_stops_refreshing(capsys: pytest.CaptureFixture[str]) -> None:
    """Cognito refusing the refresh token: said once, with when the connection ends."""
    tokens = tokens_expiring_in(4)
    expires_at = unverified_exp(tokens.id_token)
    attempts: list[Tokens] = []

    def renew(current: Tokens) -> Tokens:
        attempts.append(current)
        raise RefreshRefused("Cognito refused the refresh token (expired or revoked)")

    async def script(websocket: ServerConnection) -> None:
        # As the real server does: at the token's expiry, say so and close.
        await asyncio.sleep(max(0.0, expires_at - time.time()))
        await websocket.send(json.dumps({"type": "sessionExpired"}))
        await websocket.close(1008, "session expired")

    with pytest.raises(CommandError, match="^session expired: the server closed the connection$"):
        asyncio.run(run_converse(script, tokens, renew))
    assert attempts == [tokens]
    assert capsys.readouterr().err.splitlines() == [
        "token refresh failed: Cognito refused the refresh token (expired or revoked); "
        f"the connection ends at {clock_time(expires_at)}"
    ]


@pytest.mark.timeout(60)
def test_echoed_refresh_request_is_not_shown(capsys: pytest.CaptureFixture[str]) -> None:
    """A stack without in-band refresh echoes the request: the token never reaches the screen."""
    tokens = tokens_expiring_in(2)
    fresh = tokens_expiring_in(3600)

    async def script(websocket: ServerConnection) -> None:
        request = await websocket.recv()
        await websocket.send(json.dumps({"message": request}))  # what `$default` does
        await websocket.send(json.dumps({"message": "after"}))
        await websocket.close()

    with pytest.raises(CommandError, match="the server closed the connection"):
        asyncio.run(run_converse(script, tokens, lambda current: fresh))
    out, err = capsys.readouterr()
    assert out.splitlines() == ['{"message": "after"}']
    assert "does not refresh sessions in-band" in err
    assert fresh.id_token not in out + err


@pytest.mark.timeout(60)
def test_end_of_input_closes_and_exits_0() -> None:
    """Lines are sent; end of input closes the connection and the command exits 0."""
    received: list[str] = []

    async def script(websocket: ServerConnection) -> None:
        async for message in websocket:
            received.append(str(message))

    def renew(current: Tokens) -> Tokens:
        raise AssertionError("no refresh is due within the test")

    result = asyncio.run(run_converse(script, tokens_expiring_in(3600), renew, ["hi", None]))
    assert result == 0
    assert received == ["hi"]


@pytest.mark.parametrize(
    ("lifetime", "elapsed", "expected"),
    [
        (3600, 0, 3300),  # five minutes ahead
        (3600, 3000, 300),
        (8, 0, 6),  # a quarter of a short lifetime
        (3600, 4000, 0),  # already due
    ],
)
def test_refresh_delay_counts_from_the_tokens_lifetime(
    lifetime: int, elapsed: float, expected: float
) -> None:
    """Five minutes before expiry, or a quarter of the lifetime if shorter; never negative."""
    # GIVEN a token issued an hour ago by a clock that is off: only exp - iat matters.
    issued = int(time.time()) - 3600
    token = jwt(iat=issued, exp=issued + lifetime)
    assert refresh_delay(token, elapsed=elapsed) == pytest.approx(expected)


@pytest.fixture
def cognito_user(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[StackOutputs, str, str]]:
    """An in-process moto Cognito with an app client like the stack's and one user."""
    from moto import mock_aws

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        import boto3

        cognito = boto3.client("cognito-idp", region_name="us-east-1")
        pool_id = cognito.create_user_pool(PoolName="users")["UserPool"]["Id"]
        client_id = cognito.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName="web",
            ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        )["UserPoolClient"]["ClientId"]
        username, password = "ada@example.com", "Some-password-1!"
        cognito.admin_create_user(UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS")
        cognito.admin_set_user_password(
            UserPoolId=pool_id, Username=username, Password=password, Permanent=True
        )
        outputs = parse_outputs(
            {
                **STACK_OUTPUTS,
                "region": "us-east-1",
                "userPoolId": pool_id,
                "userPoolWebClientId": client_id,
            },
            "test",
        )
        yield outputs, username, password


def test_refresh_tokens_gives_a_new_id_token_and_keeps_the_refresh_token(
    cognito_user: tuple[StackOutputs, str, str],
) -> None:
    """REFRESH_TOKEN_AUTH: a new ID token for the same user; the refresh token carries over."""
    outputs, username, password = cognito_user
    tokens = sign_in(outputs, username, password)
    fresh = refresh_tokens(outputs, tokens)
    assert fresh.id_token != tokens.id_token
    assert fresh.claims["sub"] == tokens.claims["sub"]
    assert fresh.refresh_token == tokens.refresh_token


@pytest.mark.parametrize("refresh_token", ["not-a-refresh-token", None])
def test_refused_or_missing_refresh_token_is_refresh_refused(
    cognito_user: tuple[StackOutputs, str, str], refresh_token: str | None
) -> None:
    """A refresh token Cognito does not know, or none at all: RefreshRefused, in words."""
    outputs, _, _ = cognito_user
    with pytest.raises(RefreshRefused, match="refresh token"):
        refresh_tokens(outputs, Tokens("id", "access", refresh_token))
