"""A program with two WebSocket APIs (`examples/two-apis`) runs locally as it deploys.

Each API gets a gateway of its own, the program's outputs point at them, each API's functions
post to their own API's `@connections`, and a connection id of one API is unknown to the other.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from wsauth.localcloud.runner import api_ports, localize
from wsauth.localcloud.testing import REPO_ROOT, LocalCloud, eventually, start_local_cloud

pytestmark = pytest.mark.e2e

PROGRAM = REPO_ROOT / "examples" / "two-apis"


@pytest.fixture(scope="module")
def two_apis() -> Iterator[LocalCloud]:
    with start_local_cloud(program_dir=PROGRAM) as cloud:
        yield cloud


def _tables(cloud: LocalCloud) -> dict[str, str]:
    """Each API's connection table (`chat-connections-…`, `alerts-connections-…`)."""
    names = cloud.client("dynamodb").list_tables()["TableNames"]
    return {api: next(n for n in names if n.startswith(f"{api}-")) for api in ("chat", "alerts")}


def _connection_ids(cloud: LocalCloud, table: str) -> list[str]:
    # Connections only: each user's own item (sign-out record, count) has no `userId`.
    items = cloud.client("dynamodb").scan(
        TableName=table, FilterExpression="attribute_exists(userId)"
    )["Items"]
    return [item["connectionId"]["S"] for item in items]


def test_each_api_has_its_own_local_endpoint(two_apis: LocalCloud) -> None:
    """The program's own outputs, derived from each API's endpoint, point at local gateways."""
    chat = urlsplit(two_apis.outputs["chatEndpoint"])
    alerts = urlsplit(two_apis.outputs["alertsEndpoint"])
    assert (chat.scheme, chat.path) == ("ws", "/prod")
    assert (alerts.scheme, alerts.path) == ("ws", "/live")
    assert chat.port != alerts.port
    assert "webSocketEndpoint" not in two_apis.outputs  # no single API to name so
    assert "web page not served" in two_apis.log_text()


def test_both_apis_authorize_echo_and_keep_their_own_connections(two_apis: LocalCloud) -> None:
    """chat takes an ID token in the query string, alerts an access token in the subprotocol
    header; each echoes through its own `@connections`, and records only its own clients."""
    user = two_apis.create_user()
    tokens = two_apis.sign_in(user)
    tables = _tables(two_apis)

    async def scenario() -> dict[str, Any]:
        chat_url = f"{two_apis.outputs['chatEndpoint']}?idToken={tokens['IdToken']}"
        async with (
            connect(chat_url) as chat,
            connect(
                two_apis.outputs["alertsEndpoint"],
                subprotocols=[Subprotocol("wsauth"), Subprotocol(tokens["AccessToken"])],
            ) as alerts,
        ):
            assert alerts.subprotocol == "wsauth"
            await chat.send(json.dumps({"action": "sendmessage", "text": "to chat"}))
            await alerts.send("to alerts")
            seen = {
                "chat": json.loads(await asyncio.wait_for(chat.recv(), 30)),
                "alerts": json.loads(await asyncio.wait_for(alerts.recv(), 30)),
                "chat_ids": _connection_ids(two_apis, tables["chat"]),
                "alerts_ids": _connection_ids(two_apis, tables["alerts"]),
            }
            # An id of one API means nothing to the other's @connections: 410, as on AWS.
            chat_management = _management(two_apis, "chatEndpoint")
            with pytest.raises(ClientError) as unknown:
                await asyncio.to_thread(
                    chat_management.post_to_connection,
                    ConnectionId=seen["alerts_ids"][0],
                    Data=b"wrong api",
                )
            seen["cross_status"] = unknown.value.response["ResponseMetadata"]["HTTPStatusCode"]
            return seen

    seen = asyncio.run(scenario())
    assert seen["chat"] == {"message": json.dumps({"action": "sendmessage", "text": "to chat"})}
    assert seen["alerts"] == {"message": "to alerts"}
    assert len(seen["chat_ids"]) == 1 and len(seen["alerts_ids"]) == 1
    assert seen["cross_status"] == 410
    eventually(lambda: not _connection_ids(two_apis, tables["chat"]))
    eventually(lambda: not _connection_ids(two_apis, tables["alerts"]))
    log = two_apis.log_text()
    assert tokens["AccessToken"] not in log and tokens["IdToken"] not in log


def _management(cloud: LocalCloud, endpoint_output: str) -> Any:
    import boto3

    websocket = urlsplit(cloud.outputs[endpoint_output])
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=f"http://{websocket.netloc}{websocket.path}",
        region_name=cloud.outputs["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - the local cloud's own key
    )


def test_api_ports_follow_the_first_after_the_web_page_and_moto() -> None:
    assert api_ports(8080, 1) == [8080]
    assert api_ports(8080, 3) == [8080, 8083, 8084]
    assert api_ports(0, 2) == [0, 0]


def test_localize_rewrites_aws_urls_wherever_they_are() -> None:
    urls = {
        "wss://abc.execute-api.us-east-1.amazonaws.com": "ws://127.0.0.1:8080",
        "https://abc.execute-api.us-east-1.amazonaws.com": "http://127.0.0.1:8080",
    }
    outputs = {
        "ws": "wss://abc.execute-api.us-east-1.amazonaws.com/prod",
        "nested": {"urls": ["https://abc.execute-api.us-east-1.amazonaws.com/prod", 3]},
        "other": "wss://xyz.execute-api.us-east-1.amazonaws.com/prod",
    }
    assert localize(outputs, urls) == {
        "ws": "ws://127.0.0.1:8080/prod",
        "nested": {"urls": ["http://127.0.0.1:8080/prod", 3]},
        "other": "wss://xyz.execute-api.us-east-1.amazonaws.com/prod",
    }
