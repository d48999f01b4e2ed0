"""The gateway emulator under abuse: raw frames no well-behaved client sends, on port 0.

A raw socket writes the frames (a `websockets` client would refuse to); functions are small
async fakes behind the `Invoker` contract, as in `test_gateway.py`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import pytest
from websockets.asyncio.client import connect

from wsauth.localcloud.gateway import Gateway
from wsauth.localcloud.spec import ApiSpec, RouteSpec

pytestmark = pytest.mark.timeout(60)

GUARD = 10.0
"""Seconds before an awaited event counts as never coming (a hang guard, not an assertion)."""

OP_CONT, OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x8, 0x9, 0xA


def client_frame(opcode: int, payload: bytes = b"", *, fin: bool = True) -> bytes:
    """One masked frame, as a client must send it (payloads under 126 bytes)."""
    assert len(payload) < 126
    mask = b"\x5a\xa5\x3c\xc3"
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes([(0x80 if fin else 0) | opcode, 0x80 | len(payload)]) + mask + masked


def upgrade_request(port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET /prod HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


async def raw_connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a WebSocket with a bare TCP stream: frames are then the test's to write."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(upgrade_request(port))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), GUARD)
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def read_server_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Read one (unmasked) server frame: its opcode and payload."""
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    return first & 0x0F, await reader.readexactly(length)


class Recorder:
    """An invoker whose every function answers 200; it records events and echoes messages.

    The echo goes back through `POST @connections`, a real HTTP request to the gateway.
    """

    def __init__(self) -> None:
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.port = 0

    async def invoke(self, function_name: str, event: dict[str, Any]) -> Any:
        self.events.put_nowait(event)
        context = event["requestContext"]
        if context["eventType"] == "MESSAGE":
            await self._post(context["connectionId"], event["body"].encode())
        return {"statusCode": 200}

    async def next_event(self, event_type: str) -> dict[str, Any]:
        """The next recorded event of a type, skipping the others."""
        while True:
            event = await asyncio.wait_for(self.events.get(), GUARD)
            if event["requestContext"]["eventType"] == event_type:
                return event

    async def _post(self, connection_id: str, data: bytes) -> None:
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        scope = f"{amz_date[:8]}/us-east-1/execute-api/aws4_request"
        head = (
            f"POST /prod/@connections/{connection_id} HTTP/1.1\r\nHost: localhost\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\nX-Amz-Date: {amz_date}\r\n"
            f"Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{scope}, "
            "SignedHeaders=host;x-amz-date, Signature=abc\r\n\r\n"
        )
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(head.encode() + data)
            await reader.read()
        finally:
            writer.close()


@asynccontextmanager
async def gateway_with(routes: tuple[str, ...]) -> AsyncIterator[tuple[Gateway, Recorder]]:
    recorder = Recorder()
    api = ApiSpec(
        api_id="abc123",
        name="test-api",
        stage="prod",
        route_selection_expression="$request.body.action",
        routes={key: RouteSpec(key, "ws") for key in routes},
    )
    gateway = Gateway(api, recorder, region="us-east-1", port=0)
    await gateway.start()
    recorder.port = gateway.port
    try:
        yield gateway, recorder
    finally:
        await gateway.close()


ECHO_ROUTES = ("$connect", "$disconnect", "$default")

FLOODERS = 2
FLOOD_CHUNK = client_frame(OP_PONG) * (256 * 1024 // 6)
"""What one socket read can hold: ~43,000 empty pongs (no reply, no invocation)."""
ROUNDS = 5
ROUNDS_BOUND = 5.0
"""Seconds for ROUNDS connect-and-echo rounds during the flood: a hang guard, not a timing
(~0.1 s with fair parsing; ~9 s a round when each read was parsed in one go)."""


def blocking_connect(port: int) -> socket.socket:
    """Open a WebSocket on a blocking socket (for a thread to write on) and read the 101."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
    sock.sendall(upgrade_request(port))
    head = b""
    while not head.endswith(b"\r\n\r\n"):  # the 101 has no body, and no frame follows it
        byte = sock.recv(1)
        assert byte, "closed during the handshake"
        head += byte
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def flood(sock: socket.socket, stop: threading.Event, flowing: threading.Event) -> None:
    """Write empty pongs until told to stop; `flowing` is set after a few reads' worth."""
    sock.settimeout(0.5)
    sent = 0
    with sock:
        while not stop.is_set():
            view = memoryview(FLOOD_CHUNK)
            while view and not stop.is_set():
                try:
                    view = view[sock.send(view) :]
                except TimeoutError:
                    continue
                except OSError:
                    return
            sent += len(FLOOD_CHUNK)
            if sent >= 4 * len(FLOOD_CHUNK):
                flowing.set()


def test_a_flood_of_empty_pongs_does_not_stall_other_clients() -> None:
    """Clients flooding empty pong frames do not hold up another client's connect and echo."""

    async def scenario() -> None:
        async with gateway_with(ECHO_ROUTES) as (gateway, _):
            stop = threading.Event()
            threads = []
            try:
                for _ in range(FLOODERS):
                    sock = await asyncio.to_thread(blocking_connect, gateway.port)
                    flowing = threading.Event()
                    thread = threading.Thread(target=flood, args=(sock, stop, flowing))
                    thread.start()
                    threads.append(thread)
                    assert await asyncio.to_thread(flowing.wait, GUARD)

                async def rounds() -> None:
                    for n in range(ROUNDS):
                        async with connect(gateway.websocket_url()) as client:
                            await client.send(f"echo {n}")
                            assert await client.recv() == f"echo {n}"

                await asyncio.wait_for(rounds(), ROUNDS_BOUND)
            finally:
                stop.set()
                for thread in threads:
                    await asyncio.to_thread(thread.join, GUARD)

    asyncio.run(scenario())


def test_endless_empty_continuation_frames_close_1009() -> None:
    """A message kept open with empty continuation frames closes with 1009 past 128 KB."""

    async def scenario() -> None:
        async with gateway_with(ECHO_ROUTES) as (gateway, recorder):
            reader, writer = await raw_connect(gateway.port)
            # GIVEN a text message opened with one byte, WHEN 25,000 empty frames (6 bytes each
            # on the wire, 150 KB) keep it open and a ping follows, THEN a 1009 close answers
            # (the ping's pong would mean the gateway still takes the message).
            frames = client_frame(OP_TEXT, b"x", fin=False)
            frames += client_frame(OP_CONT, fin=False) * 25_000 + client_frame(OP_PING, b"?")
            writer.write(frames)
            with suppress(ConnectionError):
                await writer.drain()
            opcode, payload = await asyncio.wait_for(read_server_frame(reader), GUARD)
            writer.close()
            assert opcode == OP_CLOSE, f"got opcode {opcode:#x} {payload!r}, not a close"
            assert struct.unpack("!H", payload[:2])[0] == 1009
            context = (await recorder.next_event("DISCONNECT"))["requestContext"]
            assert context["disconnectStatusCode"] == 1009

    asyncio.run(scenario())


def test_body_nested_too_deep_to_parse_goes_to_default() -> None:
    """100,000 `[` with a custom route declared goes to $default and the connection stays."""

    async def scenario() -> None:
        async with (
            gateway_with((*ECHO_ROUTES, "sendmessage")) as (gateway, recorder),
            connect(gateway.websocket_url()) as client,
        ):
            await client.send(["[" * 25_000] * 4)  # 25 KB frames: under the 32 KB frame limit
            event = await recorder.next_event("MESSAGE")
            assert event["requestContext"]["routeKey"] == "$default"
            assert await asyncio.wait_for(client.recv(), GUARD) == "[" * 100_000
            await client.send(json.dumps({"action": "sendmessage"}))
            event = await recorder.next_event("MESSAGE")
            assert event["requestContext"]["routeKey"] == "sendmessage"

    asyncio.run(scenario())
