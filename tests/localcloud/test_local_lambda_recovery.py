"""A warm worker that dies while idle is replaced, as Lambda starts a new execution environment."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import textwrap
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from wsauth.localcloud.lambdas import FunctionSpec, LambdaRuntime
from wsauth.localcloud.spec import FunctionError
from wsauth.localcloud.testing import descendant_pids, start_local_cloud

HANDLERS = """
import os

def echo(event, context):
    return {"event": event, "pid": os.getpid()}

def record_then_die(event, context):
    with open(event["ledger"], "a") as ledger:
        ledger.write("ran\\n")
    os._exit(3)
"""


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[LambdaRuntime]:
    (tmp_path / "fns.py").write_text(textwrap.dedent(HANDLERS))
    functions = {
        name: FunctionSpec(name=name, handler=f"fns.{name}", code_dir=tmp_path, timeout_seconds=5)
        for name in ("echo", "record_then_die")
    }
    yield LambdaRuntime(functions, max_workers=2)


def _kill(pid: int) -> int:
    """SIGKILL a worker; return a pidfd that becomes readable once it has exited."""
    pidfd = os.pidfd_open(pid)
    os.kill(pid, signal.SIGKILL)
    return pidfd


def _wait_exited(pidfd: int) -> None:
    try:
        assert select.select([pidfd], [], [], 10)[0], "the killed worker did not exit"
    finally:
        os.close(pidfd)


def _run(runtime: LambdaRuntime, body: Coroutine[Any, Any, None]) -> None:
    """Run an async test body, then kill the workers (the pool lives on one event loop)."""

    async def main() -> None:
        try:
            await body
        finally:
            await runtime.close()

    asyncio.run(main())


def test_worker_killed_while_idle_is_replaced_by_a_fresh_one(runtime: LambdaRuntime) -> None:
    """The invocation after an idle worker's death runs on a new worker and succeeds."""

    async def body() -> None:
        first = await runtime.invoke("echo", {"n": 1})
        # The loop runs while the worker dies, so the pool sees its pipe close before dispatch.
        await asyncio.to_thread(_wait_exited, _kill(first["pid"]))

        second = await runtime.invoke("echo", {"n": 2})

        assert second["event"] == {"n": 2}
        assert second["pid"] != first["pid"]
        assert runtime.worker_pids() == [second["pid"]]

    _run(runtime, body())


def test_worker_found_dead_only_when_sending_is_replaced(runtime: LambdaRuntime) -> None:
    """A worker whose death the pool has not yet noticed fails the send; a new one runs it."""

    async def body() -> None:
        first = await runtime.invoke("echo", {"n": 1})
        # GIVEN a dead worker the event loop has not yet heard of (this waits without
        # yielding to the loop, on purpose): the pool still holds it as idle and alive
        _wait_exited(_kill(first["pid"]))

        second = await runtime.invoke("echo", {"n": 2})

        assert second["event"] == {"n": 2}
        assert second["pid"] != first["pid"]

    _run(runtime, body())


def test_every_idle_worker_killed_at_once_is_replaced(runtime: LambdaRuntime) -> None:
    """With all warm workers dead, concurrent invocations all run on new ones."""

    async def body() -> None:
        warm = await asyncio.gather(*(runtime.invoke("echo", {}) for _ in range(2)))
        pidfds = [_kill(result["pid"]) for result in warm]
        for pidfd in pidfds:
            _wait_exited(pidfd)

        # All of them settle before the assertions, so a failure leaves no invocation running.
        results = await asyncio.gather(
            *(runtime.invoke("echo", {"n": n}) for n in range(4)), return_exceptions=True
        )

        assert [result["event"] for result in results] == [{"n": n} for n in range(4)]
        assert not {result["pid"] for result in results} & {result["pid"] for result in warm}

    _run(runtime, body())


def test_worker_dying_during_an_invocation_does_not_run_it_twice(
    runtime: LambdaRuntime, tmp_path: Path
) -> None:
    """A worker that dies after taking the invocation gives `WorkerDied`; nothing re-runs it."""
    ledger = tmp_path / "ledger.txt"

    async def body() -> None:
        with pytest.raises(FunctionError) as error:
            await runtime.invoke("record_then_die", {"ledger": str(ledger)})
        assert error.value.kind == "WorkerDied"

    _run(runtime, body())
    assert ledger.read_text() == "ran\n"


@pytest.mark.e2e
def test_a_killed_idle_authorizer_does_not_fail_the_next_connect() -> None:
    """End to end: the authorizer's warm worker is killed while idle; the next valid handshake
    is still allowed (101), on a fresh worker, not answered 500."""

    def authorizer_workers(root: int) -> set[int]:
        found = set()
        for pid in descendant_pids(root):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    if b"handlers.authorizer.handler" in cmdline.read():
                        found.add(pid)
            except OSError:
                continue
        return found

    async def echo_once(url: str) -> str:
        async with connect(url) as websocket:
            await websocket.send("ping")
            return str(await asyncio.wait_for(websocket.recv(), 30))

    with start_local_cloud(["--no-web"]) as cloud:
        user = cloud.create_user()
        asyncio.run(echo_once(cloud.websocket_url(cloud.id_token(user))))
        warm = authorizer_workers(cloud.process.pid)
        assert warm
        for pid in warm:
            os.kill(pid, signal.SIGKILL)

        answer = asyncio.run(echo_once(cloud.websocket_url(cloud.id_token(user))))

        assert answer == '{"message": "ping"}'
        assert authorizer_workers(cloud.process.pid).isdisjoint(warm)
