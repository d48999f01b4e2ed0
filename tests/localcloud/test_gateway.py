"""The gateway emulator against a real `websockets` client and real HTTP, on port 0.

The gateway is the unit under test, so functions are small async fakes behind the `Invoker`
contract; the end-to-end tests with real Lambda workers live with the realizer's tests.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from wsauth.localcloud.gateway import Gateway
from wsauth.localcloud.spec import ApiSpec, AuthorizerSpec, FunctionError, Limits, RouteSpec

pytestmark = pytest.mark.timeout(60)

Function = Callable[[dict[str, Any]], Awaitable[Any]]
GUARD = 10.0
"""Seconds before an awaited event counts as never coming (a hang guard, not an assertion)."""


def signed_headers(
    region: str = "us-east-1", service: str = "execute-api", seconds_ago: float = 0
) -> list[str]:
    """Headers of a call signed with a key the test gateway has no secret for: its form,
    scope and date are checked, not the signature itself (see `test_sigv4.py`)."""
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() - seconds_ago))
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    return [
        f"X-Amz-Date: {amz_date}",
        f"Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{scope}, "
        "SignedHeaders=host;x-amz-date, Signature=abc",
    ]


class FakeInvoker:
    """Runs named async functions and records every event each one received."""

    def __init__(self, functions: dict[str, Function]) -> None:
        self.functions = functions
        self.events: dict[str, asyncio.Queue[dict[str, Any]]] = {
            name: asyncio.Queue() for name in functions
        }

    async def invoke(self, function_name: str, event: dict[str, Any]) -> Any:
        self.events[function_name].put_nowait(event)
        return await self.functions[function_name](event)

    async def next_event(self, function_name: str) -> dict[str, Any]:
        return await asyncio.wait_for(self.events[function_name].get(), GUARD)


async def http_request(
    port: int,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    signed: bool = True,
) -> tuple[int, dict[str, str], bytes]:
    """Send one request on a fresh connection and return (status, headers, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(_request_bytes(method, path, body, signed=signed, close=True))
        return await _read_response(reader)
    finally:
        writer.close()


def _request_bytes(method: str, path: str, body: bytes, *, signed: bool, close: bool) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", f"Content-Length: {len(body)}"]
    if signed:
        lines += signed_headers()
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").strip().split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split(" ")[1]), headers, body


def make_api(
    routes: dict[str, str] | None = None,
    *,
    authorizer: AuthorizerSpec | None = None,
    limits: Limits | None = None,
) -> ApiSpec:
    route_map = (
        routes
        if routes is not None
        else {
            "$connect": "ws",
            "$disconnect": "ws",
            "$default": "ws",
        }
    )
    return ApiSpec(
        api_id="abc123",
        name="test-api",
        stage="prod",
        route_selection_expression="$request.body.action",
        routes={key: RouteSpec(key, fn) for key, fn in route_map.items()},
        connect_authorizer=authorizer,
        limits=limits or Limits(),
    )


AUTHORIZER = AuthorizerSpec(
    name="auth", function_name="auth", identity_sources=("route.request.querystring.idToken",)
)


def allow(event: dict[str, Any], **context: Any) -> dict[str, Any]:
    return {
        "principalId": "user-1",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}
            ],
        },
        "context": context,
    }


async def ok(event: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": 200}


class Stack:
    """A started gateway, its fake invoker and its log lines."""

    def __init__(self, gateway: Gateway, invoker: FakeInvoker, log: list[str]) -> None:
        self.gateway = gateway
        self.invoker = invoker
        self.log = log

    async def post(self, connection_id: str, data: bytes) -> int:
        status, _, _ = await http_request(
            self.gateway.port, "POST", f"/prod/@connections/{connection_id}", data
        )
        return status

    def url(self, query: str = "") -> str:
        return self.gateway.websocket_url() + query


@asynccontextmanager
async def serving(
    functions: dict[str, Function],
    api: ApiSpec | None = None,
) -> AsyncIterator[Stack]:
    invoker = FakeInvoker(functions)
    log: list[str] = []
    gateway = Gateway(
        api or make_api(),
        invoker,
        region="us-east-1",
        port=0,
        log=log.append,
        credentials={"testing": "testing"},  # boto3 clients signing with it are verified
    )
    await gateway.start()
    try:
        yield Stack(gateway, invoker, log)
    finally:
        await gateway.close()


def echo_functions(stack_ref: list[Stack]) -> dict[str, Function]:
    """`ws` answers $connect 200 and echoes MESSAGE bodies through `@connections`."""

    async def ws(event: dict[str, Any]) -> Any:
        context = event["requestContext"]
        if context["eventType"] == "MESSAGE":
            payload = json.dumps({"message": event["body"]}).encode()
            await stack_ref[0].post(context["connectionId"], payload)
        return {"statusCode": 200}

    return {"ws": ws}


@asynccontextmanager
async def echo_stack(api: ApiSpec | None = None) -> AsyncIterator[Stack]:
    ref: list[Stack] = []
    async with serving(echo_functions(ref), api) as stack:
        ref.append(stack)
        yield stack


async def connection_id_of(stack: Stack) -> str:
    event = await stack.invoker.next_event("ws")
    assert event["requestContext"]["eventType"] == "CONNECT"
    return event["requestContext"]["connectionId"]


async def recv_json(client: ClientConnection) -> Any:
    return json.loads(await asyncio.wait_for(client.recv(), GUARD))


# Handshake and echo.


def test_echo_round_trip() -> None:
    """A message to $default comes back through POST @connections."""

    async def scenario() -> None:
        async with echo_stack() as stack, connect(stack.url()) as client:
            await client.send("hello")
            assert await recv_json(client) == {"message": "hello"}

    asyncio.run(scenario())


@pytest.mark.parametrize("query", ["", "?idToken=", "?other=x"])
def test_handshake_without_identity_source_is_401_and_authorizer_not_invoked(query: str) -> None:
    """A missing or empty identity source gets 401 before the authorizer runs."""

    async def scenario() -> None:
        async def auth(event: dict[str, Any]) -> Any:
            raise AssertionError("authorizer must not run")

        api = make_api(authorizer=AUTHORIZER)
        async with serving({"auth": auth, "ws": ok}, api) as stack:
            with pytest.raises(InvalidStatus) as refused:
                async with connect(stack.url(query)):
                    pass
            assert refused.value.response.status_code == 401
            assert stack.invoker.events["auth"].empty()

    asyncio.run(scenario())


def test_identity_source_in_header() -> None:
    """A header identity source (Sec-WebSocket-Protocol) is read from the handshake."""

    async def scenario() -> None:
        async def auth(event: dict[str, Any]) -> Any:
            return allow(event)

        api = make_api(
            authorizer=replace(
                AUTHORIZER, identity_sources=("route.request.header.Sec-WebSocket-Protocol",)
            )
        )
        async with serving({"auth": auth, "ws": ok}, api) as stack:
            with pytest.raises(InvalidStatus) as refused:
                async with connect(stack.url()):
                    pass
            assert refused.value.response.status_code == 401
            async with connect(stack.url(), subprotocols=["wsauth", "token"]):  # type: ignore[list-item]
                pass
            event = await stack.invoker.next_event("auth")
            assert event["headers"]["Sec-WebSocket-Protocol"] == "wsauth, token"

    asyncio.run(scenario())


def _deny(event: dict[str, Any]) -> Any:
    result = allow(event)
    result["policyDocument"]["Statement"][0]["Effect"] = "Deny"
    return result


def _allow_other_arn(event: dict[str, Any]) -> Any:
    result = allow(event)
    result["policyDocument"]["Statement"][0]["Resource"] = "arn:aws:execute-api:x:y:z/prod/$x"
    return result


def _raise(kind: str) -> Callable[[dict[str, Any]], Any]:
    def fail(event: dict[str, Any]) -> Any:
        raise FunctionError(kind, "boom")

    return fail


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (_deny, 403),
        (_allow_other_arn, 403),
        (_raise("Unhandled"), 500),
        (_raise("TimeoutError"), 500),
        (lambda event: {"principalId": "x"}, 500),
        (lambda event: "Allow", 500),
        (lambda event: {**allow(event), "context": {"nested": {"a": 1}}}, 500),
    ],
    ids=["deny", "allow-other-arn", "raises", "times-out", "no-policy", "not-object", "nested"],
)
def test_authorizer_answers(answer: Callable[[dict[str, Any]], Any], status: int) -> None:
    """Deny is 403; an authorizer failure or a malformed answer is 500; $connect never runs."""

    async def scenario() -> None:
        async def auth(event: dict[str, Any]) -> Any:
            return answer(event)

        async with serving({"auth": auth, "ws": ok}, make_api(authorizer=AUTHORIZER)) as stack:
            with pytest.raises(InvalidStatus) as refused:
                async with connect(stack.url("?idToken=t0ken")):
                    pass
            assert refused.value.response.status_code == status
            assert stack.invoker.events["ws"].empty()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("result", "status"),
    [
        ({"statusCode": 403}, 403),
        ({"statusCode": 500}, 500),
        (FunctionError("Unhandled", "x"), 500),
    ],
)
def test_connect_non_2xx_refuses_handshake(result: Any, status: int) -> None:
    """$connect answering non-2xx (or failing) refuses the handshake with a real status."""

    async def scenario() -> None:
        async def ws(event: dict[str, Any]) -> Any:
            if isinstance(result, Exception):
                raise result
            return result

        async with serving({"ws": ws}) as stack:
            with pytest.raises(InvalidStatus) as refused:
                async with connect(stack.url()):
                    pass
            assert refused.value.response.status_code == status
            # A refused connection never existed: no $disconnect.
            await stack.invoker.next_event("ws")
            assert stack.invoker.events["ws"].empty()

    asyncio.run(scenario())


def test_subprotocol_answered_from_connect_headers() -> None:
    """When $connect returns Sec-WebSocket-Protocol, the handshake answers it."""

    async def scenario() -> None:
        async def ws(event: dict[str, Any]) -> Any:
            return {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "wsauth"}}

        async with serving({"ws": ws}) as stack:
            async with connect(stack.url(), subprotocols=["wsauth", "jwt"]) as client:  # type: ignore[list-item]
                assert client.subprotocol == "wsauth"

    asyncio.run(scenario())


def test_unknown_path_and_plain_get() -> None:
    """Other paths get 404; a GET on the stage without Upgrade gets 426."""

    async def scenario() -> None:
        async with serving({"ws": ok}) as stack:
            port = stack.gateway.port
            assert (await http_request(port, "GET", "/other"))[0] == 404
            assert (await http_request(port, "GET", "/prod"))[0] == 426

    asyncio.run(scenario())


def test_port_taken_raises_clear_oserror() -> None:
    """Binding a taken port raises OSError naming the port."""

    async def scenario() -> None:
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            port = holder.getsockname()[1]
            gateway = Gateway(make_api(), FakeInvoker({}), region="us-east-1", port=port)
            with pytest.raises(OSError, match=f"port {port} .* already in use"):
                await gateway.start()

    asyncio.run(scenario())


# Routes and events.


@pytest.mark.parametrize(
    ("message", "route"),
    [
        ('{"action": "sendmessage", "x": 1}', "sendmessage"),
        ('{"action": "unknown"}', "$default"),
        ('{"action": 3}', "$default"),
        ("not json", "$default"),
        ("[1, 2]", "$default"),
    ],
)
def test_route_selection(message: str, route: str) -> None:
    """$request.body.action picks a declared route, else $default."""

    async def scenario() -> None:
        api = make_api({"$default": "ws", "sendmessage": "ws"})
        async with serving({"ws": ok}, api) as stack, connect(stack.url()) as client:
            await client.send(message)
            event = await stack.invoker.next_event("ws")
            assert event["requestContext"]["routeKey"] == route
            assert event["body"] == message

    asyncio.run(scenario())


def test_no_matching_route_and_no_default_answers_forbidden() -> None:
    """Without $default, an unmatched message gets API Gateway's Forbidden message."""

    async def scenario() -> None:
        api = make_api({"$connect": "ws", "sendmessage": "ws"})
        async with serving({"ws": ok}, api) as stack, connect(stack.url()) as client:
            connection_id = await connection_id_of(stack)
            await client.send('{"action": "other"}')
            answer = await recv_json(client)
            assert answer["message"] == "Forbidden"
            assert answer["connectionId"] == connection_id
            assert answer["requestId"]

    asyncio.run(scenario())


def test_nested_route_selection_path() -> None:
    """$request.body.a.b reads a nested key."""

    async def scenario() -> None:
        api = replace(
            make_api({"$default": "ws", "go": "ws"}),
            route_selection_expression="$request.body.meta.kind",
        )
        async with serving({"ws": ok}, api) as stack, connect(stack.url()) as client:
            await client.send('{"meta": {"kind": "go"}}')
            event = await stack.invoker.next_event("ws")
            assert event["requestContext"]["routeKey"] == "go"

    asyncio.run(scenario())


def test_binary_message_is_base64() -> None:
    """A binary frame reaches the function base64-encoded with isBase64Encoded true."""

    async def scenario() -> None:
        async with serving({"ws": ok}) as stack, connect(stack.url()) as client:
            await connection_id_of(stack)
            await client.send(b"\x00\xffbin")
            event = await stack.invoker.next_event("ws")
            assert event["isBase64Encoded"] is True
            assert base64.b64decode(event["body"]) == b"\x00\xffbin"

    asyncio.run(scenario())


CONTEXT_KEYS = {
    "routeKey",
    "eventType",
    "extendedRequestId",
    "requestTime",
    "messageDirection",
    "stage",
    "connectedAt",
    "requestTimeEpoch",
    "identity",
    "requestId",
    "domainName",
    "connectionId",
    "apiId",
    "authorizer",
}


def test_event_shapes_and_authorizer_context_on_every_event() -> None:
    """Authorizer, CONNECT, MESSAGE and DISCONNECT events have AWS's keys and the context."""

    async def scenario() -> None:
        async def auth(event: dict[str, Any]) -> Any:
            return allow(event, userId="u-1", groups="a,b")

        api = make_api(authorizer=AUTHORIZER)
        async with serving({"auth": auth, "ws": ok}, api) as stack:
            async with connect(stack.url("?idToken=t0ken&x=1&x=2")) as client:
                await client.send("hi")
                auth_event = await stack.invoker.next_event("auth")
                connect_ev = await stack.invoker.next_event("ws")
                message_ev = await stack.invoker.next_event("ws")
            disconnect_ev = await stack.invoker.next_event("ws")
            port = stack.gateway.port

        assert set(auth_event) == {
            "type",
            "methodArn",
            "headers",
            "multiValueHeaders",
            "queryStringParameters",
            "multiValueQueryStringParameters",
            "stageVariables",
            "requestContext",
        }
        assert auth_event["type"] == "REQUEST"
        assert (
            auth_event["methodArn"]
            == "arn:aws:execute-api:us-east-1:000000000000:abc123/prod/$connect"
        )
        assert auth_event["queryStringParameters"] == {"idToken": "t0ken", "x": "2"}
        assert auth_event["multiValueQueryStringParameters"]["x"] == ["1", "2"]
        assert auth_event["requestContext"]["routeKey"] == "$connect"
        assert auth_event["requestContext"]["eventType"] == "CONNECT"

        assert set(connect_ev) == {
            "headers",
            "multiValueHeaders",
            "queryStringParameters",
            "multiValueQueryStringParameters",
            "requestContext",
            "isBase64Encoded",
        }
        assert set(message_ev) == {"requestContext", "body", "isBase64Encoded"}
        assert set(disconnect_ev) == {
            "headers",
            "multiValueHeaders",
            "requestContext",
            "isBase64Encoded",
        }
        assert set(connect_ev["requestContext"]) == CONTEXT_KEYS
        assert set(message_ev["requestContext"]) == CONTEXT_KEYS | {"messageId"}
        assert set(disconnect_ev["requestContext"]) == CONTEXT_KEYS | {
            "disconnectStatusCode",
            "disconnectReason",
        }
        expected_authorizer = {"userId": "u-1", "groups": "a,b", "principalId": "user-1"}
        ids = set()
        for event in (connect_ev, message_ev, disconnect_ev):
            context = event["requestContext"]
            authorizer = dict(context["authorizer"])
            assert isinstance(authorizer.pop("integrationLatency"), int)
            assert authorizer == expected_authorizer
            assert context["domainName"] == f"127.0.0.1:{port}"
            assert context["stage"] == "prod"
            assert context["apiId"] == "abc123"
            assert context["messageDirection"] == "IN"
            assert context["identity"]["sourceIp"] == "127.0.0.1"
            assert "Python" in context["identity"]["userAgent"]
            assert re.fullmatch(r"[A-Za-z0-9_-]{15}=", context["connectionId"])
            assert context["connectedAt"] <= context["requestTimeEpoch"]
            ids.add(context["connectionId"])
        assert len(ids) == 1
        assert message_ev["body"] == "hi"
        assert message_ev["isBase64Encoded"] is False
        assert [e["requestContext"]["eventType"] for e in (message_ev, disconnect_ev)] == [
            "MESSAGE",
            "DISCONNECT",
        ]

    asyncio.run(scenario())


# Disconnects.


def test_clean_close_reports_client_code_and_reason() -> None:
    """A client close frame's code and reason reach $disconnect."""

    async def scenario() -> None:
        async with serving({"ws": ok}) as stack:
            async with connect(stack.url()) as client:
                await connection_id_of(stack)
                await client.close(4000, "bye")
            context = (await stack.invoker.next_event("ws"))["requestContext"]
            assert (context["disconnectStatusCode"], context["disconnectReason"]) == (4000, "bye")

    asyncio.run(scenario())


def test_abrupt_drop_reports_1006() -> None:
    """A TCP drop without a close frame reports 1006 on $disconnect."""

    async def scenario() -> None:
        async with serving({"ws": ok}) as stack:
            client = await connect(stack.url())
            await connection_id_of(stack)
            client.transport.abort()
            context = (await stack.invoker.next_event("ws"))["requestContext"]
            assert context["eventType"] == "DISCONNECT"
            assert context["disconnectStatusCode"] == 1006

    asyncio.run(scenario())


def test_delete_closes_client_and_runs_disconnect_once() -> None:
    """DELETE @connections closes the client with 1000 and runs $disconnect once."""

    async def scenario() -> None:
        async with serving({"ws": ok}) as stack:
            async with connect(stack.url()) as client:
                connection_id = await connection_id_of(stack)
                status, _, _ = await http_request(
                    stack.gateway.port, "DELETE", f"/prod/@connections/{connection_id}"
                )
                assert status == 204
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(client.recv(), GUARD)
                assert client.close_code == 1000
            context = (await stack.invoker.next_event("ws"))["requestContext"]
            assert context["disconnectStatusCode"] == 1000
            assert context["disconnectReason"] == "Connection Closed Normally"
            # Once only: a second DELETE finds nothing.
            status, _, _ = await http_request(
                stack.gateway.port, "DELETE", f"/prod/@connections/{connection_id}"
            )
            assert status == 410
        assert stack.invoker.events["ws"].empty()

    asyncio.run(scenario())


def test_gateway_close_runs_disconnect_for_every_client() -> None:
    """close() sends 1001 to every client and runs $disconnect for each."""

    async def scenario() -> None:
        async with serving({"ws": ok}) as stack:
            clients = [await connect(stack.url()) for _ in range(5)]
            ids = {await connection_id_of(stack) for _ in clients}
            await stack.gateway.close()
            for client in clients:
                await asyncio.wait_for(client.wait_closed(), GUARD)
                assert client.close_code == 1001
            disconnects = [await stack.invoker.next_event("ws") for _ in clients]
            assert {e["requestContext"]["connectionId"] for e in disconnects} == ids
            assert {e["requestContext"]["disconnectStatusCode"] for e in disconnects} == {1001}

    asyncio.run(scenario())


# The @connections API.


def test_management_with_boto3() -> None:
    """boto3's apigatewaymanagementapi client can post, get, delete, and sees 410 after."""
    import boto3

    async def scenario() -> None:
        async with serving({"ws": ok}) as stack, connect(stack.url()) as client:
            connection_id = await connection_id_of(stack)
            api = boto3.client(
                "apigatewaymanagementapi",
                endpoint_url=stack.gateway.management_url(),
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            await asyncio.to_thread(
                api.post_to_connection, ConnectionId=connection_id, Data=b'{"a": 1}'
            )
            assert await recv_json(client) == {"a": 1}
            await asyncio.to_thread(
                api.post_to_connection, ConnectionId=connection_id, Data=b"\xff"
            )
            assert await asyncio.wait_for(client.recv(), GUARD) == b"\xff"
            info = await asyncio.to_thread(api.get_connection, ConnectionId=connection_id)
            assert info["Identity"]["SourceIp"] == "127.0.0.1"
            assert info["ConnectedAt"] <= info["LastActiveAt"]
            await asyncio.to_thread(api.delete_connection, ConnectionId=connection_id)
            await asyncio.wait_for(client.wait_closed(), GUARD)
            with pytest.raises(api.exceptions.GoneException):
                await asyncio.to_thread(
                    api.post_to_connection, ConnectionId=connection_id, Data=b"x"
                )
            with pytest.raises(api.exceptions.PayloadTooLargeException):
                await asyncio.to_thread(
                    api.post_to_connection, ConnectionId="AAAAAAAAAAAAAAA=", Data=b"x" * 131073
                )

    asyncio.run(scenario())


@pytest.mark.parametrize("method", ["POST", "GET", "DELETE"])
def test_unknown_connection_is_410(method: str) -> None:
    """Every method on an unknown id answers 410 GoneException."""

    async def scenario() -> None:
        async with serving({"ws": ok}) as stack:
            status, headers, _ = await http_request(
                stack.gateway.port, method, "/prod/@connections/nope", b"x"
            )
            assert status == 410
            assert headers["x-amzn-errortype"] == "GoneException"

    asyncio.run(scenario())


def test_unsigned_management_call_is_403() -> None:
    """A call without a SigV4 Authorization header is refused and nothing is sent."""

    async def scenario() -> None:
        async with serving({"ws": ok}) as stack, connect(stack.url()) as client:
            connection_id = await connection_id_of(stack)
            status, _, body = await http_request(
                stack.gateway.port,
                "POST",
                f"/prod/@connections/{connection_id}",
                b"x",
                signed=False,
            )
            assert status == 403
            assert json.loads(body) == {"message": "Missing Authentication Token"}
            await client.ping()  # the client is still open and got nothing in between
            await stack.post(connection_id, b"after")
            assert await asyncio.wait_for(client.recv(), GUARD) == "after"

    asyncio.run(scenario())


def test_signature_is_verified_for_a_key_the_gateway_knows() -> None:
    """boto3 signing with the right key but the wrong secret, or for another region, gets
    AWS's 403 InvalidSignatureException, and the client gets nothing."""
    import boto3
    from botocore.exceptions import ClientError

    async def scenario() -> None:
        async with serving({"ws": ok}) as stack, connect(stack.url()) as client:
            connection_id = await connection_id_of(stack)
            for region, secret, says in [
                ("us-east-1", "not-the-secret", "does not match the signature you provided"),
                ("eu-west-1", "testing", "scoped to a valid region, not 'eu-west-1'"),
            ]:
                api = boto3.client(
                    "apigatewaymanagementapi",
                    endpoint_url=stack.gateway.management_url(),
                    region_name=region,
                    aws_access_key_id="testing",
                    aws_secret_access_key=secret,
                )
                with pytest.raises(ClientError) as refused:
                    await asyncio.to_thread(
                        api.post_to_connection, ConnectionId=connection_id, Data=b"x"
                    )
                error = refused.value.response
                assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
                assert error["Error"]["Code"] == "InvalidSignatureException"
                assert says in error["Error"]["Message"]
            await client.ping()  # still open, and nothing was delivered in between
            await stack.post(connection_id, b"after")
            assert await asyncio.wait_for(client.recv(), GUARD) == "after"

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("headers", "error_type", "says"),
    [
        (lambda: signed_headers(service="apigateway"), "InvalidSignatureException", "service"),
        (lambda: signed_headers(region="eu-west-1"), "InvalidSignatureException", "region"),
        (lambda: signed_headers()[1:], "IncompleteSignatureException", "X-Amz-Date"),
        (
            lambda: [signed_headers()[0], "Authorization: AWS4-HMAC-SHA256 Signature=abc"],
            "IncompleteSignatureException",
            "Credential",
        ),
        (
            lambda: signed_headers(seconds_ago=600),
            "InvalidSignatureException",
            "more than 5 min",
        ),
    ],
    ids=["wrong-service", "wrong-region", "no-date", "no-credential", "ten-minutes-old"],
)
def test_badly_signed_management_call_is_403(
    headers: Callable[[], list[str]], error_type: str, says: str
) -> None:
    """What needs no secret is checked for every key: scope, date, form."""

    async def scenario() -> None:
        async with serving({"ws": ok}) as stack:
            reader, writer = await asyncio.open_connection("127.0.0.1", stack.gateway.port)
            head = ["POST /prod/@connections/x HTTP/1.1", "Host: localhost", *headers()]
            writer.write(("\r\n".join([*head, "Content-Length: 1"]) + "\r\n\r\nx").encode())
            status, response_headers, body = await _read_response(reader)
            writer.close()
            assert status == 403
            assert response_headers["x-amzn-errortype"] == error_type
            assert says in json.loads(body)["message"]

    asyncio.run(scenario())


def test_unsupported_method_on_connections_is_405() -> None:
    """A signed PUT is refused with 405 and the methods that are allowed."""

    async def scenario() -> None:
        async with serving({"ws": ok}) as stack:
            status, headers, _ = await http_request(
                stack.gateway.port, "PUT", "/prod/@connections/x", b""
            )
            assert status == 405
            assert headers["allow"] == "POST, GET, DELETE"

    asyncio.run(scenario())


def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    """Pipelined requests on one kept-alive connection are all answered in order."""

    async def scenario() -> None:
        async with serving({"ws": ok}) as stack, connect(stack.url()) as client:
            connection_id = await connection_id_of(stack)
            reader, writer = await asyncio.open_connection("127.0.0.1", stack.gateway.port)
            path = f"/prod/@connections/{connection_id}"
            writer.write(
                _request_bytes("POST", path, b"one", signed=True, close=False)
                + _request_bytes("GET", path, b"", signed=True, close=False)
            )
            writer.write(_request_bytes("POST", path, b"two", signed=True, close=False))
            statuses = [(await _read_response(reader))[0] for _ in range(3)]
            writer.close()
            assert statuses == [200, 200, 200]
            assert [await client.recv(), await client.recv()] == ["one", "two"]

    asyncio.run(scenario())


# Limits.


@pytest.mark.parametrize(
    "message",
    [
        "x" * (32 * 1024 + 1),  # one frame over 32 KB
        ["y" * 30_000] * 5,  # 30 KB frames, 150 KB message
    ],
    ids=["frame", "message"],
)
def test_oversize_closes_1009(message: str | list[str]) -> None:
    """A frame over 32 KB or a message over 128 KB closes with 1009, reported on $disconnect."""

    async def scenario() -> None:
        async with serving({"ws": ok}) as stack:
            async with connect(stack.url(), max_size=None) as client:
                await connection_id_of(stack)
                await client.send(message)
                await asyncio.wait_for(client.wait_closed(), GUARD)
                assert client.close_code == 1009
            context = (await stack.invoker.next_event("ws"))["requestContext"]
            assert context["eventType"] == "DISCONNECT"
            assert context["disconnectStatusCode"] == 1009

    asyncio.run(scenario())


def test_message_at_the_limits_is_accepted() -> None:
    """A 128 KB message in 32 KB frames passes."""

    async def scenario() -> None:
        async with serving({"ws": ok}) as stack, connect(stack.url()) as client:
            await connection_id_of(stack)
            await client.send(["z" * (32 * 1024)] * 4)
            event = await stack.invoker.next_event("ws")
            assert len(event["body"]) == 128 * 1024

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "limits",
    [Limits(idle_timeout_seconds=0.2), Limits(max_connection_seconds=0.2)],
    ids=["idle", "max-duration"],
)
def test_timeouts_close_1001_going_away(limits: Limits) -> None:
    """Idle and maximum-duration timeouts close with 1001 and run $disconnect."""

    async def scenario() -> None:
        async with serving({"ws": ok}, make_api(limits=limits)) as stack:
            async with connect(stack.url()) as client:
                await connection_id_of(stack)
                await asyncio.wait_for(client.wait_closed(), GUARD)
                assert client.close_code == 1001
            context = (await stack.invoker.next_event("ws"))["requestContext"]
            assert (context["disconnectStatusCode"], context["disconnectReason"]) == (
                1001,
                "Going away",
            )

    asyncio.run(scenario())


def test_messages_reset_the_idle_timer() -> None:
    """Messages keep a connection alive past the idle timeout."""

    async def scenario() -> None:
        async def ws(event: dict[str, Any]) -> Any:
            return {"statusCode": 200}

        # Idle 1 s, traffic every 0.1 s for 2 s: generous enough for a loaded machine.
        api = make_api(limits=Limits(idle_timeout_seconds=1.0))
        async with serving({"ws": ws}, api) as stack, connect(stack.url()) as client:
            await connection_id_of(stack)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 2.0
            while loop.time() < deadline:
                await client.send("keep")
                await stack.invoker.next_event("ws")
                await asyncio.sleep(0.1)  # the traffic pattern under test, not a wait
            assert client.close_code is None

    asyncio.run(scenario())


@pytest.mark.parametrize("failure", ["error", "timeout"])
def test_function_failure_answers_internal_server_error_and_stays_open(failure: str) -> None:
    """A failing or hanging function gives the client AWS's error and the socket stays open."""

    async def scenario() -> None:
        never = asyncio.Event()

        async def ws(event: dict[str, Any]) -> Any:
            context = event["requestContext"]
            if context["eventType"] == "MESSAGE" and event["body"] == "fail":
                if failure == "error":
                    raise FunctionError("Unhandled", "boom")
                await never.wait()
            if context["eventType"] == "MESSAGE":
                await stack_ref[0].post(context["connectionId"], b"fine")
            return {"statusCode": 200}

        stack_ref: list[Stack] = []
        api = make_api(limits=Limits(integration_timeout_seconds=1.0))
        async with serving({"ws": ws}, api) as stack, connect(stack.url()) as client:
            stack_ref.append(stack)
            connection_id = await connection_id_of(stack)
            await client.send("fail")
            message_event = await stack.invoker.next_event("ws")
            answer = await recv_json(client)
            assert answer == {
                "message": "Internal server error",
                "connectionId": connection_id,
                "requestId": message_event["requestContext"]["requestId"],
            }
            await client.send("again")
            assert await asyncio.wait_for(client.recv(), GUARD) == "fine"
            expected = "timeout" if failure == "timeout" else "error Unhandled"
            assert any(
                line.startswith(f"$default {connection_id} {expected}") for line in stack.log
            )

    asyncio.run(scenario())


# Concurrency and logs.


def test_many_concurrent_clients_get_only_their_own_messages() -> None:
    """50 clients sending at once each receive exactly their own echoes, in order."""

    async def scenario() -> None:
        async with echo_stack() as stack:

            async def talk(n: int) -> list[str]:
                async with connect(stack.url()) as client:
                    for i in range(10):
                        await client.send(f"{n}:{i}")
                    return [(await recv_json(client))["message"] for _ in range(10)]

            results = await asyncio.gather(*(talk(n) for n in range(50)))
            for n, received in enumerate(results):
                assert sorted(received, key=lambda m: int(m.split(":")[1])) == [
                    f"{n}:{i}" for i in range(10)
                ]

    asyncio.run(scenario())


def test_log_lines_name_route_connection_status_and_never_the_token() -> None:
    """One line per invocation: route, connection id, status, duration; no token or query."""

    async def scenario() -> None:
        async def auth(event: dict[str, Any]) -> Any:
            return allow(event)

        api = make_api(authorizer=AUTHORIZER)
        async with serving({"auth": auth, "ws": ok}, api) as stack:
            async with connect(stack.url("?idToken=SECRET-TOKEN")) as client:
                connection_id = await connection_id_of(stack)
                await client.send("hi")
                await stack.invoker.next_event("ws")
            await stack.invoker.next_event("ws")
        log = stack.log
        assert not any("SECRET" in line or "idToken" in line for line in log)
        routes = [line.split(f" {connection_id} ")[0] for line in log]
        assert routes == ["$connect authorizer", "$connect", "$default", "$disconnect"]
        assert all(line.endswith(" ms") for line in log)

    asyncio.run(scenario())


def test_messages_of_one_client_are_handled_concurrently() -> None:
    """A slow message does not hold back the next one from the same client, as on AWS."""

    async def scenario() -> None:
        second_arrived = asyncio.Event()

        async def ws(event: dict[str, Any]) -> Any:
            context = event["requestContext"]
            if context["eventType"] == "MESSAGE":
                if event["body"] == "first":
                    await asyncio.wait_for(second_arrived.wait(), GUARD)
                    await stack_ref[0].post(context["connectionId"], b"first done")
                else:
                    second_arrived.set()
            return {"statusCode": 200}

        stack_ref: list[Stack] = []
        async with serving({"ws": ws}) as stack, connect(stack.url()) as client:
            stack_ref.append(stack)
            await client.send("first")
            await client.send("second")
            assert await asyncio.wait_for(client.recv(), GUARD) == "first done"

    asyncio.run(scenario())


def test_post_to_a_client_that_does_not_read_is_bounded_with_429() -> None:
    """Posting to a client that stops reading ends in 429 LimitExceeded, not unbounded memory."""

    async def scenario() -> None:
        async with serving({"ws": ok}) as stack:
            # max_queue=1: the client stops reading its socket once one message waits unread.
            client = await connect(stack.url(), max_queue=1)
            connection_id = await connection_id_of(stack)
            payload = b"p" * (100 * 1024)
            statuses = []
            for _ in range(2000):
                status = await stack.post(connection_id, payload)
                statuses.append(status)
                if status != 200:
                    break
            assert statuses[-1] == 429
            assert client.close_code is None
            client.transport.abort()  # a clean close would wait behind the unread data

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /prod HTTP/1.1\r\nBad Header: x\r\n\r\n", 400),
        (b"GET /prod HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 20_000 + b"\r\n\r\n", 431),
        (b"POST /prod/@connections/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
        (b"POST /prod/@connections/x HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        (
            b"POST /prod/@connections/x HTTP/1.1\r\nContent-Length: 1\r\n"
            b"Content-Length: 2\r\n\r\nab",
            400,
        ),
        (b"POST /prod HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 405),
        (
            b"GET /prod HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            426,
        ),
        (
            b"GET /prod HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n",
            400,
        ),
    ],
    ids=[
        "garbage",
        "header-space",
        "head-too-large",
        "chunked",
        "bad-length",
        "two-lengths",
        "post-upgrade",
        "old-version",
        "bad-key",
    ],
)
def test_bad_requests_get_real_statuses(raw: bytes, status: int) -> None:
    """Malformed or unsupported requests are answered with the right status, not dropped."""

    async def scenario() -> None:
        async with serving({"ws": ok}) as stack:
            reader, writer = await asyncio.open_connection("127.0.0.1", stack.gateway.port)
            writer.write(raw)
            got, _, _ = await _read_response(reader)
            writer.close()
            assert got == status
            assert stack.invoker.events["ws"].empty()

    asyncio.run(scenario())


def test_pings_do_not_count_as_activity() -> None:
    """A client that only pings is still closed by the idle timeout."""

    async def scenario() -> None:
        api = make_api(limits=Limits(idle_timeout_seconds=0.3))
        async with serving({"ws": ok}, api) as stack:
            async with connect(stack.url()) as client:
                await connection_id_of(stack)
                with pytest.raises(ConnectionClosed):
                    while True:
                        await asyncio.wait_for(await client.ping(), GUARD)
                        await asyncio.sleep(0.05)  # the traffic pattern under test
                assert client.close_code == 1001

    asyncio.run(scenario())


def test_client_leaving_during_connect_still_gets_disconnect() -> None:
    """If the client drops while $connect runs, the accepted connection still disconnects."""

    async def scenario() -> None:
        release = asyncio.Event()

        async def ws(event: dict[str, Any]) -> Any:
            if event["requestContext"]["eventType"] == "CONNECT":
                await asyncio.wait_for(release.wait(), GUARD)
            return {"statusCode": 200}

        async with serving({"ws": ws}) as stack:
            reader, writer = await asyncio.open_connection("127.0.0.1", stack.gateway.port)
            writer.write(
                b"GET /prod HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            )
            connection_id = await connection_id_of(stack)
            writer.transport.abort()
            await writer.wait_closed()
            release.set()
            context = (await stack.invoker.next_event("ws"))["requestContext"]
            assert context["eventType"] == "DISCONNECT"
            assert context["connectionId"] == connection_id
            assert context["disconnectStatusCode"] == 1006

    asyncio.run(scenario())
