"""Sign out everywhere, revoked sessions and the connection limit, end to end in `wsauth local`.

Real users and tokens of the embedded pool. A session that "began earlier" is a real token of
the user re-signed with the pool's key and an earlier `auth_time` (`tokens.reissued`): Cognito
writes `auth_time` in whole seconds, and a sign-in in the very second of a sign-out counts as
after it, by design.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.support import next_json, until_closed
from wsauth import sign_out_everywhere
from wsauth.localcloud.testing import (
    REPO_ROOT,
    CloudUser,
    LocalCloud,
    eventually,
    start_local_cloud,
)
from wsauth.localcloud.tokens import reissued

pytestmark = pytest.mark.e2e

LIMIT_PROGRAM = REPO_ROOT / "tests" / "localcloud" / "programs" / "limit5"


def _earlier_session(cloud: LocalCloud, user: CloudUser, seconds: int = 30) -> str:
    """A valid ID token of `user` from a sign-in `seconds` ago."""
    return reissued(cloud.id_token(user), auth_time=int(time.time()) - seconds)


def _sign_out_from_python(cloud: LocalCloud, user: CloudUser) -> Any:
    return sign_out_everywhere(
        user.sub,
        user_pool_id=cloud.outputs["userPoolId"],
        table_name=cloud.outputs["connectionTableName"],
        cognito=cloud.client("cognito-idp"),
        dynamodb=cloud.client("dynamodb"),
        management=cloud.client("apigatewaymanagementapi"),
    )


@pytest.mark.parametrize("where", ["python", "socket"])
def test_sign_out_everywhere_closes_every_connection_of_the_user(
    local_cloud: LocalCloud, where: str
) -> None:
    """Each of the user's connections gets `signedOut` and is closed, within seconds; another
    user's connection stays open and keeps echoing."""
    alice, bob = local_cloud.create_user(), local_cloud.create_user()

    async def scenario() -> None:
        async with (
            connect(local_cloud.websocket_url(_earlier_session(local_cloud, alice))) as first,
            connect(local_cloud.websocket_url(_earlier_session(local_cloud, alice))) as second,
            connect(local_cloud.websocket_url(local_cloud.id_token(bob))) as other,
        ):
            eventually(lambda: len(local_cloud.connections_of(alice)) == 2)
            if where == "python":
                report = await asyncio.to_thread(_sign_out_from_python, local_cloud, alice)
                assert len(report.closed) == 2
            else:
                await first.send(json.dumps({"action": "signOutEverywhere"}))
            for websocket in (first, second):
                assert await next_json(websocket) == {"type": "signedOut"}
                await until_closed(websocket)
            await other.send("still here")
            assert await next_json(other) == {"message": "still here"}

    asyncio.run(scenario())
    eventually(lambda: not local_cloud.connections_of(alice))


def test_old_tokens_stay_out_and_a_new_sign_in_works_at_once(local_cloud: LocalCloud) -> None:
    """After a sign-out everywhere, a token from before it opens no connection and refreshes
    nothing, the old refresh token is revoked, and a new sign-in connects at once."""
    user = local_cloud.create_user()
    old_session = local_cloud.sign_in(user)
    old_token = reissued(old_session["IdToken"], auth_time=int(time.time()) - 30)
    _sign_out_from_python(local_cloud, user)

    async def scenario() -> None:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(local_cloud.websocket_url(old_token)):
                pass
        assert refused.value.response.status_code == 403
        async with connect(local_cloud.websocket_url(local_cloud.id_token(user))) as fresh:
            await fresh.send(json.dumps({"action": "refreshToken", "token": old_token}))
            assert await next_json(fresh) == {"type": "tokenRejected", "reason": "session_revoked"}
            await fresh.send("hello")
            assert await next_json(fresh) == {"message": "hello"}

    asyncio.run(scenario())
    with pytest.raises(ClientError, match="NotAuthorized"):
        local_cloud.client("cognito-idp").initiate_auth(
            ClientId=local_cloud.outputs["userPoolWebClientId"],
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": old_session["RefreshToken"]},
        )


# --- connections per user ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited() -> Iterator[LocalCloud]:
    """The project's stack with `maxConnectionsPerUser: 5`."""
    with start_local_cloud(["--no-web"], program_dir=LIMIT_PROGRAM) as cloud:
        yield cloud


async def _try_connect(url: str) -> ClientConnection | int:
    try:
        return await connect(url)
    except InvalidStatus as refused:
        return refused.response.status_code


def test_the_limit_holds_under_simultaneous_handshakes(limited: LocalCloud) -> None:
    """20 handshakes at once by one user with a limit of 5 leave exactly 5 open; the rest get
    403, and the reason is in the log."""
    user = limited.create_user()
    url = limited.websocket_url(limited.id_token(user))

    async def scenario() -> list[ClientConnection | int]:
        results = await asyncio.gather(*(_try_connect(url) for _ in range(20)))
        for result in results:
            if not isinstance(result, int):
                await result.close()
        return list(results)

    results = asyncio.run(scenario())

    assert sum(not isinstance(result, int) for result in results) == 5
    assert sorted(result for result in results if isinstance(result, int)) == [403] * 15
    assert "connection_limit" in limited.log_text()


def test_a_limit_left_full_by_lost_disconnects_heals(limited: LocalCloud) -> None:
    """Connections whose `$disconnect` never ran (stored, counted, unknown to the gateway, older
    than any handshake) do not lock the user out: the next handshake frees them."""
    user = limited.create_user()
    dynamodb = limited.client("dynamodb")
    table = limited.outputs["connectionTableName"]
    an_hour_ago_ms = str(int((time.time() - 3600) * 1000))
    for index in range(5):
        dynamodb.put_item(
            TableName=table,
            Item={
                "connectionId": {"S": f"lost{index}AAAAAAAAA="},
                "userId": {"S": user.sub},
                "username": {"S": user.sub},
                "connectedAt": {"N": an_hour_ago_ms},
                "removedAt": {"N": str(int(time.time()) + 3600)},
                "counted": {"BOOL": True},
            },
        )
    dynamodb.put_item(
        TableName=table,
        Item={"connectionId": {"S": f"user#{user.sub}"}, "openConnections": {"N": "5"}},
    )

    async def scenario() -> None:
        async with connect(limited.websocket_url(limited.id_token(user))) as websocket:
            await websocket.send("in")
            assert await next_json(websocket) == {"message": "in"}

    asyncio.run(scenario())
    eventually(lambda: not limited.connections_of(user))
    assert "connection_count_healed" in limited.log_text()
