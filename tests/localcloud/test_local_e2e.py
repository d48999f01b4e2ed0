"""End to end: `wsauth local` in a subprocess, a real WebSocket client, real Cognito tokens.

Each test drives the project's own program (the session's `local_cloud`) through the network,
as a user would: no mock of our code anywhere.
"""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from wsauth.localcloud.testing import CloudUser, LocalCloud, eventually

pytestmark = pytest.mark.e2e


def _forge(token: str) -> str:
    """The same claims with a signature that does not verify."""
    header, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[0] ^= 0xFF
    return ".".join([header, payload, base64.urlsafe_b64encode(raw).rstrip(b"=").decode()])


async def _echo(websocket: ClientConnection, body: str) -> Any:
    await websocket.send(body)
    return json.loads(await asyncio.wait_for(websocket.recv(), 30))


@pytest.fixture
def user(local_cloud: LocalCloud) -> CloudUser:
    return local_cloud.create_user()


def _only_connection_id(local_cloud: LocalCloud, user: CloudUser) -> str:
    items = eventually(lambda: local_cloud.connections_of(user))
    assert len(items) == 1
    connection_id: str = items[0]["connectionId"]["S"]
    return connection_id


def test_jwks_is_served_unsigned_at_the_aws_endpoint(local_cloud: LocalCloud) -> None:
    """The authorizer's default local JWKS URL answers a plain GET with the pool's RSA key."""
    url = f"{local_cloud.outputs['awsEndpoint']}/{local_cloud.outputs['userPoolId']}"
    with urllib.request.urlopen(f"{url}/.well-known/jwks.json", timeout=10) as response:
        keys = json.load(response)["keys"]
    assert [(key["kty"], key["alg"], key["kid"]) for key in keys] == [("RSA", "RS256", "dummy")]


def test_sign_in_connect_and_echo(local_cloud: LocalCloud, user: CloudUser) -> None:
    """A signed-in user connects with the ID token and gets the message echoed back."""

    async def scenario() -> None:
        url = local_cloud.websocket_url(local_cloud.id_token(user))
        async with connect(url) as websocket:
            body = json.dumps({"action": "anything", "text": "héllo"})
            assert await _echo(websocket, body) == {"message": body}

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("make_url", "status"),
    [
        pytest.param(lambda cloud, token: cloud.websocket_url(None), 401, id="no token"),
        pytest.param(
            lambda cloud, token: cloud.websocket_url(_forge(token)), 403, id="forged signature"
        ),
        pytest.param(lambda cloud, token: cloud.websocket_url("not-a-jwt"), 403, id="garbage"),
    ],
)
def test_handshake_refused(local_cloud: LocalCloud, user: CloudUser, make_url: Any, status: int):
    """Without a token API Gateway answers 401; with a bad one the authorizer's Deny is a 403."""
    url = make_url(local_cloud, local_cloud.id_token(user))

    async def scenario() -> None:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url):
                pass
        assert refused.value.response.status_code == status

    asyncio.run(scenario())
    assert local_cloud.connections_of(user) == []


def test_table_follows_connect_and_clean_close(local_cloud: LocalCloud, user: CloudUser) -> None:
    """`$connect` stores the user's connection; a clean close's `$disconnect` deletes it."""

    async def scenario() -> None:
        async with connect(local_cloud.websocket_url(local_cloud.id_token(user))):
            item = eventually(lambda: local_cloud.connections_of(user))[0]
            assert item["userId"]["S"] == user.sub

    asyncio.run(scenario())
    eventually(lambda: local_cloud.connections_of(user) == [])


def test_table_follows_an_abrupt_drop(local_cloud: LocalCloud, user: CloudUser) -> None:
    """A TCP connection dropped without a close frame still runs `$disconnect`."""

    async def scenario() -> None:
        websocket = await connect(local_cloud.websocket_url(local_cloud.id_token(user)))
        _only_connection_id(local_cloud, user)
        websocket.transport.abort()

    asyncio.run(scenario())
    eventually(lambda: local_cloud.connections_of(user) == [])


def test_connections_api_post_get_delete_gone(local_cloud: LocalCloud, user: CloudUser) -> None:
    """boto3 posts to, describes and deletes a connection; then the id answers 410 Gone."""
    management = local_cloud.client("apigatewaymanagementapi")

    async def scenario() -> None:
        async with connect(local_cloud.websocket_url(local_cloud.id_token(user))) as websocket:
            connection_id = _only_connection_id(local_cloud, user)
            await asyncio.to_thread(
                management.post_to_connection, ConnectionId=connection_id, Data=b"pushed"
            )
            assert await asyncio.wait_for(websocket.recv(), 30) == "pushed"
            described = await asyncio.to_thread(
                management.get_connection, ConnectionId=connection_id
            )
            assert "ConnectedAt" in described and "LastActiveAt" in described
            await asyncio.to_thread(management.delete_connection, ConnectionId=connection_id)
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(websocket.recv(), 30)
        eventually(lambda: local_cloud.connections_of(user) == [])
        with pytest.raises(ClientError) as gone:
            await asyncio.to_thread(
                management.post_to_connection, ConnectionId=connection_id, Data=b"late"
            )
        assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410

    asyncio.run(scenario())


def test_connections_api_verifies_the_local_key_signature(
    local_cloud: LocalCloud, user: CloudUser
) -> None:
    """The local cloud's own key (what its workers sign with) is verified: the right key
    with a wrong secret is refused with AWS's 403, and the client receives nothing."""
    import boto3

    forger = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=local_cloud.outputs["managementEndpoint"],
        region_name=local_cloud.outputs["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="not-the-secret",  # noqa: S106 - the point of the test
    )

    async def scenario() -> None:
        async with connect(local_cloud.websocket_url(local_cloud.id_token(user))) as websocket:
            connection_id = _only_connection_id(local_cloud, user)
            with pytest.raises(ClientError) as refused:
                await asyncio.to_thread(
                    forger.post_to_connection, ConnectionId=connection_id, Data=b"forged"
                )
            assert refused.value.response["Error"]["Code"] == "InvalidSignatureException"
            await websocket.send("still here")  # the echo, signed by the worker, gets through
            assert json.loads(await asyncio.wait_for(websocket.recv(), 30)) == {
                "message": "still here"
            }

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(b"x" * (32 * 1024 + 1), id="frame over 32 KB"),
        pytest.param([b"x" * (16 * 1024)] * 9, id="message over 128 KB in 16 KB frames"),
    ],
)
def test_oversize_closes_with_1009(
    local_cloud: LocalCloud, user: CloudUser, message: bytes | list[bytes]
) -> None:
    """A frame over 32 KB or a message over 128 KB closes the connection with 1009."""

    async def scenario() -> None:
        url = local_cloud.websocket_url(local_cloud.id_token(user))
        async with connect(url, max_size=None) as websocket:
            await websocket.send(message)
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(websocket.recv(), 30)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009

    asyncio.run(scenario())


def test_many_concurrent_clients_each_get_only_their_own_messages(
    local_cloud: LocalCloud,
) -> None:
    """Forty connections of eight users talk at once; every echo reaches its own sender."""
    users = [local_cloud.create_user() for _ in range(8)]
    tokens = [local_cloud.id_token(user) for user in users]

    async def client(index: int) -> list[Any]:
        url = local_cloud.websocket_url(tokens[index % len(tokens)])
        async with connect(url) as websocket:
            received = []
            for sequence in range(5):
                body = json.dumps({"client": index, "sequence": sequence})
                received.append(await _echo(websocket, body))
            return received

    async def scenario() -> list[list[Any]]:
        return await asyncio.gather(*(client(index) for index in range(40)))

    for index, received in enumerate(asyncio.run(scenario())):
        expected = [{"message": json.dumps({"client": index, "sequence": n})} for n in range(5)]
        assert received == expected
