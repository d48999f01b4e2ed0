"""The embedded AWS: moto's server, in a child process, serving Cognito and DynamoDB.

A child process rather than a thread of the local cloud: moto answers each request in a few
milliseconds of pure Python, and in-process those milliseconds hold the GIL the gateway's event
loop needs (every `$connect` and `$disconnect` writes the table). Its own process also gives it
the machine's second core. moto's `ThreadedMotoServer` is not used either way: when its port is
taken the bind fails on its thread and it waits forever; here the child binds first and reports
the bound port, or the error, on its stdout.

The child exits when its stdin closes, so it never outlives the local cloud, even one killed
with SIGKILL.
"""

from __future__ import annotations

import contextlib
import email.utils
import io
import os
import re
import socket
import socketserver
import subprocess
import sys
import threading
import time
import traceback
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

__all__ = ["FAKE_CREDENTIALS", "EmbeddedAws"]

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # noqa: S105 - moto accepts any credentials
    "AWS_SESSION_TOKEN": "testing",
}
"""What boto3 needs to sign requests; moto accepts anything."""


class EmbeddedAws:
    """moto's server on `host:port` (0 picks a free port), in a child process.

    Args:
        host: Interface to bind.
        port: TCP port, 0 for any free one.
        region: Region clients use by default.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, region: str = "us-east-1"):
        self.host = host
        self.region = region
        self._requested_port = port
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it listens.

        Raises:
            OSError: The port cannot be bound (taken, or not allowed).
        """
        package_root = str(Path(__file__).resolve().parents[2])
        python_path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "wsauth.localcloud.aws", self.host, str(self._requested_port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": python_path},
            # Not in our process group: Ctrl-C in a terminal is ours to handle, in order.
            start_new_session=True,
        )
        assert self._process.stdout is not None
        status = self._process.stdout.readline().decode().split(maxsplit=2)
        if len(status) >= 2 and status[0] == "listening":
            self._port = int(status[1])
            return
        self.stop()
        if len(status) == 3 and status[0] == "error":
            raise OSError(int(status[1]), status[2].strip())
        raise OSError(f"moto server did not start (status {status!r})")

    @property
    def port(self) -> int:
        """The bound port."""
        if self._port is None:
            raise RuntimeError("EmbeddedAws.start() was not called")
        return self._port

    @property
    def pid(self) -> int | None:
        """The server process's pid, while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def endpoint(self) -> str:
        """The `endpoint_url` for boto3 (Cognito, DynamoDB, IAM, ... all on one port)."""
        return f"http://{self.host}:{self.port}"

    def client(self, service: str) -> Any:
        """Return a boto3 client for `service` pointed at this server."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
        )

    def stop(self) -> None:
        """Stop the server (closing its stdin) and wait for it."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


# Services the handlers call on every connect and disconnect (and DynamoDB Streams, which signs
# as `dynamodb`); other requests (and unsigned ones, such as the JWKS GET) go through moto's own
# dispatch.
_DIRECT_SERVICES = frozenset({"dynamodb", "cognito-idp"})
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")


class _SignedServiceDispatch:
    """WSGI front of moto that routes signed requests by their SigV4 credential scope.

    moto's dispatcher guesses the service for every request (listing its own package directory
    each time, a fifth of a DynamoDB `PutItem`'s server time); the signature already names the
    service, so for the hot ones the backend app is looked up once and reused. Those apps run
    with Flask's debug mode off: moto turns it on, and it only adds per-request form-data
    checks (a moto error still answers 500, from Flask instead of the server).
    """

    def __init__(self, moto_app: Any) -> None:
        self._moto_app = moto_app
        self._apps: dict[str, Any] = {}
        self._lock = threading.Lock()
        # DynamoDB writes are atomic per item, conditions included; moto's are not across
        # threads, so its requests run one at a time (see moto_gaps).
        self._dynamodb_turn = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        match = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        service = match.group(1) if match else None
        if service not in _DIRECT_SERVICES:
            return self._moto_app(environ, start_response)
        if service == "dynamodb" and environ.get("HTTP_X_AMZ_TARGET", "").startswith(
            "DynamoDBStreams_"
        ):
            # DynamoDB Streams signs as `dynamodb` too; its API is another service's.
            service = "dynamodbstreams"
        app = self._apps.get(service)
        if app is None:
            with self._lock:
                app = self._apps.get(service)
                if app is None:
                    app = self._moto_app.create_app(service)
                    app.debug = False
                    self._apps[service] = app
        if service in ("dynamodb", "dynamodbstreams"):
            # The stream's records are written by the table's requests: one turn for both.
            with self._dynamodb_turn:
                return app(environ, start_response)
        return app(environ, start_response)


class _WsgiServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """A lean HTTP/1.1 server for moto's WSGI app: one thread per kept-alive connection.

    Werkzeug's development server answers every request with `Connection: close` (by design:
    `http.server` cannot drain a body it did not read), so every `PutItem`/`DeleteItem` of the
    handlers paid a new TCP connection in botocore and a new thread here; its head parsing
    goes through the email package too. Measured on a `PutItem` with a kept-alive boto3
    client: server CPU 1.6 → 1.0 ms per request, client CPU 1.27 → 1.11 ms, round trip 2.7 →
    2.1 ms. It serves what the local cloud's clients send (boto3, the JWKS GET, browsers'
    Cognito calls): `Content-Length` or chunked bodies, keep-alive, `Expect: 100-continue`.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: Any) -> None:
        self.app = app
        super().__init__(address, _WsgiConnection)


class _WsgiConnection(socketserver.StreamRequestHandler):
    server: _WsgiServer

    def setup(self) -> None:
        super().setup()
        # A response goes out at once, not held by Nagle behind an unacknowledged earlier write.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError, TimeoutError):
            while self._serve_one():
                pass

    def _serve_one(self) -> bool:
        rfile = self.rfile
        line = rfile.readline(_MAX_LINE)
        while line in (b"\r\n", b"\n"):  # stray blank lines between requests are allowed
            line = rfile.readline(_MAX_LINE)
        if not line:
            return False
        try:
            method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ")
        except ValueError:
            self._reply_error(400)
            return False
        environ = self._environ(method, target, version)
        for _ in range(_MAX_HEADERS):
            line = rfile.readline(_MAX_LINE)
            if line in (b"\r\n", b"\n", b""):
                break
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep or name != name.strip():
                self._reply_error(400)
                return False
            key = name.upper().replace("-", "_")
            if "_" in name:
                continue  # as Werkzeug: X_Foo must not pass for X-Foo
            value = value.strip()
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
                if key in environ:
                    value = f"{environ[key]},{value}"
            environ[key] = value
        else:
            self._reply_error(431)
            return False
        keep_alive = _keeps_alive(version, environ.get("HTTP_CONNECTION", ""))
        if environ.get("HTTP_EXPECT", "").lower() == "100-continue":
            self.connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            body = self._read_chunked()
            environ["CONTENT_LENGTH"] = str(len(body))
        else:
            length = environ.get("CONTENT_LENGTH", "0") or "0"
            if not length.isdigit():
                self._reply_error(400)
                return False
            body = rfile.read(int(length))
        environ["wsgi.input"] = io.BytesIO(body)
        self._respond(environ, method, keep_alive)
        return keep_alive

    def _environ(self, method: str, target: str, version: str) -> dict[str, Any]:
        raw_path, _, query = target.partition("?")
        host, port = self.server.server_address[:2]
        return {
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "SERVER_SOFTWARE": "wsauth-local",
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            # WSGI strings are bytes decoded as latin-1, as Werkzeug's server passes them.
            "PATH_INFO": unquote_to_bytes(raw_path).decode("latin-1"),
            "QUERY_STRING": query,
            "REQUEST_URI": target,
            "RAW_URI": target,
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_PORT": self.client_address[1],
            "SERVER_NAME": host,
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": version,
        }

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self.rfile.readline(_MAX_LINE).split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline(_MAX_LINE)

    def _respond(self, environ: dict[str, Any], method: str, keep_alive: bool) -> None:
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None):
            started[:] = [status, headers]
            return lambda data: chunks.append(data)  # the legacy write() callable

        chunks: list[bytes] = []
        try:
            result = self.server.app(environ, start_response)
            try:
                chunks.extend(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception:  # a moto bug is a 500 for that request, as Werkzeug answered it
            traceback.print_exc()
            started[:] = ["500 Internal Server Error", [("Content-Type", "text/plain")]]
            chunks[:] = [b"Internal Server Error"]
        body = b"".join(chunks)
        status, headers = started
        head = [f"HTTP/1.1 {status}"]
        head += [f"{name}: {value}" for name, value in headers if name.lower() not in _FRAMING]
        if not any(name.lower() == "date" for name, _ in headers):
            # A real server's Date, as Werkzeug's added it (botocore reads it for clock skew).
            head.append(f"Date: {_http_date()}")
        head.append(f"Content-Length: {len(body)}")
        if not keep_alive:
            head.append("Connection: close")
        out = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        self.connection.sendall(out if method == "HEAD" else out + body)

    def _reply_error(self, status: int) -> None:
        reason = HTTPStatus(status).phrase
        self.connection.sendall(
            f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )


_MAX_LINE = 65537
_MAX_HEADERS = 100
# Framing is the server's: the body is sent whole, with its own length.
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection"})


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, email.utils.formatdate(now, usegmt=True))
    return _date_cache[1]


def _keeps_alive(version: str, connection: str) -> bool:
    connection = connection.lower()
    if version == "HTTP/1.0":
        return "keep-alive" in connection
    return "close" not in connection


def _exit_when_stdin_closes() -> None:
    sys.stdin.buffer.read()
    os._exit(0)


def _serve(host: str, port: int) -> int:
    """The child: bind, report, serve until stdin closes."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from wsauth.localcloud import moto_gaps

    moto_gaps.fill()
    app = _SignedServiceDispatch(DomainDispatcherApplication(create_backend_app))
    try:
        server = _WsgiServer((host, port), app)
    except OSError as error:
        print(f"error {error.errno or 0} {error.strerror or error}", flush=True)
        return 1
    threading.Thread(target=_exit_when_stdin_closes, daemon=True).start()
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(_serve(sys.argv[1], int(sys.argv[2])))
