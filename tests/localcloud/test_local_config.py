"""End to end: the `local` stack's config (Pulumi.local.yaml) reaches the running stack.

`programs/protocol_token/` runs the project's `__main__.py` with `wsauth:tokenSource: protocol`:
the client offers `wsauth` and its token as subprotocols, and `$connect` chooses `wsauth`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from wsauth.localcloud.testing import LocalCloud, start_local_cloud

pytestmark = pytest.mark.e2e

PROGRAM = Path(__file__).parent / "programs" / "protocol_token"


@pytest.fixture(scope="module")
def protocol_cloud() -> Iterator[LocalCloud]:
    with start_local_cloud(program_dir=PROGRAM) as cloud:
        yield cloud


def test_token_in_subprotocol_header_connects_and_echoes(protocol_cloud: LocalCloud) -> None:
    """With tokenSource=protocol, the token travels in Sec-WebSocket-Protocol, not the URL."""
    token = protocol_cloud.id_token(protocol_cloud.create_user())

    async def scenario() -> tuple[str | None, object]:
        async with connect(
            protocol_cloud.websocket_url(None),
            subprotocols=[Subprotocol("wsauth"), Subprotocol(token)],
        ) as websocket:
            await websocket.send("over the header")
            return websocket.subprotocol, json.loads(await asyncio.wait_for(websocket.recv(), 30))

    subprotocol, echo = asyncio.run(scenario())
    assert subprotocol == "wsauth"
    assert echo == {"message": "over the header"}


def test_token_in_query_string_is_not_accepted(protocol_cloud: LocalCloud) -> None:
    """The identity source is the header: a token in the query string alone gets 401."""
    token = protocol_cloud.id_token(protocol_cloud.create_user())

    async def scenario() -> int:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(protocol_cloud.websocket_url(token)):
                pass
        return refused.value.response.status_code

    assert asyncio.run(scenario()) == 401
