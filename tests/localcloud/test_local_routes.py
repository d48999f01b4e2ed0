"""End to end with a program that adds routes: a custom route shows up; failing handlers are 500s.

The program (`programs/custom_route/`) is the project's `__main__.py` plus routes whose functions
crash, hang past their 1-second timeout, answer through `@connections`, and one wired without
an invoke permission.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from wsauth.localcloud.testing import CloudUser, LocalCloud, start_local_cloud

pytestmark = pytest.mark.e2e

PROGRAM = __import__("pathlib").Path(__file__).parent / "programs" / "custom_route"


@pytest.fixture(scope="module")
def routed_cloud() -> Iterator[LocalCloud]:
    with start_local_cloud(program_dir=PROGRAM) as cloud:
        yield cloud


@pytest.fixture(scope="module")
def user(routed_cloud: LocalCloud) -> CloudUser:
    return routed_cloud.create_user()


async def _send_and_receive(websocket: ClientConnection, body: dict[str, Any]) -> Any:
    await websocket.send(json.dumps(body))
    return json.loads(await asyncio.wait_for(websocket.recv(), 30))


def test_custom_route_reaches_its_own_function(routed_cloud: LocalCloud, user: CloudUser) -> None:
    """A route added in the program is selected by `action`, with the authorizer's context."""

    async def scenario() -> Any:
        url = routed_cloud.websocket_url(routed_cloud.id_token(user))
        async with connect(url) as websocket:
            return await _send_and_receive(websocket, {"action": "whoami"})

    answer = asyncio.run(scenario())
    assert answer["routeKey"] == "whoami"
    assert answer["userId"] == user.sub
    assert answer["functionName"].startswith("test-whoami")


@pytest.mark.parametrize("action", ["crash", "hang", "unpermitted"])
def test_failing_handler_gives_internal_server_error_and_the_connection_stays(
    routed_cloud: LocalCloud, user: CloudUser, action: str
) -> None:
    """A handler that raises, outlives its timeout or may not be invoked answers 500; the
    connection still works."""

    async def scenario() -> tuple[Any, Any]:
        url = routed_cloud.websocket_url(routed_cloud.id_token(user))
        async with connect(url) as websocket:
            failure = await _send_and_receive(websocket, {"action": action})
            echo = await _send_and_receive(websocket, {"action": "echo-after-failure"})
            return failure, echo

    failure, echo = asyncio.run(scenario())
    assert failure["message"] == "Internal server error"
    assert failure["connectionId"] and failure["requestId"]
    assert echo == {"message": json.dumps({"action": "echo-after-failure"})}
    expected = {
        "crash": "RuntimeError: this handler always fails",
        "hang": "TimeoutError",
        "unpermitted": "no permission lets apigateway.amazonaws.com invoke",
    }[action]
    assert expected in routed_cloud.log_text()
