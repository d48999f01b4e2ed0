"""One bounded HTTP GET of the JWKS document, whatever the server does.

The whole fetch (DNS lookup, connect, TLS, request, headers, body) fits in one deadline: it runs
in a thread of its own, and at the deadline the caller stops waiting and shuts the socket, which
ends the thread too. So no per-operation timeout needs resetting between reads, a server that
drips bytes or a resolver that hangs cannot hold the authorizer past the deadline, and the
socket is never touched after `http.client` closed it (a server that answers with
`Connection: close`, or HTTP/1.0, makes it close the socket inside the response under Python
3.13). `http.client` parses every framing: Content-Length, chunked, or read until close.

Standard library only: imported on a cold start's first fetch, never by the echo path.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import urllib.parse
from typing import Any

__all__ = ["FetchFailed", "fetch"]


class FetchFailed(Exception):
    """The document could not be had; the message says why (never a secret)."""


_TLS_CONTEXT: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    global _TLS_CONTEXT
    if _TLS_CONTEXT is None:
        _TLS_CONTEXT = ssl.create_default_context()
    return _TLS_CONTEXT


_running: _Attempt | None = None
_ABANDON_GRACE_SECONDS = 0.1


def fetch(url: str, *, deadline_seconds: float, max_bytes: int) -> bytes:
    """GET `url` and return the body of a 200 answer.

    Args:
        url: An http or https URL with a host.
        deadline_seconds: Everything, the DNS lookup included, ends within this.
        max_bytes: A longer body is refused.

    Returns:
        The body.

    Raises:
        FetchFailed: Timed out, not 200, too large, incomplete, any network or protocol
            error, or an earlier attempt is still running.
    """
    global _running
    # One attempt at a time: one abandoned in a DNS lookup that hangs still runs.
    if _running is not None and not _running.done.is_set():
        raise FetchFailed("an earlier JWKS fetch is still running")
    attempt = _running = _Attempt(url, deadline_seconds, max_bytes)
    thread = threading.Thread(target=attempt.run, name="jwks-fetch", daemon=True)
    thread.start()
    if not attempt.done.wait(deadline_seconds):
        attempt.abandon()
        # A shut socket ends the thread at once; only a DNS lookup outlives this wait.
        attempt.done.wait(_ABANDON_GRACE_SECONDS)
        raise FetchFailed("JWKS fetch timed out")
    if attempt.error is not None:
        raise FetchFailed(attempt.error)
    assert attempt.body is not None
    return attempt.body


class _Attempt:
    """One fetch, run on its own thread; abandoned at the deadline."""

    def __init__(self, url: str, deadline_seconds: float, max_bytes: int) -> None:
        self.url = url
        self.deadline_seconds = deadline_seconds
        self.max_bytes = max_bytes
        self.done = threading.Event()
        self.body: bytes | None = None
        self.error: str | None = None
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._abandoned = False

    def run(self) -> None:
        try:
            self.body = self._get()
        except FetchFailed as failure:
            self.error = str(failure)
        except TimeoutError:  # the socket's own timeout, a hair before the caller's wait
            self.error = "JWKS fetch timed out"
        except Exception as error:  # a thread must report its failure, never die silently
            self.error = f"JWKS fetch failed: {type(error).__name__}"
        finally:
            self._shut()
            self.done.set()

    def abandon(self) -> None:
        """Stop the attempt: a blocked read or write returns at once (a DNS lookup cannot)."""
        with self._lock:
            self._abandoned = True
        self._shut()

    def _shut(self) -> None:
        with self._lock:
            sock, self._socket = self._socket, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # never connected, or already closed by the peer
            sock.close()

    def _keep(self, sock: socket.socket) -> None:
        with self._lock:
            if not self._abandoned:
                self._socket = sock
                return
        sock.close()
        raise FetchFailed("JWKS fetch timed out")

    def _get(self) -> bytes:
        parts = urllib.parse.urlsplit(self.url)
        host = parts.hostname or ""
        https = parts.scheme == "https"
        port = parts.port or (443 if https else 80)
        # The lookup and the connect happen here, on this thread, inside the deadline.
        sock: Any = socket.create_connection((host, port), timeout=self.deadline_seconds)
        self._keep(sock)
        conn: http.client.HTTPConnection
        if https:
            sock = _tls_context().wrap_socket(sock, server_hostname=host)
            self._keep(sock)
            conn = http.client.HTTPSConnection(host, port)
        else:
            conn = http.client.HTTPConnection(host, port)
        conn.sock = sock  # already connected: http.client only frames the exchange
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
        conn.request("GET", path, headers={"Accept": "application/json", "Connection": "close"})
        response = conn.getresponse()
        if response.status != 200:
            raise FetchFailed(f"JWKS answered HTTP {response.status}")
        length = response.getheader("Content-Length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            raise FetchFailed("JWKS answer too large")
        body = response.read(self.max_bytes + 1)
        if len(body) > self.max_bytes:
            raise FetchFailed("JWKS answer too large")
        if response.length:  # Content-Length promised more than the server sent
            raise FetchFailed("JWKS answer incomplete")
        return body
