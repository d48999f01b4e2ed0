"""`wsauth local` as a tool: outputs, clean stop with no stray processes, one-line errors."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from wsauth.localcloud.realize import machine_architecture
from wsauth.localcloud.testing import (
    REPO_ROOT,
    LocalCloud,
    descendant_pids,
    eventually,
    start_local_cloud,
)
from wsauth.outputs import REQUIRED_KEYS

pytestmark = pytest.mark.e2e

# Every output a client needs (DESIGN §3), plus where the embedded AWS services answer.
STACK_OUTPUTS = {*REQUIRED_KEYS, "awsEndpoint"}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _run_local(*args: str, program: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    """Run `wsauth local` to completion (it fails before serving in these tests)."""
    return subprocess.run(
        [sys.executable, "-m", "wsauth", "local", "--program", str(program), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_cleanly_with_no_stray_processes(tmp_path: Path, signum: int) -> None:
    """After SIGTERM or Ctrl-C the command exits 0, its workers and moto are gone and the
    outputs file is removed."""
    with start_local_cloud(workdir=tmp_path) as cloud:
        outputs_file = tmp_path / "outputs.json"
        assert STACK_OUTPUTS <= set(cloud.outputs)
        assert cloud.outputs["webSocketEndpoint"].startswith("ws://127.0.0.1:")
        assert cloud.outputs["webSocketEndpoint"].endswith("/prod")
        user = cloud.create_user()
        token = cloud.id_token(user)

        async def talk() -> None:
            async with connect(cloud.websocket_url(token)) as websocket:
                await websocket.send("hello")
                await asyncio.wait_for(websocket.recv(), 30)

        asyncio.run(talk())
        children = descendant_pids(cloud.process.pid)
        assert len(children) >= 3  # moto, the authorizer's worker, the websocket function's
        cloud.process.send_signal(signum)
        assert cloud.process.wait(30) == 0
        assert [pid for pid in children if _alive(pid)] == []
        assert not outputs_file.exists()
        log = cloud.log_text()
    # Invocations are logged one per line, and the token never is.
    assert "$connect" in log and "$default" in log
    assert token not in log and token.split(".")[1] not in log


def test_sigkill_leaves_no_worker_behind_not_even_a_hung_one(tmp_path: Path) -> None:
    """`kill -9` of the local cloud mid-invocation: the worker stuck in a handler that sleeps
    for an hour dies with it, as do the idle workers and moto."""
    program = Path(__file__).parent / "programs" / "custom_route"
    with start_local_cloud(program_dir=program, workdir=tmp_path) as cloud:
        url = cloud.websocket_url(cloud.id_token(cloud.create_user()))

        def hung_worker() -> int | None:
            for pid in descendant_pids(cloud.process.pid):
                with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    if b"testfns.hang" in cmdline.read():
                        return pid
            return None

        async def kill_mid_invocation() -> tuple[int, set[int]]:
            async with connect(url) as websocket:
                await websocket.send(json.dumps({"action": "hang"}))
                # Its timeout (1 s) runs from the invocation, which follows the cold start.
                eventually(lambda: "cold start test-hang" in cloud.log_text(), timeout=30)
                hung = hung_worker()
                family = descendant_pids(cloud.process.pid)
                cloud.process.kill()
                cloud.process.wait(30)
                assert hung is not None
                return hung, family

        hung, family = asyncio.run(kill_mid_invocation())
        assert hung in family and len(family) >= 4  # moto, authorizer, websocket, the hung one
        eventually(lambda: not [pid for pid in family if _alive(pid)], timeout=10)


def test_outputs_are_printed_like_pulumi_up(local_cloud: LocalCloud) -> None:
    """The outputs are printed under `Outputs:`, one `name: value` (JSON) per line."""
    header, *lines = local_cloud.printed.strip().splitlines()
    assert header == "Outputs:"
    printed = {}
    for line in lines:
        assert line.startswith("    ")
        name, value = line.strip().split(":", 1)
        printed[name] = json.loads(value)
    assert printed == local_cloud.outputs


def test_port_taken_is_one_clear_line() -> None:
    """A taken gateway port fails at once, in one line that names the port."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = _run_local("--port", str(port))
    assert result.returncode != 0
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1
    assert f"port {port}" in errors[0] and "already in use" in errors[0]


_OTHER_ARCH = "x86_64" if machine_architecture() == "arm64" else "arm64"


def _program(tmp_path: Path, body: str) -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: broken\nruntime: python\n")
    (tmp_path / "__main__.py").write_text(textwrap.dedent(body))
    return tmp_path


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            "raise RuntimeError('config is wrong')\n",
            "the program failed: RuntimeError: config is wrong",
            id="program raises",
        ),
        pytest.param(
            """
            import pulumi_aws as aws
            aws.s3.Bucket("uploads")
            aws.sqs.Queue("jobs")
            """,
            "unsupported: aws:s3/bucket:Bucket (uploads), aws:sqs/queue:Queue (jobs)",
            id="unsupported resource types",
        ),
        pytest.param(
            """
            import pulumi_aws as aws
            aws.dynamodb.Table(
                "t", attributes=[{"name": "k", "type": "S"}], hash_key="k",
                billing_mode="PAY_PER_REQUEST",
            )
            """,
            "the program declares no WebSocket API: nothing to serve",
            id="no API",
        ),
        pytest.param(
            f"""
            import pulumi, pulumi_aws as aws
            aws.lambda_.Function(
                "fn", role="arn:aws:iam::123456789012:role/r", handler="m.h",
                runtime="python3.{sys.version_info.minor}", architectures=["{_OTHER_ARCH}"],
                code=pulumi.FileArchive("."),
            )
            """,
            f"architecture '{_OTHER_ARCH}': this machine runs {machine_architecture()}; take "
            "the architecture from the config key lambdaArchitecture",
            id="archive for the other architecture",
        ),
    ],
)
def test_program_that_cannot_run_locally_is_a_clear_error(
    tmp_path: Path, body: str, expected: str
) -> None:
    """A failing program, or one declaring what the local cloud cannot run, exits non-zero."""
    result = _run_local("--port", "0", program=_program(tmp_path, body))
    assert result.returncode != 0
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
