"""One Lambda execution environment: loads a handler once, then serves invocations over pipes.

Started by `wsauth.localcloud.lambdas` as
`python -S worker.py PARENT_PID CODE_DIR HANDLER SITE_DIR...`, with exactly the function's
environment. Only the standard library is imported here, before the handler's own imports, so
the handler sees an interpreter as clean as Lambda's: `sys.path` is the unpacked archive first,
then the site-packages that stand for Lambda's runtime (boto3). `-S` keeps the project's own
`.pth` files (its editable install) out of the way, so the handler code that runs is the
archive's, not the working tree's.

Protocol, on the process's original stdin/stdout: each message is a 4-byte big-endian length
and a UTF-8 JSON object. The parent sends `{"event", "requestId", "deadlineMs"}`; the worker
answers `{"result"}` or `{"error": {"errorType", "errorMessage"}}`. Before the first request the
worker sends `{"ready": true}` or, when the handler cannot be loaded, `{"error": …}` and exits.
The handler's own output (print, logging) goes to stderr, which the parent forwards to its log.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import struct
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, BinaryIO

__all__ = ["LambdaContext", "main"]

_LENGTH = struct.Struct(">I")


class LambdaContext:
    """The `context` argument Lambda's Python runtime passes to a handler."""

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.invoked_function_arn = os.environ.get("WSAUTH_LOCAL_FUNCTION_ARN", "")
        self.aws_request_id = request_id
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        """Return the milliseconds left before the function times out."""
        return max(0, self._deadline_ms - int(time.time() * 1000))


class _RequestIdFilter(logging.Filter):
    """Stamps each record with the current request id, as Lambda's log format has it."""

    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


def _read_message(stream: BinaryIO) -> dict[str, Any] | None:
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return None  # the parent closed the pipe: shut down
    (length,) = _LENGTH.unpack(header)
    body = stream.read(length)
    if len(body) < length:
        return None
    message: dict[str, Any] = json.loads(body)
    return message


def _write_message(stream: BinaryIO, message: dict[str, Any]) -> None:
    body = json.dumps(message, separators=(",", ":")).encode()
    stream.write(_LENGTH.pack(len(body)) + body)
    stream.flush()


def _error(exc: BaseException) -> dict[str, Any]:
    return {"errorType": type(exc).__name__, "errorMessage": str(exc)}


def _die_with_parent(parent_pid: int) -> None:
    """Have the kernel kill this worker as soon as the local cloud dies, even by SIGKILL.

    An idle worker ends when its stdin closes, but one stuck in a hung handler never reads it
    again and would outlive a killed `wsauth local`. Linux's parent-death signal covers both.
    """
    if sys.platform != "linux":
        return  # elsewhere the closed pipe still ends idle workers
    import ctypes

    pr_set_pdeathsig = 1  # <linux/prctl.h>
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)


def _load_handler(handler: str) -> Callable[[Any, LambdaContext], Any]:
    module_name, _, function_name = handler.rpartition(".")
    if not module_name:
        raise ValueError(f"bad handler {handler!r}: expected module.function")
    module = importlib.import_module(module_name)
    function: Callable[[Any, LambdaContext], Any] = getattr(module, function_name)
    return function


def main(argv: list[str]) -> int:
    """Serve invocations until the parent closes stdin.

    Args:
        argv: `[parent_pid, code_dir, handler, site_dir, ...]`.

    Returns:
        The process exit status.
    """
    parent_pid, code_dir, handler_name, *site_dirs = argv
    _die_with_parent(int(parent_pid))
    # Keep the protocol channel to ourselves: the handler's prints go to stderr (the log).
    requests = os.fdopen(os.dup(0), "rb")
    responses = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process

    # Lambda puts the task root first; the runtime's own packages (boto3) come after it.
    sys.path[:] = [code_dir, *[p for p in sys.path if p != os.path.dirname(__file__)], *site_dirs]
    os.chdir(code_dir)

    request_ids = _RequestIdFilter()
    log_handler = logging.StreamHandler(sys.stderr)
    log_handler.addFilter(request_ids)
    log_handler.setFormatter(
        logging.Formatter("[%(levelname)s]\t%(asctime)s\t%(aws_request_id)s\t%(message)s")
    )
    logging.getLogger().addHandler(log_handler)
    logging.getLogger().setLevel(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "WARNING"))

    try:
        handler = _load_handler(handler_name)
    except Exception as exc:  # any import failure is the function's init error
        traceback.print_exc()
        _write_message(responses, {"error": _error(exc)})
        return 1
    _write_message(responses, {"ready": True})

    while (request := _read_message(requests)) is not None:
        request_ids.request_id = request["requestId"]
        context = LambdaContext(request["requestId"], request["deadlineMs"])
        try:
            result = handler(request["event"], context)
            _write_message(responses, {"result": result})
        except Exception as exc:
            # Lambda logs the stack trace of an unhandled error and reports type and message.
            traceback.print_exc()
            try:
                _write_message(responses, {"error": _error(exc)})
            except Exception as marshal_exc:  # the error itself could not be serialized
                _write_message(responses, {"error": _error(marshal_exc)})
        sys.stderr.flush()
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
