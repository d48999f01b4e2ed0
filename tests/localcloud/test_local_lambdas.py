"""The Lambda worker pool: real worker processes running small handlers from a code dir."""

from __future__ import annotations

import asyncio
import logging
import os
import textwrap
import zipfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from wsauth.localcloud.lambdas import FunctionSpec, LambdaRuntime, unpack_archive
from wsauth.localcloud.spec import FunctionError

HANDLERS = """
import json, os, sys, time

def echo(event, context):
    return {"event": event, "pid": os.getpid()}

def context_info(event, context):
    return {
        "function_name": context.function_name,
        "request_id": context.aws_request_id,
        "remaining": context.get_remaining_time_in_millis(),
        "memory": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
        "log_group": context.log_group_name,
    }

def environment(event, context):
    return dict(os.environ)

def crash(event, context):
    raise RuntimeError("boom")

def hang(event, context):
    time.sleep(60)

def die(event, context):
    os._exit(3)

def chatty(event, context):
    print("hello from the handler")
    return "ok"

def slow(event, context):
    time.sleep(0.3)
    return os.getpid()

def bad_result(event, context):
    return object()
"""


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "fns.py").write_text(textwrap.dedent(HANDLERS))
    (tmp_path / "code" / "broken.py").write_text("import no_such_module\n")
    return tmp_path / "code"


def _spec(code_dir: Path, function: str, **overrides: object) -> FunctionSpec:
    values: dict[str, object] = {
        "name": function,
        "handler": f"fns.{function}",
        "code_dir": code_dir,
        "timeout_seconds": 5,
        "arn": f"arn:aws:lambda:us-east-1:000000000000:function:{function}",
        "environment": {"DECLARED": "yes"},
        "runtime_environment": {"AWS_REGION": "us-east-1"},
    }
    values.update(overrides)
    return FunctionSpec(**values)  # type: ignore[arg-type]


@pytest.fixture
def runtime(code_dir: Path) -> Iterator[LambdaRuntime]:
    names = ["echo", "context_info", "environment", "crash", "die", "chatty", "bad_result"]
    functions = {name: _spec(code_dir, name) for name in names}
    functions["hang"] = _spec(code_dir, "hang", timeout_seconds=0.5)
    functions["slow"] = _spec(code_dir, "slow")
    functions["broken"] = _spec(code_dir, "broken", handler="broken.handler")
    yield LambdaRuntime(functions, max_workers=3)


def run(body: Callable[[], Awaitable[None]], runtime: LambdaRuntime) -> None:
    """Run an async test body, then kill the workers (the pool lives on one event loop)."""

    async def main() -> None:
        try:
            await body()
        finally:
            await runtime.close()

    asyncio.run(main())


def test_invoke_returns_the_handlers_result_and_reuses_the_warm_worker(
    runtime: LambdaRuntime,
) -> None:
    """Two invocations in a row run in the same (warm) process."""

    async def body() -> None:
        first = await runtime.invoke("echo", {"n": 1})
        second = await runtime.invoke("echo", {"n": 2})
        assert first["event"] == {"n": 1} and second["event"] == {"n": 2}
        assert first["pid"] == second["pid"]

    run(body, runtime)


def test_context_is_lambda_like(runtime: LambdaRuntime) -> None:
    """The handler's context carries the function's name, ARN, request id and remaining time."""

    async def body() -> None:
        info = await runtime.invoke("context_info", {})
        assert info["function_name"] == "context_info"
        assert info["arn"].endswith(":function:context_info")
        assert info["log_group"] == "/aws/lambda/context_info"
        assert len(info["request_id"]) == 36
        assert 0 < info["remaining"] <= 5000

    run(body, runtime)


def test_environment_is_declared_plus_lambdas_own(runtime: LambdaRuntime) -> None:
    """The worker sees the declared variables and Lambda's, not the parent's environment."""

    async def body() -> None:
        os.environ["WSAUTH_TEST_LEAK"] = "should-not-pass"
        try:
            env = await runtime.invoke("environment", {})
        finally:
            del os.environ["WSAUTH_TEST_LEAK"]
        assert env["DECLARED"] == "yes"
        assert env["AWS_REGION"] == "us-east-1"
        assert env["AWS_LAMBDA_FUNCTION_NAME"] == "environment"
        assert "WSAUTH_TEST_LEAK" not in env

    run(body, runtime)


def test_handler_exception_is_unhandled_and_the_worker_survives(
    runtime: LambdaRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    """A raising handler gives `Unhandled` with its message, and its traceback is logged."""

    async def body() -> None:
        caplog.set_level(logging.INFO, logger="wsauth.localcloud.lambda")
        with pytest.raises(FunctionError) as error:
            await runtime.invoke("crash", {})
        assert error.value.kind == "Unhandled"
        assert "RuntimeError: boom" in str(error.value)
        assert await runtime.invoke("echo", {}) is not None
        assert any("RuntimeError: boom" in record.getMessage() for record in caplog.records)

    run(body, runtime)


def test_timeout_kills_the_worker(runtime: LambdaRuntime) -> None:
    """A handler running past its timeout gives `TimeoutError` and its process is gone."""

    async def body() -> None:
        with pytest.raises(FunctionError) as error:
            await runtime.invoke("hang", {})
        assert error.value.kind == "TimeoutError"
        assert runtime.worker_pids() == []

    run(body, runtime)


def test_worker_death_is_reported(runtime: LambdaRuntime) -> None:
    """A worker that exits mid-invocation gives `WorkerDied`."""

    async def body() -> None:
        with pytest.raises(FunctionError) as error:
            await runtime.invoke("die", {})
        assert error.value.kind == "WorkerDied"

    run(body, runtime)


def test_init_error_is_reported(runtime: LambdaRuntime) -> None:
    """A handler module that cannot be imported fails the invocation with the import error."""

    async def body() -> None:
        with pytest.raises(FunctionError) as error:
            await runtime.invoke("broken", {})
        assert "ModuleNotFoundError" in str(error.value)

    run(body, runtime)


def test_unserializable_result_is_an_error(runtime: LambdaRuntime) -> None:
    """A result that is not JSON fails the invocation, as Lambda's marshalling does."""

    async def body() -> None:
        with pytest.raises(FunctionError) as error:
            await runtime.invoke("bad_result", {})
        assert error.value.kind == "Unhandled"

    run(body, runtime)


def test_handler_output_is_forwarded_to_the_log(
    runtime: LambdaRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    """What the handler prints reaches the local cloud's log with the worker's label."""

    async def body() -> None:
        caplog.set_level(logging.INFO, logger="wsauth.localcloud.lambda")
        assert await runtime.invoke("chatty", {}) == "ok"
        await runtime.close()  # the log forwarder drains the pipe when the worker exits
        assert any(
            "[chatty#1] hello from the handler" in record.getMessage() for record in caplog.records
        )

    run(body, runtime)


def test_concurrent_invocations_spread_over_workers_up_to_the_cap(
    runtime: LambdaRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    """Concurrent invocations start new workers while all are busy, never more than the cap;
    each worker's log label is its own, even when they cold-start together."""

    async def body() -> None:
        caplog.set_level(logging.INFO, logger="wsauth.localcloud.lambda")
        pids = await asyncio.gather(*(runtime.invoke("slow", {}) for _ in range(6)))
        assert len(set(pids)) == 3
        cold_starts = [
            record.getMessage().split()[2]
            for record in caplog.records
            if record.getMessage().startswith("cold start ")
        ]
        assert sorted(cold_starts) == ["slow#1", "slow#2", "slow#3"]

    run(body, runtime)


def test_unknown_function_is_refused(runtime: LambdaRuntime) -> None:
    """Invoking a function the program does not declare fails clearly."""

    async def body() -> None:
        with pytest.raises(FunctionError, match="no function named"):
            await runtime.invoke("nope", {})

    run(body, runtime)


def test_unpack_archive_once(tmp_path: Path) -> None:
    """An archive is unpacked once; the second call reuses the directory."""
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as package:
        package.writestr("pkg/mod.py", "X = 1\n")
    first = unpack_archive(archive, tmp_path / "cache")
    (first / "marker").write_text("kept")
    second = unpack_archive(archive, tmp_path / "cache")
    assert first == second and (second / "pkg" / "mod.py").is_file()
    assert (second / "marker").read_text() == "kept"
