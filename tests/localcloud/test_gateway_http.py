"""The gateway's HTTP side under abuse: slow, idle, oversized and malformed requests.

Real sockets on port 0, as in `test_gateway.py`, whose helpers these tests share.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
import time
from typing import Any

import pytest

from tests.localcloud.test_gateway import (
    GUARD,
    _read_response,
    _request_bytes,
    make_api,
    ok,
    serving,
    signed_headers,
)
from wsauth.localcloud.gateway import server
from wsauth.localcloud.spec import Limits

pytestmark = pytest.mark.timeout(60)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
TIMEOUT = 0.5
"""The shortened request timeout (AWS-like default: 30 s)."""


def handshake(
    *, version: str = "HTTP/1.1", host: str | None = "localhost", extra: str = ""
) -> bytes:
    lines = [
        f"GET /prod {version}",
        *([f"Host: {host}"] if host is not None else []),
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Version: 13",
        f"Sec-WebSocket-Key: {KEY}",
    ]
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode("latin-1")


def management_head(path: str, length: int) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: localhost", f"Content-Length: {length}"]
    return ("\r\n".join([*lines, *signed_headers()]) + "\r\n\r\n").encode()


# Item 3: the request timeout.


@pytest.mark.parametrize(
    ("sent", "answer"),
    [
        (b"", None),
        (b"GET /prod HTTP/1.1\r\nHost: localhost\r\n", 408),
        (management_head("/prod/@connections/abc", 10) + b"abc", 408),
        (_request_bytes("GET", "/prod/@connections/abc", b"", signed=True, close=False), 410),
    ],
    ids=["no-bytes", "partial-head", "partial-body", "idle-keep-alive"],
)
def test_incomplete_or_idle_connection_is_closed_after_the_request_timeout(
    sent: bytes, answer: int | None
) -> None:
    """A connection without a whole request within the timeout is answered 408 and closed."""

    async def scenario() -> None:
        api = make_api(limits=Limits(request_timeout_seconds=TIMEOUT))
        async with serving({"ws": ok}, api) as stack:
            reader, writer = await asyncio.open_connection("127.0.0.1", stack.gateway.port)
            started = time.monotonic()
            writer.write(sent)
            if answer is not None:
                status, _, _ = await asyncio.wait_for(_read_response(reader), GUARD)
                assert status == answer
            assert await asyncio.wait_for(reader.read(), GUARD) == b""  # closed by the gateway
            assert time.monotonic() - started >= TIMEOUT * 0.9
            writer.close()

    asyncio.run(scenario())


def test_a_request_completed_in_time_is_served_after_a_slow_start() -> None:
    """The timeout bounds each request, not the connection: kept-alive requests go on."""

    async def scenario() -> None:
        api = make_api(limits=Limits(request_timeout_seconds=TIMEOUT))
        async with serving({"ws": ok}, api) as stack:
            reader, writer = await asyncio.open_connection("127.0.0.1", stack.gateway.port)
            request = _request_bytes("GET", "/prod/@connections/abc", b"", signed=True, close=False)
            for _ in range(3):
                writer.write(request)
                status, _, _ = await asyncio.wait_for(_read_response(reader), GUARD)
                assert status == 410
            writer.close()

    asyncio.run(scenario())


# Item 4: @connections bodies.


@pytest.mark.parametrize("length", [128 * 1024 + 1, 4 * 1024 * 1024])
def test_oversized_content_length_is_413_before_the_body_is_sent(length: int) -> None:
    """A declared body past 128 KB is refused from the head alone, unsigned or not."""

    async def scenario() -> None:
        async with serving({"ws": ok}) as stack:
            reader, writer = await asyncio.open_connection("127.0.0.1", stack.gateway.port)
            writer.write(
                f"POST /prod/@connections/abc HTTP/1.1\r\nHost: localhost\r\n"
                f"Content-Length: {length}\r\n\r\n".encode()
            )
            status, headers, body = await asyncio.wait_for(_read_response(reader), GUARD)
            assert status == 413
            assert headers["x-amzn-errortype"] == "PayloadTooLargeException"
            assert json.loads(body) == {"message": "Request entity too large"}
            # The gateway shut its side at once: it waits for nothing of the body.
            assert await asyncio.wait_for(reader.read(), GUARD) == b""
            writer.close()

    asyncio.run(scenario())


def test_head_is_parsed_once_while_the_body_arrives(monkeypatch: pytest.MonkeyPatch) -> None:
    """A head and body sent in many segments are scanned as they come and parsed once."""
    parsed: list[bytes] = []
    received: asyncio.Queue[None] = asyncio.Queue()
    parse_head, data_received = server.parse_head, server._Connection.data_received

    def counting_parse_head(head: bytes) -> Any:
        parsed.append(head)
        return parse_head(head)

    def noting_data_received(self: server._Connection, data: bytes) -> None:
        data_received(self, data)
        received.put_nowait(None)

    monkeypatch.setattr(server, "parse_head", counting_parse_head)
    monkeypatch.setattr(server._Connection, "data_received", noting_data_received)

    async def scenario() -> None:
        async with serving({"ws": ok}) as stack:
            reader, writer = await asyncio.open_connection("127.0.0.1", stack.gateway.port)
            segments = 8
            head = management_head("/prod/@connections/abc", segments)
            # One byte a segment, each sent once the gateway has read the one before: the end
            # of the head is split at every point, and each segment is seen on its own.
            for byte in [*(head[i : i + 1] for i in range(len(head))), *[b"x"] * segments]:
                writer.write(byte)
                await asyncio.wait_for(received.get(), GUARD)
            status, _, _ = await asyncio.wait_for(_read_response(reader), GUARD)
            assert status == 410
            assert len(parsed) == 1
            writer.close()

    asyncio.run(scenario())


# Item 9: what API Gateway refuses.


@pytest.mark.parametrize(
    "raw",
    [
        handshake(version="HTTP/1.0"),
        handshake(host=None),
        handshake(extra="User-Agent: a\x00b\r\n"),
        handshake(extra="User-Agent: a\nX-Injected: b\r\n"),
        handshake(extra="User-Agent: a\rb\r\n"),
        handshake(extra="X\x00Name: b\r\n"),
    ],
    ids=["http-1.0", "no-host", "nul-in-value", "bare-lf-in-value", "bare-cr-in-value", "nul-name"],
)
def test_handshakes_api_gateway_refuses_are_400(raw: bytes) -> None:
    """HTTP/1.0, no Host, or NUL, CR or LF inside a header: 400, and no function runs."""

    async def scenario() -> None:
        async with serving({"ws": ok}) as stack:
            reader, writer = await asyncio.open_connection("127.0.0.1", stack.gateway.port)
            writer.write(raw)
            status, _, _ = await asyncio.wait_for(_read_response(reader), GUARD)
            writer.close()
            assert status == 400
            assert stack.invoker.events["ws"].empty()

    asyncio.run(scenario())


def test_a_valid_raw_handshake_is_accepted() -> None:
    """The raw handshake the refusal cases vary is itself a good one (101)."""

    async def scenario() -> None:
        async with serving({"ws": ok}) as stack:
            reader, writer = await asyncio.open_connection("127.0.0.1", stack.gateway.port)
            writer.write(handshake())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), GUARD)
            writer.close()
            assert head.startswith(b"HTTP/1.1 101 ")

    asyncio.run(scenario())


@pytest.mark.parametrize("method", ["POST", "GET", "DELETE"])
@pytest.mark.parametrize("path", ["/dev/@connections/abc", "/prod/@connections"])
def test_connections_on_an_unknown_stage_is_403_missing_authentication_token(
    method: str, path: str
) -> None:
    """A stage or resource the API does not have answers as AWS does: 403, not 404."""

    async def scenario() -> None:
        async with serving({"ws": ok}) as stack:
            reader, writer = await asyncio.open_connection("127.0.0.1", stack.gateway.port)
            request = _request_bytes(method, path, b"x", signed=True, close=False)
            writer.write(request + request)  # kept alive: the body was read, the next is served
            for _ in range(2):
                status, headers, body = await asyncio.wait_for(_read_response(reader), GUARD)
                assert status == 403
                assert headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
                assert json.loads(body) == {"message": "Missing Authentication Token"}
            writer.close()

    asyncio.run(scenario())


# Item 3: running out of descriptors.

_EXHAUSTED_GATEWAY = textwrap.dedent(
    """
    import asyncio, logging, os, resource, sys

    from wsauth.localcloud.gateway import Gateway
    from wsauth.localcloud.spec import ApiSpec, RouteSpec

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")

    async def main():
        api = ApiSpec("abc123", "test-api", "prod", "$request.body.action", {})
        gateway = Gateway(api, None, region="us-east-1", port=0)
        await gateway.start()
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 4, hard))
        print(gateway.port, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await gateway.close()

    asyncio.run(main())
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts /proc/self/fd")
def test_out_of_descriptors_is_one_calm_log_line() -> None:
    """accept() failing for want of descriptors logs one line, not a traceback per try."""

    async def scenario() -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _EXHAUSTED_GATEWAY,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert process.stdin and process.stdout and process.stderr
        try:
            port = int(await asyncio.wait_for(process.stdout.readline(), GUARD))
            clients = [await asyncio.open_connection("127.0.0.1", port) for _ in range(16)]
            first = await asyncio.wait_for(process.stderr.readline(), GUARD)
            process.stdin.close()
            rest = await asyncio.wait_for(process.stderr.read(), GUARD)
            assert await asyncio.wait_for(process.wait(), GUARD) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        for _, writer in clients:
            writer.close()
        log = (first + rest).decode()
        assert "cannot accept connections (Too many open files)" in first.decode()
        assert log.count("cannot accept connections") == 1
        assert "Traceback" not in log

    asyncio.run(scenario())
