"""DynamoDB stream event source mappings run locally: the stream's records, in batches, to a
function, as Lambda's stream poller delivers them.

The realizer (`realizers/lambda_.py`) turns each `aws.lambda_.EventSourceMapping` on a table's
stream into a `StreamMappingSpec`; the `StreamPoller` runs them while the local cloud serves,
one asyncio task per mapping, reading the embedded moto's DynamoDB Streams API
(`GetShardIterator`, `GetRecords`). As Lambda does for a stream source, a mapping:

* starts at the stream's end when the local cloud starts (`LATEST`), or at its oldest record
  (`TRIM_HORIZON`);
* gathers up to `batch_size` records, waiting at most the batching window once the first one
  arrived (the declared `maximum_batching_window_in_seconds`, capped at
  `LOCAL_MAX_BATCHING_WINDOW` locally so a test waits half a second, not five);
* drops the records its `filter_criteria` do not let through (`event_filters.py`);
* invokes the function with `{"Records": [...]}` in AWS's DynamoDB stream event shape, one
  batch at a time and in stream order;
* retries a batch whose invocation failed (raised, timed out, worker died), after a short
  backoff, until it succeeds (or `maximum_retry_attempts` is spent), and only then moves on.

Lambda reads a stream with the function's execution role: no `aws.lambda_.Permission` is
involved, and none is checked here (IAM policies are not evaluated locally).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wsauth.localcloud.event_filters import EventFilter, matches_any
from wsauth.localcloud.spec import FunctionError, Invoker

__all__ = [
    "LOCAL_MAX_BATCHING_WINDOW",
    "StreamMappingSpec",
    "StreamPoller",
    "stream_event_record",
]

log = logging.getLogger("wsauth.localcloud.streams")

LOCAL_MAX_BATCHING_WINDOW = 0.5
"""Seconds a batch waits for more records at most locally, whatever the mapping declares."""

_GET_RECORDS_LIMIT = 1000
"""The most records one `GetRecords` returns (DynamoDB Streams' own limit)."""


@dataclass(frozen=True)
class StreamMappingSpec:
    """One `aws.lambda_.EventSourceMapping` whose source is a DynamoDB table's stream."""

    name: str
    """The resource's name in the program (for messages)."""
    uuid: str
    function_name: str
    """The program's function it invokes (resolved from a name or an ARN)."""
    event_source_arn: str
    """The stream's ARN, `arn:aws:dynamodb:{region}:{account}:table/{table}/stream/{label}`."""
    table_name: str
    starting_position: str = "LATEST"
    """`LATEST` or `TRIM_HORIZON`."""
    batch_size: int = 100
    batching_window_seconds: float = 0
    """As declared (`maximum_batching_window_in_seconds`); the wait is capped locally."""
    filters: tuple[EventFilter, ...] = ()
    enabled: bool = True
    maximum_retry_attempts: int = -1
    """Retries of a failed batch before it is discarded; -1 (Lambda's default): forever."""
    not_applied: tuple[str, ...] = ()
    """Declared settings the local cloud does not apply (named in a warning at start)."""

    @property
    def region(self) -> str:
        """The stream's region (its ARN's)."""
        return self.event_source_arn.split(":")[3]

    def describe_filters(self) -> str:
        """`INSERT, REMOVE` when the filters only pick event names; else the patterns."""
        if not self.filters:
            return "all records"
        names: list[str] = []
        for one in self.filters:
            picked = one.event_names()
            if picked is None:
                return " or ".join(f"matching {one.text}" for one in self.filters)
            names.extend(name for name in picked if name not in names)
        return ", ".join(names)


def stream_event_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """Return one record of a DynamoDB stream event, as Lambda gives it to the function.

    Args:
        record: A record as boto3's `GetRecords` returns it (times parsed, binaries decoded).
        stream_arn: The mapping's event source ARN (each record names it, as in AWS).
    """
    change = record["dynamodb"]
    body: dict[str, Any] = {"ApproximateCreationDateTime": _epoch_seconds(change)}
    for key in ("Keys", "NewImage", "OldImage"):
        if key in change:
            body[key] = _json_ready(change[key])
    body["SequenceNumber"] = change["SequenceNumber"]
    body["SizeBytes"] = change["SizeBytes"]
    body["StreamViewType"] = change["StreamViewType"]
    shaped: dict[str, Any] = {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": stream_arn.split(":")[3],
        "dynamodb": body,
    }
    if "userIdentity" in record:  # a deletion by Time to Live
        shaped["userIdentity"] = dict(record["userIdentity"])
    shaped["eventSourceARN"] = stream_arn
    return shaped


def _epoch_seconds(change: Mapping[str, Any]) -> int:
    # Lambda's events give the creation time as whole Unix seconds.
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        return int(created.timestamp())
    return int(created) if created is not None else int(time.time())


def _json_ready(value: Any) -> Any:
    """Attribute values as JSON carries them: binaries (`B`, `BS`) back to base64 text."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    if isinstance(value, Mapping):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [_json_ready(item) for item in value]
    return value


class _Reader:
    """One mapping's position in its stream's shard."""

    def __init__(self, mapping: StreamMappingSpec, client: Any, shard_id: str, iterator: str):
        self.mapping = mapping
        self.client = client
        self.shard_id = shard_id
        self.iterator = iterator
        self.last_sequence: str | None = None
        self.label = f"{mapping.table_name} → {mapping.function_name}"


class StreamPoller:
    """Runs the program's DynamoDB stream mappings while the local cloud serves.

    Args:
        mappings: The program's stream event source mappings.
        invoker: Runs the functions (the Lambda worker pool: no invoke permission is needed).
        client_factory: Returns a boto3 `dynamodbstreams` client of the embedded moto (called
            once, by `start`, when a mapping runs).
        poll_interval: Seconds between reads of a stream with nothing new (Lambda polls a
            shard four times a second).
        retry_backoff: Seconds before the first retry of a failed batch; doubled each time, up
            to `max_backoff`.
    """

    def __init__(
        self,
        mappings: Iterable[StreamMappingSpec],
        invoker: Invoker,
        client_factory: Callable[[], Any],
        *,
        poll_interval: float = 0.25,
        retry_backoff: float = 0.1,
        max_backoff: float = 2.0,
    ) -> None:
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be > 0, not {poll_interval}")
        self._mappings = tuple(mappings)
        self._invoker = invoker
        self._client_factory = client_factory
        self._poll_interval = poll_interval
        self._retry_backoff = retry_backoff
        self._max_backoff = max_backoff
        self._tasks: list[asyncio.Task[None]] = []
        self.last_processing_result: dict[str, str] = {
            mapping.uuid: "No records processed" for mapping in self._mappings
        }
        """Each mapping's `LastProcessingResult` (by uuid), as Lambda reports it."""

    async def start(self) -> None:
        """Log each mapping, open its stream where it starts, and start reading.

        Returns once every enabled mapping holds its shard iterator: a record written after
        that reaches a `LATEST` mapping.
        """
        running = []
        for mapping in self._mappings:
            log.info("%s", _summary(mapping))
            if not mapping.enabled:
                continue
            if mapping.not_applied:
                log.warning(
                    "stream mapping %s: %s not applied locally",
                    mapping.name,
                    "; ".join(mapping.not_applied),
                )
            running.append(mapping)
        if not running:
            return
        client = await asyncio.to_thread(self._client_factory)
        readers = await asyncio.gather(*(self._open(mapping, client) for mapping in running))
        self._tasks = [asyncio.create_task(self._run(reader)) for reader in readers]

    async def close(self) -> None:
        """Stop reading and cancel the invocations in flight; return once all have ended."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    # --- reading ------------------------------------------------------------------------------

    async def _open(self, mapping: StreamMappingSpec, client: Any) -> _Reader:
        description = await asyncio.to_thread(
            client.describe_stream, StreamArn=mapping.event_source_arn
        )
        shards = description["StreamDescription"]["Shards"]
        # The shard still written to: moto keeps one per stream. (AWS splits a stream into
        # shards over time; each would get its own reader.)
        shard = next(
            (s for s in shards if "EndingSequenceNumber" not in s["SequenceNumberRange"]),
            shards[-1],
        )
        iterator = await asyncio.to_thread(
            client.get_shard_iterator,
            StreamArn=mapping.event_source_arn,
            ShardId=shard["ShardId"],
            ShardIteratorType=mapping.starting_position,
        )
        return _Reader(mapping, client, shard["ShardId"], iterator["ShardIterator"])

    async def _reopen(self, reader: _Reader) -> None:
        """A fresh iterator after the last record read (the old one expired)."""
        arguments: dict[str, Any] = {
            "StreamArn": reader.mapping.event_source_arn,
            "ShardId": reader.shard_id,
        }
        if reader.last_sequence is None:
            arguments["ShardIteratorType"] = reader.mapping.starting_position
        else:
            arguments["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER"
            arguments["SequenceNumber"] = reader.last_sequence
        answer = await asyncio.to_thread(reader.client.get_shard_iterator, **arguments)
        reader.iterator = answer["ShardIterator"]

    async def _read(self, reader: _Reader, limit: int) -> list[dict[str, Any]]:
        """One `GetRecords`; a failed read is logged and tried again."""
        failures = 0
        while True:
            try:
                answer = await asyncio.to_thread(
                    reader.client.get_records, ShardIterator=reader.iterator, Limit=limit
                )
            except Exception as error:  # moto answering an error, or not answering
                code = getattr(error, "response", {}).get("Error", {}).get("Code")
                if code in ("ExpiredIteratorException", "TrimmedDataAccessException"):
                    log.info("stream mapping %s: %s, reading on from there", reader.label, code)
                    await self._reopen(reader)
                    continue
                failures += 1
                delay = self._backoff(failures)
                log.warning(
                    "stream mapping %s: reading the stream failed (%s: %s); again in %.1f s",
                    reader.label,
                    type(error).__name__,
                    error,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            records: list[dict[str, Any]] = answer.get("Records") or []
            if records:
                reader.last_sequence = records[-1]["dynamodb"]["SequenceNumber"]
            next_iterator = answer.get("NextShardIterator")
            if next_iterator:
                reader.iterator = next_iterator
            else:  # the shard was closed (its table's stream disabled)
                await self._reopen(reader)
            return records

    async def _next_batch(self, reader: _Reader) -> list[dict[str, Any]]:
        """Gather the next batch: up to `batch_size` records that pass the filters."""
        mapping = reader.mapping
        loop = asyncio.get_running_loop()
        window = min(mapping.batching_window_seconds, LOCAL_MAX_BATCHING_WINDOW)
        batch: list[dict[str, Any]] = []
        first_at: float | None = None
        while True:
            limit = min(_GET_RECORDS_LIMIT, mapping.batch_size - len(batch))
            records = await self._read(reader, limit)
            for record in records:
                shaped = stream_event_record(record, mapping.event_source_arn)
                if matches_any(mapping.filters, shaped):
                    batch.append(shaped)
            now = loop.time()
            if batch and first_at is None:
                first_at = now
            if first_at is not None:
                waited = now - first_at
                if len(batch) >= mapping.batch_size or waited >= window:
                    return batch
            if not records:  # nothing new: wait for the next poll (or the window's end)
                pause = self._poll_interval
                if first_at is not None:
                    pause = min(pause, max(0.0, window - (now - first_at)))
                await asyncio.sleep(pause)

    # --- delivering ---------------------------------------------------------------------------

    async def _run(self, reader: _Reader) -> None:
        while True:
            batch = await self._next_batch(reader)
            await self._deliver(reader, batch)

    async def _deliver(self, reader: _Reader, batch: Sequence[dict[str, Any]]) -> None:
        """Invoke the function with one batch until it succeeds (or the retries are spent)."""
        mapping = reader.mapping
        event = {"Records": list(batch)}
        span = _sequence_span(batch)
        failures = 0
        while True:
            began = time.perf_counter()
            try:
                await self._invoker.invoke(mapping.function_name, event)
            except FunctionError as failure:
                error = str(failure)
            except Exception as failure:  # the poller must outlive any one invocation
                error = f"{type(failure).__name__}: {failure}"
            else:
                self.last_processing_result[mapping.uuid] = "OK"
                log.debug(
                    "stream mapping %s: %d records (%s) delivered in %.0f ms",
                    reader.label,
                    len(batch),
                    span,
                    (time.perf_counter() - began) * 1000,
                )
                return
            failures += 1
            self.last_processing_result[mapping.uuid] = "PROBLEM: Function call failed"
            if 0 <= mapping.maximum_retry_attempts < failures:
                log.warning(
                    "stream mapping %s: batch of %d records (%s) failed (%s); discarded after "
                    "%d retries (maximum_retry_attempts)",
                    reader.label,
                    len(batch),
                    span,
                    error,
                    mapping.maximum_retry_attempts,
                )
                return
            delay = self._backoff(failures)
            log.warning(
                "stream mapping %s: batch of %d records (%s) failed (%s); retry %d in %.1f s",
                reader.label,
                len(batch),
                span,
                error,
                failures,
                delay,
            )
            await asyncio.sleep(delay)

    def _backoff(self, failures: int) -> float:
        return float(min(self._retry_backoff * 2 ** (failures - 1), self._max_backoff))


def _sequence_span(batch: Sequence[Mapping[str, Any]]) -> str:
    first = batch[0]["dynamodb"]["SequenceNumber"]
    last = batch[-1]["dynamodb"]["SequenceNumber"]
    return f"sequence {first}" if first == last else f"sequence {first}–{last}"


def _summary(mapping: StreamMappingSpec) -> str:
    """The start-up line naming a mapping, e.g. `stream mapping: connections → counter
    (INSERT, REMOVE) from LATEST, batches of up to 100, window 5 s (0.5 s locally)`."""
    head = (
        f"stream mapping: {mapping.table_name} → {mapping.function_name} "
        f"({mapping.describe_filters()})"
    )
    if not mapping.enabled:
        return f"{head} is disabled (enabled: false): not run"
    window = f"window {mapping.batching_window_seconds:g} s"
    if mapping.batching_window_seconds > LOCAL_MAX_BATCHING_WINDOW:
        window += f" ({LOCAL_MAX_BATCHING_WINDOW:g} s locally)"
    return (
        f"{head} from {mapping.starting_position}, batches of up to {mapping.batch_size}, {window}"
    )
