"""Metrics locally: the functions' embedded-metric-format lines, published to the embedded
CloudWatch as Lambda's log pipeline publishes them to CloudWatch.

In AWS, a line a function prints that is a JSON object with an `_aws.CloudWatchMetrics` block
(the embedded metric format, EMF) becomes metric data: namespace, dimensions, values, unit and
timestamp as the line says, with no `PutMetricData` call of the function's own. Here the Lambda
runtime hands such lines to a `MetricsPublisher` (only those: `is_emf_line` is a prefix and a
substring test, cheap enough for the log forwarding every invocation goes through), which
publishes them to moto's CloudWatch from a thread of its own, so
`boto3.client("cloudwatch", endpoint_url=awsEndpoint)` reads them, and logs once a minute the
latest value of each metric published in that minute.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "EmfError",
    "MetricDatum",
    "MetricsPublisher",
    "is_emf_line",
    "parse_emf",
]

log = logging.getLogger("wsauth.localcloud.metrics")

_MARKER = b'"_aws"'
_MAX_DATA_PER_CALL = 1000  # PutMetricData's limit
_UNITS = frozenset(
    {
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    }
)


def is_emf_line(line: bytes) -> bool:
    """Whether a line a function printed may be EMF: a JSON object naming `"_aws"`.

    Only such lines are parsed; the test costs a byte comparison for every other line.
    """
    return line[:1] == b"{" and _MARKER in line


class EmfError(ValueError):
    """A line that names `_aws` but is not valid EMF (CloudWatch would publish nothing)."""


@dataclass(frozen=True)
class MetricDatum:
    """One metric's value(s) from one EMF line, as `PutMetricData` takes them."""

    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    values: tuple[float, ...]
    unit: str
    timestamp: datetime
    storage_resolution: int = 60

    def as_metric_data(self) -> dict[str, Any]:
        """This datum as an item of `PutMetricData`'s `MetricData`."""
        data: dict[str, Any] = {
            "MetricName": self.name,
            "Dimensions": [{"Name": key, "Value": value} for key, value in self.dimensions],
            "Timestamp": self.timestamp,
            "Unit": self.unit,
            "StorageResolution": self.storage_resolution,
        }
        if len(self.values) == 1:
            data["Value"] = self.values[0]
        else:
            data["Values"] = list(self.values)
        return data


def parse_emf(line: bytes | str) -> list[MetricDatum]:
    """Read the metrics of one EMF line (the embedded metric format's specification).

    Args:
        line: What the function printed.

    Returns:
        One datum per metric and dimension set of each directive.

    Raises:
        EmfError: Not a JSON object, no `_aws` block, or a directive that is not valid: a
            missing timestamp, namespace or metric value, a dimension whose value is not a
            string, a value that is not a finite number, an unknown unit.
    """
    try:
        root = json.loads(line)
    except ValueError as error:
        raise EmfError(f"not JSON ({error})") from None
    if not isinstance(root, dict) or not isinstance(root.get("_aws"), dict):
        raise EmfError("no _aws object")
    metadata = root["_aws"]
    stamp = metadata.get("Timestamp")
    if not _is_number(stamp):
        raise EmfError("_aws.Timestamp must be milliseconds since the epoch")
    timestamp = datetime.fromtimestamp(stamp / 1000, UTC)
    directives = metadata.get("CloudWatchMetrics")
    if not isinstance(directives, list):
        raise EmfError("_aws.CloudWatchMetrics must be a list")
    data: list[MetricDatum] = []
    for directive in directives:
        data.extend(_directive_data(root, directive, timestamp))
    return data


def _directive_data(root: dict[str, Any], directive: Any, timestamp: datetime) -> list[MetricDatum]:
    if not isinstance(directive, dict):
        raise EmfError("a CloudWatchMetrics item must be an object")
    namespace = directive.get("Namespace")
    if not isinstance(namespace, str) or not namespace:
        raise EmfError("Namespace must be a non-empty string")
    dimension_sets = directive.get("Dimensions")
    metrics = directive.get("Metrics")
    if not isinstance(dimension_sets, list) or not isinstance(metrics, list):
        raise EmfError(f"{namespace}: Dimensions and Metrics must be lists")
    resolved_sets = [_dimensions(root, keys, namespace) for keys in dimension_sets] or [()]
    data: list[MetricDatum] = []
    for metric in metrics:
        if not isinstance(metric, dict) or not isinstance(metric.get("Name"), str):
            raise EmfError(f"{namespace}: each metric needs a Name")
        name = metric["Name"]
        unit = metric.get("Unit", "None")
        if unit not in _UNITS:
            raise EmfError(f"{namespace}/{name}: unknown unit {unit!r}")
        resolution = metric.get("StorageResolution", 60)
        if resolution not in (1, 60):
            raise EmfError(f"{namespace}/{name}: StorageResolution must be 1 or 60")
        values = _values(root.get(name), f"{namespace}/{name}")
        data.extend(
            MetricDatum(namespace, name, dimensions, values, unit, timestamp, resolution)
            for dimensions in resolved_sets
        )
    return data


def _dimensions(root: dict[str, Any], keys: Any, namespace: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(keys, list):
        raise EmfError(f"{namespace}: a dimension set must be a list of names")
    resolved = []
    for key in keys:
        value = root.get(key) if isinstance(key, str) else None
        if not isinstance(value, str):
            raise EmfError(f"{namespace}: dimension {key!r} needs a string value")
        resolved.append((key, value))
    return tuple(resolved)


def _values(value: Any, metric: str) -> tuple[float, ...]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(_is_number(item) for item in values):
        raise EmfError(f"{metric}: the value must be a finite number or a list of them")
    return tuple(float(item) for item in values)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


_Key = tuple[str, tuple[tuple[str, str], ...]]  # namespace, dimensions


class MetricsPublisher:
    """Publishes EMF lines to CloudWatch from a thread of its own; logs each minute's latest
    values (one line per namespace and dimensions published in that minute).

    Args:
        client_factory: Returns the boto3 CloudWatch client (called once, in the thread: a
            local cloud whose functions print no metrics never builds one).
        report_seconds: How often the latest values are logged.
    """

    def __init__(self, client_factory: Callable[[], Any], *, report_seconds: float = 60.0) -> None:
        self._client_factory = client_factory
        self._client: Any = None
        self._report_seconds = report_seconds
        self._queue: queue.SimpleQueue[list[MetricDatum] | threading.Event | None] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._latest: dict[_Key, dict[str, float]] = {}
        self._fresh: dict[_Key, set[str]] = {}  # published since the last report

    def submit(self, line: bytes, source: str = "") -> bool:
        """Queue the metrics of one EMF line for publishing.

        Args:
            line: What the function printed (`is_emf_line` said it may be EMF).
            source: Who printed it (a worker's label), for the log.

        Returns:
            False for a line that is not valid EMF: it is ignored, with a debug log line.
        """
        try:
            data = parse_emf(line)
        except EmfError as error:
            log.debug("[%s] not published, not valid EMF: %s", source, error)
            return False
        if data:
            self._queue.put(data)
        return True

    def start(self) -> None:
        """Start the publishing thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="emf-publisher", daemon=True)
            self._thread.start()

    def flush(self, timeout: float = 10) -> bool:
        """Wait until everything submitted so far is published; False after `timeout`."""
        if self._thread is None:
            return self._queue.empty()
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self, timeout: float = 10) -> None:
        """Publish what is queued, log the last values, stop the thread."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)
        self._thread = None

    def report(self) -> list[str]:
        """Log (and return) one line per namespace and dimensions published since the last
        report, with the latest value of each metric published meanwhile."""
        with self._lock:
            fresh, self._fresh = self._fresh, {}
            lines = []
            for key, names in fresh.items():
                namespace, dimensions = key
                latest = self._latest[key]
                where = " ".join(f"{name}={value}" for name, value in dimensions)
                values = " ".join(f"{name}={latest[name]:g}" for name in sorted(names))
                lines.append(f"metrics {namespace}{' ' + where if where else ''}: {values}")
        for line in lines:
            log.info("%s", line)
        return lines

    def latest(
        self, namespace: str, name: str, dimensions: Mapping[str, str] | None = None
    ) -> float | None:
        """The last published value of a metric with exactly these dimensions (None if none
        was)."""
        wanted = dict(dimensions or {})
        with self._lock:
            for (found_namespace, found_dimensions), values in self._latest.items():
                if found_namespace == namespace and dict(found_dimensions) == wanted:
                    return values.get(name)
        return None

    def _run(self) -> None:
        due = time.monotonic() + self._report_seconds
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, due - time.monotonic()))
            except queue.Empty:
                item = []
            if time.monotonic() >= due:
                self.report()
                due = time.monotonic() + self._report_seconds
            if item is None:
                self.report()
                return
            if isinstance(item, threading.Event):
                item.set()
            elif item:
                self._publish(item)

    def _publish(self, data: list[MetricDatum]) -> None:
        try:
            if self._client is None:
                self._client = self._client_factory()
            for namespace, batch in _by_namespace(data):
                for start in range(0, len(batch), _MAX_DATA_PER_CALL):
                    chunk = batch[start : start + _MAX_DATA_PER_CALL]
                    self._client.put_metric_data(
                        Namespace=namespace,
                        MetricData=[datum.as_metric_data() for datum in chunk],
                    )
        except Exception as error:  # the publisher must outlive a failed call
            log.warning("metrics not published to the embedded CloudWatch: %s", error)
            return
        with self._lock:
            for datum in data:
                key = (datum.namespace, datum.dimensions)
                self._latest.setdefault(key, {})[datum.name] = datum.values[-1]
                self._fresh.setdefault(key, set()).add(datum.name)


def _by_namespace(data: Iterable[MetricDatum]) -> list[tuple[str, list[MetricDatum]]]:
    grouped: dict[str, list[MetricDatum]] = {}
    for datum in data:
        grouped.setdefault(datum.namespace, []).append(datum)
    return list(grouped.items())
