"""Sessions end to end: `wsauth local` runs the program's expiry checks, refresh and sweeper.

Tokens are the embedded pool's own, re-signed with its key with the `exp` a test needs
(`wsauth.localcloud.tokens.reissued`), so sessions expire within seconds; the sweeper runs
every half second (`--sweep-interval`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.support import next_json, until_closed
from wsauth import send_to_user
from wsauth.localcloud.testing import (
    REPO_ROOT,
    CloudUser,
    LocalCloud,
    eventually,
    start_local_cloud,
)
from wsauth.localcloud.tokens import reissued

pytestmark = pytest.mark.e2e

OFF_PROGRAM = REPO_ROOT / "bench" / "programs" / "sessions_off"


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    """A local cloud whose sweeper runs every half second."""
    with start_local_cloud(["--no-web"], sweep_interval=0.5) as started:
        yield started


@pytest.fixture(scope="module")
def unswept_cloud() -> Iterator[LocalCloud]:
    """A local cloud whose sweeper waits an hour, so only the senders meet expired sessions."""
    with start_local_cloud(["--no-web"], sweep_interval=3600) as started:
        yield started


@pytest.fixture
def user(cloud: LocalCloud) -> CloudUser:
    return cloud.create_user()


def _short_token(cloud: LocalCloud, user: CloudUser, seconds: float) -> tuple[str, int]:
    expires_at = int(time.time() + seconds)
    return reissued(cloud.id_token(user), exp=expires_at), expires_at


def _wait_past(epoch_seconds: int) -> None:
    # What is awaited is the clock itself: the session ends at a time, not on an event.
    time.sleep(max(0.0, epoch_seconds - time.time()) + 1.05)


def _stored_expiry(cloud: LocalCloud, user: CloudUser) -> int:
    items = eventually(lambda: cloud.connections_of(user))
    return int(items[0]["expiresAt"]["N"])


def test_a_message_after_expiry_ends_the_session(cloud: LocalCloud, user: CloudUser) -> None:
    """Past `exp`: `sessionExpired`, the server closes, `$disconnect` removes the item."""
    token, expires_at = _short_token(cloud, user, 2)

    async def scenario() -> None:
        async with connect(cloud.websocket_url(token)) as websocket:
            assert await _next_echo(websocket, "before") == {"message": "before"}
            assert _stored_expiry(cloud, user) == expires_at
            _wait_past(expires_at)
            await websocket.send("after")
            assert await next_json(websocket) == {"type": "sessionExpired"}
            await until_closed(websocket)

    asyncio.run(scenario())
    eventually(lambda: not cloud.connections_of(user))


async def _next_echo(websocket: ClientConnection, body: str) -> Any:
    await websocket.send(body)
    return await next_json(websocket)


def test_an_idle_expired_connection_is_swept(cloud: LocalCloud, user: CloudUser) -> None:
    """A connection that sends nothing is told and closed by the scheduled sweeper."""
    token, _ = _short_token(cloud, user, 2)

    async def scenario() -> None:
        async with connect(cloud.websocket_url(token)) as websocket:
            assert await next_json(websocket) == {"type": "sessionExpired"}
            await until_closed(websocket)

    asyncio.run(scenario())
    eventually(lambda: not cloud.connections_of(user))
    assert "sweeper" in cloud.log_text()


def test_a_push_to_an_expired_connection_is_not_delivered(unswept_cloud: LocalCloud) -> None:
    """`send_to_user` reports the expired connection and delivers only to the live one."""
    cloud = unswept_cloud
    user = cloud.create_user()
    expired_token, expires_at = _short_token(cloud, user, 2)
    live_token = cloud.id_token(user)

    async def scenario() -> dict[str, Any]:
        async with (
            connect(cloud.websocket_url(expired_token)) as expired,
            connect(cloud.websocket_url(live_token)) as live,
        ):
            eventually(lambda: len(cloud.connections_of(user)) == 2)
            _wait_past(expires_at)
            report = await asyncio.to_thread(
                send_to_user,
                user.sub,
                {"push": 1},
                table_name=cloud.outputs["connectionTableName"],
                endpoint_url=cloud.outputs["managementEndpoint"],
                dynamodb=cloud.client("dynamodb"),
                management=cloud.client("apigatewaymanagementapi"),
            )
            assert await next_json(live) == {"push": 1}
            first = await next_json(expired)
            await until_closed(expired)
            return {"report": report, "expired_got": first}

    outcome = asyncio.run(scenario())
    assert len(outcome["report"].expired) == 1 and len(outcome["report"].delivered) == 1
    assert outcome["expired_got"] == {"type": "sessionExpired"}


def test_a_refresh_keeps_the_connection_past_its_first_token(
    cloud: LocalCloud, user: CloudUser
) -> None:
    """`refreshToken` with a later token of the same user moves the end; messages flow on."""
    token, expires_at = _short_token(cloud, user, 3)
    fresh = cloud.id_token(user)
    fresh_exp = json.loads(_payload(fresh))["exp"]

    async def scenario() -> None:
        async with connect(cloud.websocket_url(token)) as websocket:
            await websocket.send(json.dumps({"action": "refreshToken", "token": fresh}))
            assert await next_json(websocket) == {"type": "tokenRefreshed", "expiresAt": fresh_exp}
            _wait_past(expires_at)
            assert await _next_echo(websocket, "still here") == {"message": "still here"}

    asyncio.run(scenario())


def _payload(token: str) -> str:
    import base64

    segment = token.split(".")[1]
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)).decode()


def _forged(token: str) -> str:
    header, payload, signature = token.split(".")
    return f"{header}.{payload}.{signature[::-1]}"


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("other-user", "other_user"),
        ("expired", "expired"),
        ("forged", "bad_signature"),
        ("malformed", "malformed"),
    ],
)
def test_a_bad_refresh_changes_nothing(
    cloud: LocalCloud, user: CloudUser, case: str, reason: str
) -> None:
    """Another user's, an expired, a forged or a malformed token: `tokenRejected`, and the
    stored expiry stays where it was."""
    token, expires_at = _short_token(cloud, user, 600)
    bad = {
        "other-user": lambda: cloud.id_token(cloud.create_user()),
        "expired": lambda: reissued(cloud.id_token(user), exp=int(time.time()) - 60),
        "forged": lambda: _forged(cloud.id_token(user)),
        "malformed": lambda: "not-a-token",
    }[case]()

    async def scenario() -> None:
        async with connect(cloud.websocket_url(token)) as websocket:
            await websocket.send(json.dumps({"action": "refreshToken", "token": bad}))
            answer = await next_json(websocket)
            assert answer["type"] == "tokenRejected"
            if case != "forged":  # which check a reversed signature trips depends on its bytes
                assert answer["reason"] == reason
            assert _stored_expiry(cloud, user) == expires_at

    asyncio.run(scenario())


def test_off_keeps_connections_past_their_token() -> None:
    """`sessionExpiry: off`: an expired token's connection echoes on, and a refresh message is
    just another message."""
    with start_local_cloud(["--no-web"], program_dir=OFF_PROGRAM, sweep_interval=0.5) as off:
        user = off.create_user()
        expires_at = int(time.time() + 2)
        token = reissued(off.id_token(user), exp=expires_at)

        async def scenario() -> None:
            async with connect(off.websocket_url(token)) as websocket:
                _wait_past(expires_at)
                assert await _next_echo(websocket, "late") == {"message": "late"}
                refresh = json.dumps({"action": "refreshToken", "token": "x"})
                assert await _next_echo(websocket, refresh) == {"message": refresh}
                assert "expiresAt" not in eventually(lambda: off.connections_of(user))[0]

        asyncio.run(scenario())
