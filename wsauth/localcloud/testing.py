"""Run `wsauth local` as a real subprocess for end-to-end tests, and get real Cognito tokens.

Use the session-wide cloud from any test package by importing the fixture into its conftest::

    from wsauth.localcloud.testing import local_cloud  # noqa: F401  (registers the fixture)

    def test_echo(local_cloud):
        user = local_cloud.create_user()
        token = local_cloud.id_token(user)
        url = f"{local_cloud.outputs['webSocketEndpoint']}?idToken={token}"

A test that needs its own cloud (shortened limits, another program) uses `start_local_cloud`
as a context manager. Every cloud listens on free ports and writes its log to a file, which a
failing start includes in its error.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

__all__ = [
    "REPO_ROOT",
    "CloudUser",
    "LocalCloud",
    "descendant_pids",
    "eventually",
    "local_cloud",
    "start_local_cloud",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The project (its `Pulumi.yaml` and `__main__.py` are the default program)."""

_START_TIMEOUT = 180.0  # a first start builds the Lambda archive with pip
_PASSWORD = "Local-cloud-1-password!"

T = TypeVar("T")


@dataclass(frozen=True)
class CloudUser:
    """A confirmed user of the embedded user pool."""

    username: str
    password: str
    sub: str


class LocalCloud:
    """A running `wsauth local` process and helpers to use its stack.

    Attributes:
        outputs: The outputs file's content (stack outputs plus `awsEndpoint`, `webPage`).
        process: The `wsauth local` process.
        log_path: Its stderr (the local cloud's log: invocations, handler logs).
        printed: What it printed on stdout once ready (the `Outputs:` block).
    """

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        outputs: dict[str, str],
        log_path: Path,
        printed: str = "",
    ):
        self.process = process
        self.outputs = outputs
        self.log_path = log_path
        self.printed = printed
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        """Return a boto3 client for an embedded service (`cognito-idp`, `dynamodb`,
        `cloudwatch`), or the stack's `apigatewaymanagementapi`."""
        if service not in self._clients:
            import boto3

            endpoint = self.outputs["awsEndpoint"]
            if service == "apigatewaymanagementapi":
                endpoint = self.outputs["managementEndpoint"]
            self._clients[service] = boto3.client(
                service,
                endpoint_url=endpoint,
                region_name=self.outputs["region"],
                aws_access_key_id="testing",
                aws_secret_access_key="testing",  # noqa: S106 - moto accepts anything
            )
        return self._clients[service]

    def create_user(self, email: str | None = None, password: str = _PASSWORD) -> CloudUser:
        """Create a confirmed user with a permanent password (as an admin would)."""
        cognito = self.client("cognito-idp")
        pool_id = self.outputs["userPoolId"]
        email = email or f"user-{uuid.uuid4().hex[:12]}@example.com"
        created = cognito.admin_create_user(
            UserPoolId=pool_id,
            Username=email,
            UserAttributes=[
                {"Name": "email", "Value": email},
                {"Name": "email_verified", "Value": "true"},
            ],
            MessageAction="SUPPRESS",
        )
        cognito.admin_set_user_password(
            UserPoolId=pool_id, Username=email, Password=password, Permanent=True
        )
        attributes = {item["Name"]: item["Value"] for item in created["User"]["Attributes"]}
        return CloudUser(username=email, password=password, sub=attributes["sub"])

    def sign_in(self, user: CloudUser) -> dict[str, str]:
        """Sign in with USER_PASSWORD_AUTH; return Cognito's `AuthenticationResult`."""
        answer = self.client("cognito-idp").initiate_auth(
            ClientId=self.outputs["userPoolWebClientId"],
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": user.username, "PASSWORD": user.password},
        )
        result: dict[str, str] = answer["AuthenticationResult"]
        return result

    def id_token(self, user: CloudUser) -> str:
        """Return a fresh ID token for `user`."""
        return self.sign_in(user)["IdToken"]

    def websocket_url(self, token: str | None) -> str:
        """The endpoint with the token in the query string (the stack's default token source)."""
        base = self.outputs["webSocketEndpoint"]
        return base if token is None else f"{base}?idToken={token}"

    def connections_of(self, user: CloudUser) -> list[dict[str, Any]]:
        """Return the table's items for `user` (through `userIdIndex`)."""
        answer = self.client("dynamodb").query(
            TableName=self.outputs["connectionTableName"],
            IndexName="userIdIndex",
            KeyConditionExpression="userId = :user",
            ExpressionAttributeValues={":user": {"S": user.sub}},
        )
        items: list[dict[str, Any]] = answer["Items"]
        return items

    def latest_metric(
        self,
        name: str,
        *,
        namespace: str = "WsAuth",
        dimensions: Mapping[str, str] | None = None,
        within_seconds: float = 600,
    ) -> float | None:
        """Return the newest value of a metric in the embedded CloudWatch, where the functions'
        embedded-metric-format lines are published (`ConnectionCount`, `FailedPushes`, …).

        Args:
            name: The metric's name.
            namespace: Its namespace.
            dimensions: Exactly its dimensions (e.g. `{"ApiId": …, "Stage": "prod"}`); None:
                any (the newest value over all of the metric's dimension sets).
            within_seconds: How far back to look.

        Returns:
            The greatest value published in the newest second that has one; None if none was
            published within `within_seconds`.
        """
        cloudwatch = self.client("cloudwatch")
        now = datetime.now(UTC)
        streams = cloudwatch.list_metrics(Namespace=namespace, MetricName=name)["Metrics"]
        if dimensions is not None:
            wanted = dict(dimensions)
            streams = [
                stream
                for stream in streams
                if {item["Name"]: item["Value"] for item in stream["Dimensions"]} == wanted
            ]
        newest: tuple[datetime, float] | None = None
        for stream in streams:
            points = cloudwatch.get_metric_statistics(
                Namespace=namespace,
                MetricName=name,
                Dimensions=stream["Dimensions"],
                StartTime=now - timedelta(seconds=within_seconds),
                EndTime=now + timedelta(minutes=1),
                Period=1,
                Statistics=["Maximum"],
            )["Datapoints"]
            for point in points:
                if newest is None or point["Timestamp"] > newest[0]:
                    newest = (point["Timestamp"], float(point["Maximum"]))
        return newest[1] if newest is not None else None

    def log_text(self) -> str:
        """Return what the local cloud logged so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> int:
        """Send SIGTERM and wait; return the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def descendant_pids(pid: int) -> set[int]:
    """Return the pids of every live descendant of `pid` (Linux `/proc`)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found: set[int] = set()
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def eventually(check: Callable[[], T], timeout: float = 30, interval: float = 0.05) -> T:
    """Poll `check` until it returns a truthy value; return it, or fail after `timeout`.

    For state another process changes on its own schedule (a `$disconnect` writing the table),
    where there is no event to await.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value {value!r})")
        time.sleep(interval)


def _wait_until_ready(process: subprocess.Popen[bytes], log_path: Path, timeout: float) -> str:
    """Block until the outputs are printed (the file is written just before); return them."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    buffer = b""
    # The block ends with the last output's line: wait for the newline after `Outputs:`'s lines.
    while b"Outputs:" not in buffer or not buffer.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            process.kill()
            raise RuntimeError(f"wsauth local not ready in {timeout} s:\n{log_path.read_text()}")
        readable, _, _ = select.select([process.stdout], [], [], remaining)
        if not readable:
            continue
        chunk = os.read(process.stdout.fileno(), 65536)
        if not chunk:  # exited before it was ready
            process.wait()
            raise RuntimeError(
                f"wsauth local exited with {process.returncode}:\n{log_path.read_text()}"
            )
        buffer += chunk
    return buffer.decode()


@contextmanager
def start_local_cloud(
    args: Sequence[str] = (),
    *,
    program_dir: Path = REPO_ROOT,
    workdir: Path | None = None,
    timeout: float = _START_TIMEOUT,
    sweep_interval: float | None = None,
) -> Iterator[LocalCloud]:
    """Start `wsauth local --port 0` in a subprocess; stop it (SIGTERM) on exit.

    Args:
        args: Extra command-line arguments (e.g. `["--idle-timeout", "1"]`).
        program_dir: The Pulumi project to run.
        workdir: Where the outputs file and log go (a temporary directory by default).
        timeout: How long the start may take.
        sweep_interval: Run every `rate(...)` schedule (the session sweeper's) this often, in
            seconds (`--sweep-interval`); as declared when None.

    Yields:
        The running cloud, its outputs loaded.
    """
    with tempfile.TemporaryDirectory(prefix="wsauth-local-") as scratch:
        base = workdir or Path(scratch)
        outputs_path = base / "outputs.json"
        log_path = base / "local.log"
        command = [
            sys.executable,
            "-m",
            "wsauth",
            "local",
            "--port",
            "0",
            "--outputs",
            str(outputs_path),
            "--program",
            str(program_dir),
            *(["--sweep-interval", str(sweep_interval)] if sweep_interval is not None else []),
            *args,
        ]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        with open(log_path, "wb") as log_file:
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=log_file, cwd=REPO_ROOT, env=env
            )
        try:
            printed = _wait_until_ready(process, log_path, timeout)
            cloud = LocalCloud(process, json.loads(outputs_path.read_text()), log_path, printed)
            yield cloud
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdout is not None:
                process.stdout.close()


@pytest.fixture(scope="session")
def local_cloud() -> Iterator[LocalCloud]:
    """The project's stack running locally with AWS's default limits, shared by the session."""
    with start_local_cloud() as cloud:
        yield cloud
