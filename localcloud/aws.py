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

import logging
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

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
        package_root = str(Path(__file__).resolve().parent.parent)
        python_path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "localcloud.aws", self.host, str(self._requested_port)],
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


# Services the handlers call on every connect and disconnect; other requests (and unsigned ones,
# such as the JWKS GET) go through moto's own dispatch.
_DIRECT_SERVICES = frozenset({"dynamodb", "cognito-idp"})
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")


class _SignedServiceDispatch:
    """WSGI front of moto that routes signed requests by their SigV4 credential scope.

    moto's dispatcher guesses the service for every request (listing its own package directory
    each time, a fifth of a DynamoDB `PutItem`'s server time); the signature already names the
    service, so for the hot ones the backend app is looked up once and reused.
    """

    def __init__(self, moto_app: Any) -> None:
        self._moto_app = moto_app
        self._apps: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        match = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        service = match.group(1) if match else None
        if service not in _DIRECT_SERVICES:
            return self._moto_app(environ, start_response)
        app = self._apps.get(service)
        if app is None:
            with self._lock:
                app = self._apps.get(service) or self._moto_app.create_app(service)
                self._apps[service] = app
        return app(environ, start_response)


def _exit_when_stdin_closes() -> None:
    sys.stdin.buffer.read()
    os._exit(0)


def _serve(host: str, port: int) -> int:
    """The child: bind, report, serve until stdin closes."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    # werkzeug logs every request; the local cloud logs what matters itself.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = _SignedServiceDispatch(DomainDispatcherApplication(create_backend_app))
    try:
        server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    except OSError as error:
        print(f"error {error.errno or 0} {error.strerror or error}", flush=True)
        return 1
    threading.Thread(target=_exit_when_stdin_closes, daemon=True).start()
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(_serve(sys.argv[1], int(sys.argv[2])))
