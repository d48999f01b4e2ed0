"""The page server under bursts, idle and trickling clients, and clients that leave early."""

from __future__ import annotations

import logging
import select
import socket
import struct
import time
from collections.abc import Iterator

import pytest

from wsauth.localcloud.testing import eventually
from wsauth.webpage import WebPageServer, serve

from .samples import LOCAL_OUTPUTS

REQUEST_TIMEOUT = 0.5
"""The page server's `request_timeout` here: short, so the tests see it act."""


@pytest.fixture
def page() -> Iterator[WebPageServer]:
    server = serve(LOCAL_OUTPUTS, request_timeout=REQUEST_TIMEOUT)
    yield server
    server.close()


def _connect(page: WebPageServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", page.port), timeout=10)


def _read_all(sock: socket.socket) -> bytes:
    """Read until the server closes the connection (every answer here is HTTP/1.0)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_burst_of_connects_is_not_held_back(page: WebPageServer) -> None:
    """Fifty connects in a row all complete at once (none waits out a dropped SYN's
    one-second retry) and each is then answered."""
    sockets: list[socket.socket] = []
    slowest = 0.0
    try:
        for _ in range(50):
            began = time.monotonic()
            sockets.append(_connect(page))
            slowest = max(slowest, time.monotonic() - began)
        for sock in sockets:
            sock.sendall(b"GET /config.json HTTP/1.0\r\n\r\n")
        answers = [_read_all(sock) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    assert slowest < 0.9
    assert all(answer.startswith(b"HTTP/1.0 200 ") for answer in answers)


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET / HTTP/1.0\r\n", b"GET / HTTP/1.0\r\nHost: x"],
    ids=["idle", "head-without-blank-line", "header-cut-short"],
)
def test_incomplete_request_is_closed_after_the_timeout(page: WebPageServer, sent: bytes) -> None:
    """A connection that does not finish its request is closed once `request_timeout` passes."""
    with _connect(page) as sock:
        sock.sendall(sent)
        began = time.monotonic()
        assert _read_all(sock) == b""
        waited = time.monotonic() - began
    assert REQUEST_TIMEOUT * 0.8 <= waited < REQUEST_TIMEOUT + 4


def test_trickling_client_is_closed_at_the_deadline(page: WebPageServer) -> None:
    """A client sending its request a byte at a time, never idle for long, is still closed."""
    header = b"GET / HTTP/1.0\r\nX-Slow: " + b"x" * 200
    with _connect(page) as sock:
        began = time.monotonic()
        for byte in header:
            # Each pause is well under the timeout; the server closing ends the loop.
            if select.select([sock], [], [], REQUEST_TIMEOUT / 5)[0]:
                break
            sock.sendall(bytes([byte]))
        assert sock.recv(1024) == b""
        waited = time.monotonic() - began
    assert waited < REQUEST_TIMEOUT + 4


def test_client_leaving_early_leaves_no_traceback(
    page: WebPageServer, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A client gone before its answer is sent costs a short debug line, never a traceback."""
    caplog.set_level(logging.DEBUG, logger="wsauth.webpage")
    for _ in range(10):
        sock = _connect(page)
        # The request and the close leave in one segment (corked): the answer then reaches
        # a socket already closed, which resets the connection under the server's writes.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 0, 0))
        sock.sendall(b"GET /app.js HTTP/1.0\r\n\r\n")
        sock.close()

    def page_server_records() -> list[logging.LogRecord]:
        return [record for record in caplog.records if record.name == "wsauth.webpage"]

    left = eventually(page_server_records, timeout=5)

    assert all("\n" not in record.getMessage() for record in left)
    assert all(record.exc_info is None for record in left)
    assert "Traceback" not in capfd.readouterr().err


def test_bare_get_is_refused_at_once(page: WebPageServer) -> None:
    """`GET /` with no version and no headers (HTTP/0.9) is answered, not left waiting."""
    with _connect(page) as sock:
        sock.settimeout(REQUEST_TIMEOUT / 2)  # well before the request timeout would close it
        sock.sendall(b"GET /\r\n")
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.0 505 ")
