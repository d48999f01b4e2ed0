"""End to end with shortened limits: idle and maximum-duration timeouts close connections."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from wsauth.localcloud.testing import LocalCloud, eventually, start_local_cloud

pytestmark = pytest.mark.e2e

IDLE_SECONDS = 2.0
MAX_SECONDS = 5.0


@pytest.fixture(scope="module")
def short_cloud() -> Iterator[LocalCloud]:
    limits = ["--idle-timeout", str(IDLE_SECONDS), "--max-connection-seconds", str(MAX_SECONDS)]
    with start_local_cloud(limits) as cloud:
        yield cloud


def test_idle_connection_is_closed_and_forgotten(short_cloud: LocalCloud) -> None:
    """A connection with no traffic is closed with 1001 and `$disconnect` removes its item."""
    user = short_cloud.create_user()

    async def scenario() -> int | None:
        async with connect(short_cloud.websocket_url(short_cloud.id_token(user))) as websocket:
            eventually(lambda: short_cloud.connections_of(user))
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(websocket.recv(), MAX_SECONDS * 5)
            return closed.value.rcvd.code if closed.value.rcvd else None

    assert asyncio.run(scenario()) == 1001
    eventually(lambda: short_cloud.connections_of(user) == [])


def test_busy_connection_is_closed_at_the_maximum_duration(short_cloud: LocalCloud) -> None:
    """A connection that keeps talking is still closed (1001) when its maximum duration ends."""
    user = short_cloud.create_user()

    async def scenario() -> tuple[int | None, float]:
        token = short_cloud.id_token(user)
        opened = time.monotonic()
        async with connect(short_cloud.websocket_url(token)) as websocket:
            try:
                while time.monotonic() - opened < MAX_SECONDS * 6:
                    # Traffic well within the idle timeout keeps the idle timer away.
                    await websocket.send(json.dumps({"alive": True}))
                    await asyncio.wait_for(websocket.recv(), MAX_SECONDS * 5)
                    await asyncio.sleep(IDLE_SECONDS / 4)
            except ConnectionClosed as closed:
                return (closed.rcvd.code if closed.rcvd else None), time.monotonic() - opened
        raise AssertionError(f"still open after {MAX_SECONDS * 6} s")

    code, lived = asyncio.run(scenario())
    assert code == 1001
    # Only the maximum-duration timer can close a busy connection this late (a lower bound,
    # so a slow machine cannot make it fail).
    assert lived >= MAX_SECONDS
    eventually(lambda: short_cloud.connections_of(user) == [])
