"""The embedded AWS: moto's server on a thread of this process, serving Cognito and DynamoDB.

moto's `ThreadedMotoServer` waits forever when its port is taken (the bind fails on its thread
and the ready event is never set), so this builds the same server from moto's own pieces with
the bind on the caller's thread, where a taken port raises at once.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

__all__ = ["EmbeddedAws", "FAKE_CREDENTIALS"]

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # noqa: S105 - moto accepts any credentials
    "AWS_SESSION_TOKEN": "testing",
}
"""What boto3 needs to sign requests; moto accepts anything."""


class EmbeddedAws:
    """moto's server on `host:port` (0 picks a free port), in a daemon thread.

    Args:
        host: Interface to bind.
        port: TCP port, 0 for any free one.
        region: Region clients use by default.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, region: str = "us-east-1"):
        self.host = host
        self.region = region
        self._requested_port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind and serve.

        Raises:
            OSError: The port cannot be bound (taken, or not allowed).
        """
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        # werkzeug logs every request at INFO; the local cloud logs what matters itself.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            self.host, self._requested_port, app, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        """The bound port."""
        if self._server is None:
            raise RuntimeError("EmbeddedAws.start() was not called")
        port: int = self._server.server_address[1]
        return port

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
        """Stop serving and join the thread."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None
