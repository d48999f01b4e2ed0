"""The JWKS fetch against every kind of HTTP server, under each Python that Lambda runs.

`http.client` changed between 3.11 and 3.13 (it closes a `Connection: close` socket inside the
response), so the fetch runs in a fresh interpreter of each runtime we deploy, against loopback
servers of each kind: keep-alive, `Connection: close`, HTTP/1.0, chunked, read until close; and
against the faults a deadline must bound (a drip, a truncated body, a DNS lookup that hangs).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pulumi_wsauth.interpreters import find_python

FETCH_MODULE = Path(__file__).resolve().parents[2] / "handlers" / "jwks_fetch.py"
DOCUMENT = json.dumps({"keys": [{"kid": "k1", "kty": "RSA", "n": "AQAB", "e": "AQAB"}]}).encode()
GOOD_KINDS = ("keep-alive", "close", "http10", "chunked", "until-close")
RUNTIMES = ("3.12", "3.13", f"{sys.version_info.major}.{sys.version_info.minor}")


def _answer(kind: str) -> tuple[bytes, bool]:
    """The bytes a server of `kind` sends, and whether it then keeps the connection open."""
    length = f"Content-Length: {len(DOCUMENT)}\r\n".encode()
    json_type = b"Content-Type: application/json\r\n"
    if kind == "keep-alive":
        return b"HTTP/1.1 200 OK\r\n" + json_type + length + b"\r\n" + DOCUMENT, True
    if kind == "close":
        head = b"HTTP/1.1 200 OK\r\n" + json_type + length + b"Connection: close\r\n\r\n"
        return head + DOCUMENT, False
    if kind == "http10":  # what Python's own http.server sends
        return b"HTTP/1.0 200 OK\r\n" + json_type + length + b"\r\n" + DOCUMENT, False
    if kind == "chunked":
        chunks = [DOCUMENT[:10], DOCUMENT[10:40], DOCUMENT[40:]]
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"
        return (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" + json_type + b"\r\n" + body,
            True,
        )
    if kind == "until-close":
        return b"HTTP/1.0 200 OK\r\n" + json_type + b"\r\n" + DOCUMENT, False
    if kind == "truncated":
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(DOCUMENT) + 10}\r\n\r\n".encode()
        return head + DOCUMENT, False
    raise ValueError(kind)


class KindsServer:
    """A raw loopback HTTP server: the path names the kind of server to be."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            self._answer(client)
        except OSError:
            pass  # the fetch gave up on us (the drip): exactly what is tested

    def _answer(self, client: socket.socket) -> None:
        with client:
            client.settimeout(10)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            kind = head.split(b" ", 2)[1].decode().strip("/")
            if kind == "drip":  # one byte per 50 ms: only a whole-fetch deadline stops it
                client.sendall(
                    f"HTTP/1.1 200 OK\r\nContent-Length: {len(DOCUMENT)}\r\n\r\n".encode()
                )
                for byte in DOCUMENT:
                    if self.stop.wait(0.05):
                        return
                    client.sendall(bytes([byte]))
                return
            answer, keep_open = _answer(kind)
            client.sendall(answer)
            if keep_open:  # a keep-alive server waits for the next request, or for the close
                try:
                    client.recv(4096)
                except OSError:
                    pass

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


@pytest.fixture(scope="module")
def kinds_server() -> Iterator[KindsServer]:
    server = KindsServer()
    yield server
    server.close()


# Run in the interpreter under test, with nothing but the standard library (`-S`).
SCRIPT = """
import importlib.util, json, socket, sys, threading, time

spec = importlib.util.spec_from_file_location("jwks_fetch", sys.argv[1])
jwks_fetch = importlib.util.module_from_spec(spec)
spec.loader.exec_module(jwks_fetch)
base = sys.argv[2]
results = {}

def attempt(label, url, deadline):
    started = time.monotonic()
    try:
        body = jwks_fetch.fetch(url, deadline_seconds=deadline, max_bytes=65536)
        results[label] = {"body": body.decode()}
    except jwks_fetch.FetchFailed as failure:
        results[label] = {"error": str(failure)}
    results[label]["seconds"] = time.monotonic() - started

for kind in sys.argv[3].split(","):
    attempt(kind, f"{base}/{kind}", 5.0)
attempt("drip", f"{base}/drip", 0.5)
attempt("truncated", f"{base}/truncated", 5.0)

# A resolver that hangs: the lookup is inside the deadline, and while it still runs no second
# attempt starts.
release = threading.Event()
real_getaddrinfo = socket.getaddrinfo
def hanging_getaddrinfo(*args, **kwargs):
    release.wait(60)
    return real_getaddrinfo(*args, **kwargs)
socket.getaddrinfo = hanging_getaddrinfo
attempt("dns", "http://jwks.example.invalid/keys", 0.5)
attempt("while-dns-runs", f"{base}/close", 5.0)
socket.getaddrinfo = real_getaddrinfo
release.set()
jwks_fetch._running.done.wait(10)
attempt("after-dns", f"{base}/close", 5.0)
print(json.dumps(results))
"""


@pytest.fixture(scope="module", params=RUNTIMES)
def fetch_results(request: pytest.FixtureRequest, kinds_server: KindsServer) -> dict:
    """What one interpreter's fetch made of every kind of server."""
    python = find_python(request.param)
    if python is None:
        pytest.skip(
            f"Python {request.param} (a Lambda runtime) is not installed: put python"
            f"{request.param} on PATH, or install it with pyenv or uv, to test the fetch under it"
        )
    completed = subprocess.run(
        [
            str(python.path),
            "-S",
            "-c",
            SCRIPT,
            str(FETCH_MODULE),
            f"http://127.0.0.1:{kinds_server.port}",
            ",".join(GOOD_KINDS),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


@pytest.mark.parametrize("kind", GOOD_KINDS)
def test_every_kind_of_server_is_read_whole(fetch_results: dict, kind: str) -> None:
    """Keep-alive, close, HTTP/1.0, chunked and read-until-close answers all give the document."""
    assert fetch_results[kind].get("body") == DOCUMENT.decode(), fetch_results[kind]


def test_a_drip_ends_at_the_deadline(fetch_results: dict) -> None:
    """A server sending a byte now and then cannot stretch the fetch past its deadline."""
    assert fetch_results["drip"]["error"] == "JWKS fetch timed out"
    assert fetch_results["drip"]["seconds"] < 5  # the drip alone would take about 9 s


def test_a_truncated_body_is_refused(fetch_results: dict) -> None:
    """A body shorter than its Content-Length is not taken for a key set."""
    assert fetch_results["truncated"].get("error") == "JWKS answer incomplete"


def test_the_dns_lookup_counts_inside_the_deadline(fetch_results: dict) -> None:
    """A resolver that hangs for a minute ends the fetch at its deadline."""
    assert fetch_results["dns"]["error"] == "JWKS fetch timed out"
    assert fetch_results["dns"]["seconds"] < 5


def test_one_attempt_at_a_time(fetch_results: dict) -> None:
    """While an abandoned attempt is still resolving, the next fails at once; then all is well."""
    assert fetch_results["while-dns-runs"]["error"] == "an earlier JWKS fetch is still running"
    assert fetch_results["while-dns-runs"]["seconds"] < 1
    assert fetch_results["after-dns"].get("body") == DOCUMENT.decode()
