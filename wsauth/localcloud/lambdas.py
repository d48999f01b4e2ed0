"""Lambda functions run locally: a pool of worker processes per function, timeout enforced.

Each function gets up to `max_workers` processes (`worker.py` beside this module), started on
first use (the cold start) and kept warm afterwards. An invocation takes an idle worker, or
starts a new one when all are busy, or waits for one when the cap is reached. A worker that
exceeds the function's timeout is killed with its process group, as Lambda discards the
execution environment. A warm worker that died while idle (killed, out of memory) is replaced:
the invocation runs on a fresh one, as Lambda starts a new environment, and is never run twice.
What a handler prints goes to the local cloud's log, except embedded-metric-format lines, which
go to the metrics sink (the embedded CloudWatch, `metrics.py`) as Lambda's would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import struct
import sys
import sysconfig
import time
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wsauth.localcloud.metrics import is_emf_line
from wsauth.localcloud.spec import FunctionError

__all__ = ["FunctionSpec", "LambdaRuntime", "default_max_workers", "unpack_archive"]

log = logging.getLogger("wsauth.localcloud.lambda")

_LENGTH = struct.Struct(">I")
_WORKER_SCRIPT = str(Path(__file__).with_name("worker.py"))
# Big events (a 128 KB message, JSON-escaped) must fit in one pipe read without a limit error.
_STREAM_LIMIT = 16 * 1024 * 1024

MetricsSink = Callable[[bytes, str], Any]
"""Takes an embedded-metric-format line a function printed, and the worker's label."""


def default_max_workers() -> int:
    """Concurrent executions per function: twice the CPUs, between 2 and 10.

    Lambda gives each execution environment its own CPU; here they share the machine's, and
    more busy workers than about two per core only add context switches (on 2 cores, 4 workers
    measured better handshake tails and throughput than 10).
    """
    return max(2, min(10, 2 * (os.cpu_count() or 1)))


@dataclass(frozen=True)
class FunctionSpec:
    """What the program declares about one Lambda function, as the worker needs it."""

    name: str
    handler: str
    code_dir: Path
    """The unpacked archive (Lambda's task root)."""
    timeout_seconds: float = 3
    memory_mb: int = 128
    arn: str = ""
    environment: Mapping[str, str] = field(default_factory=dict)
    """Exactly the variables the program declares."""
    runtime_environment: Mapping[str, str] = field(default_factory=dict)
    """What Lambda itself sets (region, credentials, endpoints), added beneath `environment`."""


def unpack_archive(archive: Path, cache_dir: Path) -> Path:
    """Unpack a Lambda zip once into `cache_dir`, keyed by the archive's name and size.

    Args:
        archive: The deployment package.
        cache_dir: Where unpacked archives are kept.

    Returns:
        The directory holding the archive's files.
    """
    stat = archive.stat()
    target = cache_dir / f"{archive.stem}-{stat.st_size}-{int(stat.st_mtime)}"
    if target.is_dir():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cache_dir / f".{target.name}.{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    with zipfile.ZipFile(archive) as package:
        package.extractall(partial)
    try:
        os.replace(partial, target)
    except OSError:  # another process unpacked the same archive first
        shutil.rmtree(partial, ignore_errors=True)
    return target


class _Worker:
    """One worker process and its pipes."""

    def __init__(
        self,
        spec: FunctionSpec,
        process: asyncio.subprocess.Process,
        index: int,
        metrics: MetricsSink | None = None,
    ) -> None:
        self.spec = spec
        self.process = process
        self.label = f"{spec.name}#{index}"
        self.metrics = metrics
        self.log_task = asyncio.ensure_future(self._forward_logs())

    async def _forward_logs(self) -> None:
        assert self.process.stderr is not None
        while True:
            try:
                line = await self.process.stderr.readline()
            except ValueError:
                # A line longer than the stream's limit: keep draining, or the worker would
                # block on a full pipe mid-invocation.
                line = await self.process.stderr.read(_STREAM_LIMIT)
            if not line:
                return
            if self.metrics is not None and is_emf_line(line):
                # Lambda's log keeps these too, but the minute's summary says it shorter.
                self.metrics(line, self.label)
                log.debug("[%s] %s", self.label, line.decode(errors="replace").rstrip())
                continue
            log.info("[%s] %s", self.label, line.decode(errors="replace").rstrip())

    async def send(self, message: dict[str, Any]) -> None:
        """Write one message to the worker.

        Raises:
            ConnectionError: The pipe closed before the whole message was in it, so the worker
                cannot have read it (it reads a message only once all of it has arrived).
        """
        stdin = self.process.stdin
        assert stdin is not None
        body = json.dumps(message, separators=(",", ":")).encode()
        stdin.write(_LENGTH.pack(len(body)) + body)
        # A write into a pipe whose reader has exited fails inside `write`, which only marks
        # the transport closing; `drain` would learn of it a few loop turns later, after
        # returning as if the message went out.
        if stdin.transport.is_closing():
            raise ConnectionResetError(f"{self.label}'s pipe is closed")
        await stdin.drain()

    async def receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        header = await self.process.stdout.readexactly(_LENGTH.size)
        body = await self.process.stdout.readexactly(_LENGTH.unpack(header)[0])
        message: dict[str, Any] = json.loads(body)
        return message

    @property
    def alive(self) -> bool:
        """False once the process has exited or closed its end of the protocol pipe."""
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        # An idle worker has nothing unread on stdout, so end-of-file there (or its stdin
        # closed by the peer) is its exit, seen as soon as the loop reads it; the exit status
        # may be reaped later.
        return (
            self.process.returncode is None
            and not stdout.at_eof()
            and not stdin.transport.is_closing()
        )

    def kill(self) -> None:
        # The worker leads its own process group: anything the handler started dies with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    async def close(self) -> None:
        if self.process.returncode is None:
            self.kill()
            await self.process.wait()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.log_task, 1)


class _FunctionPool:
    """The warm workers of one function."""

    def __init__(
        self,
        spec: FunctionSpec,
        max_workers: int,
        shared_environment: Mapping[str, str],
        metrics: MetricsSink | None = None,
    ) -> None:
        self.spec = spec
        self.shared_environment = shared_environment
        self.metrics = metrics
        self.max_workers = max_workers
        self.idle: list[_Worker] = []
        self.count = 0  # started or starting, idle or busy
        self.started = 0
        self.available = asyncio.Condition()
        self.queued = 0  # invocations waiting for a worker
        self.workers: set[_Worker] = set()

    def _environment(self) -> dict[str, str]:
        spec = self.spec
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": uuid.uuid4().hex,
            "WSAUTH_LOCAL_FUNCTION_ARN": spec.arn,
            "_HANDLER": spec.handler,
        }
        env.update(self.shared_environment)
        env.update(spec.runtime_environment)
        env.update(spec.environment)
        return env

    async def _start_worker(self) -> _Worker:
        self.started += 1
        index = self.started  # taken now: other starts may count up while this one waits
        paths = sysconfig.get_paths()
        site_dirs = list(dict.fromkeys([paths["purelib"], paths["platlib"]]))
        began = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-S",
            _WORKER_SCRIPT,
            str(os.getpid()),
            str(self.spec.code_dir),
            self.spec.handler,
            *site_dirs,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._environment(),
            cwd=str(self.spec.code_dir),
            start_new_session=True,
            limit=_STREAM_LIMIT,
        )
        worker = _Worker(self.spec, process, index, self.metrics)
        self.workers.add(worker)
        try:
            ready = await asyncio.wait_for(worker.receive(), self.spec.timeout_seconds + 10)
        except (asyncio.IncompleteReadError, TimeoutError) as exc:
            await self._discard(worker)
            raise FunctionError("WorkerDied", f"{worker.label} did not start") from exc
        except BaseException:  # cancelled while starting (the gateway gave up): no orphan
            await self._discard(worker)
            raise
        if "error" in ready:
            await self._discard(worker)
            error = ready["error"]
            raise FunctionError(
                "Unhandled", f"init failed: {error['errorType']}: {error['errorMessage']}"
            )
        log.info("cold start %s in %.0f ms", worker.label, (time.perf_counter() - began) * 1000)
        return worker

    async def _discard(self, worker: _Worker) -> None:
        self.workers.discard(worker)
        await worker.close()

    async def acquire(self) -> _Worker:
        """Take a live warm worker, or start one; dead idle workers are dropped on the way."""
        while True:
            worker = await self._acquire_any()
            if worker.alive:
                return worker
            await self._retire_dead(worker)

    async def _retire_dead(self, worker: _Worker) -> None:
        await self._discard(worker)
        await self._release_slot()
        log.info(
            "%s exited while idle (status %s): the invocation goes to another worker",
            worker.label,
            worker.process.returncode,
        )

    async def _acquire_any(self) -> _Worker:
        if self.idle and not self.queued:
            # The warm path, without the lock: the most recently used worker. Never ahead of
            # an invocation already queued for one (that would push its wait into the tail).
            return self.idle.pop()
        async with self.available:
            while not self.idle and self.count >= self.max_workers:
                self.queued += 1
                try:
                    await self.available.wait()
                finally:
                    self.queued -= 1
            if self.idle:
                return self.idle.pop()
            self.count += 1
        try:
            return await self._start_worker()
        except BaseException:
            await self._release_slot()
            raise

    async def _release_slot(self) -> None:
        async with self.available:
            self.count -= 1
            self.available.notify()

    async def release(self, worker: _Worker) -> None:
        async with self.available:
            self.idle.append(worker)
            self.available.notify()

    async def run(self, event: Any) -> Any:
        request_id = str(uuid.uuid4())
        # Each pass dispatches to another worker, only after a send that failed: a worker that
        # died between `acquire`'s check and the send. Each dead worker is dropped, so the
        # passes are bounded by the warm workers there can be, plus a fresh one.
        for _ in range(self.max_workers + 1):
            worker = await self.acquire()
            deadline = time.time() + self.spec.timeout_seconds
            try:
                await worker.send(
                    {"event": event, "requestId": request_id, "deadlineMs": int(deadline * 1000)}
                )
            except ConnectionError:
                # The pipe was closed before the whole request was in it: the worker never
                # read this invocation, so another one may run it without running it twice.
                await self._retire_dead(worker)
                continue
            except BaseException:
                await self._discard(worker)
                await self._release_slot()
                raise
            return await self._answer(worker)
        raise FunctionError("WorkerDied", f"no worker of {self.spec.name} stayed up to take it")

    async def _answer(self, worker: _Worker) -> Any:
        try:
            async with asyncio.timeout(self.spec.timeout_seconds):
                answer = await worker.receive()
        except TimeoutError:
            await self._discard(worker)
            await self._release_slot()
            raise FunctionError(
                "TimeoutError", f"{self.spec.name} timed out after {self.spec.timeout_seconds:g} s"
            ) from None
        except (asyncio.IncompleteReadError, ConnectionError, BrokenPipeError):
            await self._discard(worker)
            await self._release_slot()
            raise FunctionError(
                "WorkerDied", f"{worker.label} exited with {worker.process.returncode}"
            ) from None
        except BaseException:
            # Cancelled mid-request: the worker's state is unknown, so it cannot be reused.
            await self._discard(worker)
            await self._release_slot()
            raise
        await self.release(worker)
        if "error" in answer:
            error = answer["error"]
            raise FunctionError("Unhandled", f"{error['errorType']}: {error['errorMessage']}")
        return answer.get("result")

    async def close(self) -> None:
        await asyncio.gather(*(worker.close() for worker in list(self.workers)))
        self.workers.clear()
        self.idle.clear()


class LambdaRuntime:
    """Invokes the program's Lambda functions in local worker processes (an `Invoker`).

    Args:
        functions: The functions, keyed by name (a spec may be replaced, e.g. to add a
            variable, until the function's first invocation).
        max_workers: Concurrent executions per function; invocations beyond it wait
            (`default_max_workers()` when None).
        runtime_environment: What Lambda sets for every function (region, credentials,
            endpoints); the declared variables win over it. It may be updated until the first
            invocation (the gateway's port is known only once it listens).
        metrics: Takes the embedded-metric-format lines the functions print (a
            `MetricsPublisher.submit`); None: they are logged like any other line.
    """

    def __init__(
        self,
        functions: Mapping[str, FunctionSpec],
        *,
        max_workers: int | None = None,
        runtime_environment: Mapping[str, str] | None = None,
        metrics: MetricsSink | None = None,
    ) -> None:
        self.functions = dict(functions)
        self.runtime_environment: dict[str, str] = dict(runtime_environment or {})
        self.metrics = metrics
        self._max_workers = max_workers if max_workers is not None else default_max_workers()
        self._pools: dict[str, _FunctionPool] = {}

    def _pool(self, function_name: str) -> _FunctionPool:
        pool = self._pools.get(function_name)
        if pool is None:
            spec = self.functions.get(function_name)
            if spec is None:
                raise FunctionError("ResourceNotFound", f"no function named {function_name!r}")
            pool = _FunctionPool(spec, self._max_workers, self.runtime_environment, self.metrics)
            self._pools[function_name] = pool
        return pool

    async def invoke(self, function_name: str, event: dict[str, Any]) -> Any:
        """Run the function on `event` and return its JSON-decoded result.

        Raises:
            FunctionError: The handler raised (`Unhandled`), timed out (`TimeoutError`), or its
                worker died (`WorkerDied`).
        """
        return await self._pool(function_name).run(event)

    async def warm(self, function_name: str) -> None:
        """Start one worker for the function ahead of its first invocation."""
        pool = self._pool(function_name)
        await pool.release(await pool.acquire())

    def worker_pids(self) -> list[int]:
        """Return the pids of all live workers (for tests and diagnostics)."""
        return [
            worker.process.pid
            for pool in self._pools.values()
            for worker in pool.workers
            if worker.process.returncode is None
        ]

    async def close(self) -> None:
        """Kill every worker and wait for them to exit."""
        await asyncio.gather(*(pool.close() for pool in self._pools.values()))
