"""A stack with a custom domain: `webSocketEndpoint` is `wss://{domain}` (the stage mapped at
the root, no stage path) while `managementEndpoint` stays execute-api. No client derives one
from the other or assumes a stage path in the WebSocket URL."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from wsauth.client import open_socket, stack_clients, websocket_url
from wsauth.outputs import parse_outputs
from wsauth.webpage import _content_security_policy, page_config

from .samples import STACK_OUTPUTS

DOMAIN_OUTPUTS = {
    **STACK_OUTPUTS,
    "webSocketEndpoint": "wss://chat.example.com",
    "customDomainTarget": "d-abc123.execute-api.eu-west-1.amazonaws.com",
}


def test_outputs_keep_both_endpoints_as_given() -> None:
    """The WebSocket URL has no path; the management endpoint keeps its stage."""
    outputs = parse_outputs(DOMAIN_OUTPUTS, "outputs.json")
    assert outputs.websocket_endpoint == "wss://chat.example.com"
    assert outputs.management_endpoint == STACK_OUTPUTS["managementEndpoint"]


def test_token_goes_in_the_query_of_the_root_url() -> None:
    """`?idToken=` is added to the domain's root, with no stage path made up."""
    outputs = parse_outputs(DOMAIN_OUTPUTS, "outputs.json")
    assert websocket_url(outputs, "t.k.n") == "wss://chat.example.com?idToken=t.k.n"


def test_sending_uses_the_execute_api_management_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`notify`/`signout` call @connections on execute-api, never on the custom domain."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    outputs = parse_outputs(DOMAIN_OUTPUTS, "outputs.json")
    _, management = stack_clients(outputs)
    assert management.meta.endpoint_url == STACK_OUTPUTS["managementEndpoint"]


def test_web_page_connects_to_the_custom_domain() -> None:
    """The page's config and its Content-Security-Policy name the domain itself."""
    outputs = parse_outputs(DOMAIN_OUTPUTS, "outputs.json")
    config = page_config(outputs)
    assert config["webSocketEndpoint"] == "wss://chat.example.com"
    assert (
        "connect-src 'self' https://cognito-idp.eu-west-1.amazonaws.com wss://chat.example.com;"
        in (_content_security_policy(config))
    )


def test_handshake_to_a_root_endpoint_requests_the_root_path() -> None:
    """Against a server at the root (as API Gateway is behind a root mapping), the query-string
    handshake asks for `/?idToken=…`; after its 401, the header one asks for `/`."""
    paths: list[tuple[str, str | None]] = []

    def record(connection: ServerConnection, request: Request) -> Response | None:
        paths.append((request.path, request.headers.get("Sec-WebSocket-Protocol")))
        if "idToken" in request.path:
            return Response(401, "Unauthorized", Headers(), b"")
        return None

    async def echo(connection: ServerConnection) -> None:
        await connection.wait_closed()

    async def main() -> str:
        async with serve(
            echo, "127.0.0.1", 0, process_request=record, select_subprotocol=lambda c, o: "wsauth"
        ) as server:
            port = server.sockets[0].getsockname()[1]
            outputs = parse_outputs(
                {**DOMAIN_OUTPUTS, "webSocketEndpoint": f"ws://127.0.0.1:{port}"}, "outputs.json"
            )
            socket, source = await open_socket(outputs, "t.k.n", timeout=5)
            await socket.close()
            return source

    assert asyncio.run(asyncio.wait_for(main(), 20)) == "protocol"
    assert paths == [("/?idToken=t.k.n", None), ("/", "wsauth, t.k.n")]
