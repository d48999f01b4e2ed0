"""CloudWatch metrics as embedded metric format (EMF) lines: no API call, no IAM of their own.

Inside a Lambda function (`AWS_LAMBDA_FUNCTION_NAME` set) a line printed to stdout is a log
event; CloudWatch Logs turns a JSON object that carries an `_aws.CloudWatchMetrics` directive
into metrics. Anywhere else (tests, `wsauth notify`, another service) nothing is printed.

Namespace `WsAuth`, dimensions exactly `ApiId` and `Stage`:

- `ConnectionCount`: open connections, published by the minute job;
- `FailedPushes`: `@connections` calls that failed (429, 5xx, network), not 410;
- `GonePushes`: `@connections` calls answered 410 Gone.

Push outcomes are counted into the `PushCounts` of the enclosing `counting_pushes()` scope (an
invocation, one `send_to_user` call): `sender` calls `count_push` on failed and gone outcomes
only, so a delivered push costs nothing here. The scope's owner publishes the counts as at most
one line (`publishing_pushes` does both), and none when nothing failed or was gone.
"""

from __future__ import annotations

import contextvars
import json
import os
import re
import threading
import time
from collections.abc import Mapping

__all__ = [
    "CONNECTION_COUNT",
    "FAILED_PUSHES",
    "GONE_PUSHES",
    "NAMESPACE",
    "PushCounts",
    "count_push",
    "counting_pushes",
    "emf_line",
    "endpoint_dimensions",
    "in_lambda",
    "publish",
    "publishing_pushes",
]

NAMESPACE = "WsAuth"
CONNECTION_COUNT = "ConnectionCount"
FAILED_PUSHES = "FailedPushes"
GONE_PUSHES = "GonePushes"

_EXECUTE_API_ENDPOINT = re.compile(
    r"^https://([a-z0-9]+)\.execute-api\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?(?::443)?"
    r"/([A-Za-z0-9_-]+)/?$"
)


def in_lambda() -> bool:
    """Whether this process is a Lambda function's (where stdout reaches CloudWatch Logs)."""
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def emf_line(
    values: Mapping[str, int], *, api_id: str, stage: str, timestamp_ms: int | None = None
) -> str:
    """Return one EMF log line carrying `values` (metric name → count), each of unit Count.

    Args:
        values: The metrics, in the order they are to be declared.
        api_id: The `ApiId` dimension's value.
        stage: The `Stage` dimension's value.
        timestamp_ms: The metrics' time (epoch milliseconds); now by default.
    """
    document = {
        "_aws": {
            "Timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [["ApiId", "Stage"]],
                    "Metrics": [{"Name": name, "Unit": "Count"} for name in values],
                }
            ],
        },
        "logger": "metrics",
        "ApiId": api_id,
        "Stage": stage,
        **values,
    }
    # One line: CloudWatch Logs takes a log event, which is a line of a Lambda's stdout.
    return json.dumps(document, separators=(",", ":"))


def publish(values: Mapping[str, int], *, api_id: str | None, stage: str | None) -> bool:
    """Print `values` as one EMF line, inside a Lambda function only.

    Nothing is printed when `values` is empty, a dimension is unknown, or outside Lambda.

    Returns:
        Whether a line was printed.
    """
    if not values or not api_id or not stage or not in_lambda():
        return False
    print(emf_line(values, api_id=api_id, stage=stage), flush=True)
    return True


def endpoint_dimensions(endpoint_url: str | None) -> tuple[str, str] | None:
    """Return `(api_id, stage)` from `https://{api_id}.execute-api.{region}.amazonaws.com/{stage}`,
    or None for any other endpoint (a custom domain, the local cloud's)."""
    match = _EXECUTE_API_ENDPOINT.match(endpoint_url or "")
    return (match.group(1), match.group(2)) if match else None


class PushCounts:
    """How many `@connections` calls failed or found the connection gone; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.failed = 0
        self.gone = 0

    def add(self, status: str) -> None:
        """Count one call whose outcome is `failed` or `gone` (any other status is ignored)."""
        with self._lock:
            if status == "failed":
                self.failed += 1
            elif status == "gone":
                self.gone += 1

    def metrics(self) -> dict[str, int]:
        """The non-zero counts by metric name (empty when every call went through)."""
        with self._lock:
            counts = {FAILED_PUSHES: self.failed, GONE_PUSHES: self.gone}
        return {name: count for name, count in counts.items() if count}


_current: contextvars.ContextVar[PushCounts | None] = contextvars.ContextVar(
    "wsauth_push_counts", default=None
)


class counting_pushes:  # noqa: N801 (used as a function: `with counting_pushes() as counts`)
    """Count the push outcomes of the enclosed code (and of the threads it runs its pushes in
    through `sender.for_each_connection`) into a new `PushCounts`, which it yields.

    A class rather than a generator: the websocket function enters one per message.
    """

    __slots__ = ("_counts", "_token")

    def __init__(self) -> None:
        self._counts = PushCounts()

    def __enter__(self) -> PushCounts:
        self._token = _current.set(self._counts)
        return self._counts

    def __exit__(self, *exc_info: object) -> None:
        _current.reset(self._token)


class publishing_pushes(counting_pushes):  # noqa: N801
    """`counting_pushes`, then `publish` the counts (at most one line, none when all were
    delivered), even when the enclosed code raised."""

    __slots__ = ("_api_id", "_stage")

    def __init__(self, api_id: str | None, stage: str | None) -> None:
        super().__init__()
        self._api_id = api_id
        self._stage = stage

    def __exit__(self, *exc_info: object) -> None:
        super().__exit__(*exc_info)
        counts = self._counts
        if counts.failed or counts.gone:
            publish(counts.metrics(), api_id=self._api_id, stage=self._stage)


def count_push(status: str) -> None:
    """Count a `failed` or `gone` outcome into the enclosing scope's counts, if any."""
    counts = _current.get()
    if counts is not None:
        counts.add(status)
