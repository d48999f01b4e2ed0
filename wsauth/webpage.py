"""Serve the demo web page (`wsauth/web/`) configured from a stack's outputs.

The page is three static files and `/config.json`; it calls Cognito and the WebSocket API
directly from the browser, so this server holds no secret and forwards nothing. Used by
`wsauth local` (at its `webPage` output) and by `wsauth web` for any stack.

A thread serves each connection, one request each (HTTP/1.0), and a connection gets
`request_timeout` seconds, in all, to send its request: an idle or trickling client cannot
hold a thread. A client that leaves before its answer is sent costs a debug line, not a
traceback.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from wsauth.outputs import StackOutputs, parse_outputs

__all__ = ["DEFAULT_REQUEST_TIMEOUT", "WebPageServer", "page_config", "serve"]

log = logging.getLogger("wsauth.webpage")

DEFAULT_REQUEST_TIMEOUT = 30.0
"""Seconds a connection has to send its whole request head, and a response to be taken."""

WEB_ROOT = Path(__file__).with_name("web")

# A fixed list rather than a directory listing: nothing else under the package can be served,
# whatever the path says.
_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}


def page_config(outputs: StackOutputs) -> dict[str, str | bool]:
    """What the page needs to know about the stack: the body of `/config.json`.

    Args:
        outputs: The stack's outputs.

    Returns:
        `region`, `userPoolId`, `userPoolWebClientId`, `webSocketEndpoint`,
        `cognitoEndpoint` (the embedded Cognito for the local cloud, else AWS's) and `local`
        (the embedded Cognito sends no email, accepts any code, and lacks a few calls).
    """
    return {
        "region": outputs.region,
        "userPoolId": outputs.user_pool_id,
        "userPoolWebClientId": outputs.user_pool_web_client_id,
        "webSocketEndpoint": outputs.websocket_endpoint,
        "cognitoEndpoint": outputs.cognito_endpoint,
        "local": outputs.is_local,
    }


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _content_security_policy(config: Mapping[str, Any]) -> str:
    # The page talks to exactly two places; anything else (an injected script, a stray URL)
    # is refused by the browser itself.
    connect = " ".join(
        ["'self'", _origin(config["cognitoEndpoint"]), _origin(config["webSocketEndpoint"])]
    )
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {connect}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


class _HeadDeadlineReader(io.RawIOBase):
    """The connection's read side, every read bounded by one deadline for the request head.

    A socket timeout alone bounds each read, so a client sending a byte now and then would
    keep its thread forever.
    """

    def __init__(self, connection: socket.socket, deadline: float) -> None:
        super().__init__()
        self._connection = connection
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the request was not received in time")
        self._connection.settimeout(remaining)
        return self._connection.recv_into(buffer)


class _PageHandler(BaseHTTPRequestHandler):
    server: _PageHTTPServer
    raw_requestline: bytes
    server_version = "wsauth-web"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.rfile.close()
        deadline = time.monotonic() + self.server.request_timeout
        self.rfile = io.BufferedReader(_HeadDeadlineReader(self.connection, deadline))

    def parse_request(self) -> bool:
        if len(self.raw_requestline.split()) == 2:
            # `GET /` alone is an HTTP/0.9 request, which has no headers; http.server would
            # wait for some (and a blank line) forever. No browser sends one: refuse it now,
            # with a status line a person at a terminal can read.
            self.command = ""
            self.requestline = self.raw_requestline.decode("latin-1").rstrip("\r\n")
            self.request_version = "HTTP/1.0"
            self.close_connection = True
            self.connection.settimeout(self.server.request_timeout)
            self.send_error(
                HTTPStatus.HTTP_VERSION_NOT_SUPPORTED,
                explain="HTTP/0.9 is not served: send e.g. GET / HTTP/1.0 and a blank line.",
            )
            return False
        parsed = super().parse_request()
        # The head is in: the answer gets its own time to be taken.
        self.connection.settimeout(self.server.request_timeout)
        return parsed

    def do_GET(self) -> None:
        self._respond(send_body=True)

    def do_HEAD(self) -> None:
        self._respond(send_body=False)

    def _respond(self, *, send_body: bool) -> None:
        path = urlsplit(self.path).path
        if path == "/config.json":
            body = self.server.config_body
            content_type = "application/json"
        elif path in _FILES:
            name, content_type = _FILES[path]
            body = (WEB_ROOT / name).read_bytes()
        else:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        # Always fresh: a page from an earlier stack pointing at old endpoints is confusing.
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", self.server.content_security_policy)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        # Quiet: `wsauth local` and `wsauth web` print their own lines; per-request logs would
        # drown them.
        return


class _PageHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog is 5: in a burst (a browser opening its connections, a
    # page reloaded by several tabs) every further SYN was dropped and retried a second later.
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], config: Mapping[str, Any], request_timeout: float
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.request_timeout = request_timeout
        super().__init__(address, _PageHandler)
        self.config_body = json.dumps(dict(config), indent=2).encode()
        self.content_security_policy = _content_security_policy(config)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            # The client left (closed the tab, cancelled a load) or went silent: theirs, not
            # a fault of the server.
            log.debug("web page: %s: %s", client_address[0], error)
            return
        super().handle_error(request, client_address)


class WebPageServer:
    """The page server running in a background thread; `close()` stops it."""

    def __init__(self, httpd: _PageHTTPServer, host: str) -> None:
        self._httpd = httpd
        # A short poll interval: close() waits for the loop to notice the shutdown.
        self._thread = threading.Thread(
            target=httpd.serve_forever, args=(0.05,), name="wsauth-web-page", daemon=True
        )
        self._thread.start()
        port = httpd.server_address[1]
        # A wildcard address is where the server listens, not somewhere a browser can go.
        shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, host)
        if ":" in shown and not shown.startswith("["):
            shown = f"[{shown}]"
        self.url = f"http://{shown}:{port}/"
        """Where the page is, e.g. `http://127.0.0.1:8000/`."""
        self.port = port

    def close(self) -> None:
        """Stop serving and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> WebPageServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def serve(
    outputs: Mapping[str, str],
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
) -> WebPageServer:
    """Start serving the page for a stack.

    Args:
        outputs: The stack outputs (the local cloud's, or `pulumi stack output --json`).
        host: Address to listen on.
        port: Port to listen on; 0 picks a free one (see `WebPageServer.url`).
        request_timeout: Seconds a connection has to send its request (then it is closed),
            and again to take its answer.

    Returns:
        The running server.

    Raises:
        OutputsError: An output the page needs is missing.
        OSError: The address cannot be bound (port in use, …).
    """
    config = page_config(parse_outputs(outputs, "stack outputs"))
    httpd = _PageHTTPServer((host, port), config, request_timeout)
    return WebPageServer(httpd, host)
