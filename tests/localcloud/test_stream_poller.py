"""The stream poller on its own: order and shape of the events, batches, the batching window,
filters, retries of a failed batch, `enabled: false`, stopping.

An in-memory stream stands in for the embedded moto's DynamoDB Streams API (the same calls and
answers as boto3's client), and a recording invoker for the Lambda worker pool; the moto
behaviour and the real workers are in `test_local_streams.py`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from wsauth.localcloud.event_filters import parse_filters
from wsauth.localcloud.spec import FunctionError
from wsauth.localcloud.streams import (
    LOCAL_MAX_BATCHING_WINDOW,
    StreamMappingSpec,
    StreamPoller,
    stream_event_record,
)

REGION = "eu-west-1"
STREAM_ARN = (
    f"arn:aws:dynamodb:{REGION}:123456789012:table/connections/stream/2026-01-01T00:00:00.000"
)
POLL = 0.01


class FakeStream:
    """One shard of one stream, answering as boto3's `dynamodbstreams` client does."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.limits: list[int] = []
        self._lock = threading.Lock()

    def write(self, event_name: str, key: str) -> None:
        with self._lock:
            self.records.append(
                {
                    "eventID": uuid.uuid4().hex,
                    "eventName": event_name,
                    "eventVersion": "1.1",
                    "eventSource": "aws:dynamodb",
                    "awsRegion": REGION,
                    "dynamodb": {
                        "ApproximateCreationDateTime": datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC),
                        "Keys": {"connectionId": {"S": key}},
                        "SequenceNumber": str(1000 + len(self.records)),
                        "SizeBytes": 42,
                        "StreamViewType": "KEYS_ONLY",
                    },
                }
            )

    def describe_stream(self, StreamArn: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        assert StreamArn == STREAM_ARN
        shard = {"ShardId": "shard-1", "SequenceNumberRange": {"StartingSequenceNumber": "1000"}}
        return {"StreamDescription": {"StreamArn": StreamArn, "Shards": [shard]}}

    def get_shard_iterator(self, **request: Any) -> dict[str, Any]:
        assert request["ShardId"] == "shard-1"
        with self._lock:
            kind = request["ShardIteratorType"]
            position = 0 if kind == "TRIM_HORIZON" else len(self.records)
            if kind == "AFTER_SEQUENCE_NUMBER":
                position = int(request["SequenceNumber"]) - 1000 + 1
            return {"ShardIterator": str(position)}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:  # noqa: N803
        with self._lock:
            self.limits.append(Limit)
            position = int(ShardIterator)
            records = [dict(record) for record in self.records[position : position + Limit]]
            return {"Records": records, "NextShardIterator": str(position + len(records))}


class RecordingInvoker:
    """Records invocations; `behaviour(attempt)` decides what each one does."""

    def __init__(self, behaviour: Callable[[int], Awaitable[Any]] | None = None) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.cancelled = 0
        self._behaviour = behaviour
        self._changed = asyncio.Event()

    async def invoke(self, function_name: str, event: dict[str, Any]) -> Any:
        self.events.append((function_name, event))
        self._changed.set()
        try:
            if self._behaviour is not None:
                return await self._behaviour(len(self.events))
            return None
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    async def wait_for(self, count: int, timeout: float = 5) -> None:
        async with asyncio.timeout(timeout):
            while len(self.events) < count:
                self._changed.clear()
                await self._changed.wait()

    def keys(self) -> list[list[str]]:
        """The connection ids of each invocation's records, in order."""
        return [
            [record["dynamodb"]["Keys"]["connectionId"]["S"] for record in event["Records"]]
            for _, event in self.events
        ]


def _mapping(**changes: Any) -> StreamMappingSpec:
    mapping = StreamMappingSpec(
        name="counter-stream",
        uuid="6f0c1b2a-0000-4000-8000-000000000001",
        function_name="counter",
        event_source_arn=STREAM_ARN,
        table_name="connections",
    )
    return replace(mapping, **changes)


def _poller(
    stream: FakeStream, invoker: RecordingInvoker, *mappings: StreamMappingSpec
) -> StreamPoller:
    return StreamPoller(
        mappings or (_mapping(),), invoker, lambda: stream, poll_interval=POLL, retry_backoff=0.01
    )


def _run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_records_written_after_start_arrive_in_order_in_lambdas_event_shape() -> None:
    """From LATEST: what was there before is skipped; each record as Lambda shapes it."""
    stream, invoker = FakeStream(), RecordingInvoker()
    stream.write("INSERT", "old")
    poller = _poller(stream, invoker)

    async def scenario() -> None:
        await poller.start()
        try:
            for key in ("a", "b", "c"):
                stream.write("INSERT", key)
            stream.write("REMOVE", "a")
            await invoker.wait_for(1)
            while sum(map(len, invoker.keys())) < 4:
                await invoker.wait_for(len(invoker.events) + 1)
        finally:
            await poller.close()

    _run(scenario)
    assert [key for keys in invoker.keys() for key in keys] == ["a", "b", "c", "a"]
    assert {name for name, _ in invoker.events} == {"counter"}
    first = invoker.events[0][1]["Records"][0]
    assert first == {
        "eventID": stream.records[1]["eventID"],
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": REGION,
        "dynamodb": {
            "ApproximateCreationDateTime": 1767225605,
            "Keys": {"connectionId": {"S": "a"}},
            "SequenceNumber": "1001",
            "SizeBytes": 42,
            "StreamViewType": "KEYS_ONLY",
        },
        "eventSourceARN": STREAM_ARN,
    }
    assert poller.last_processing_result[_mapping().uuid] == "OK"


def test_trim_horizon_starts_at_the_oldest_record() -> None:
    """`TRIM_HORIZON` delivers what the stream held before the mapping started."""
    stream, invoker = FakeStream(), RecordingInvoker()
    stream.write("INSERT", "old")
    poller = _poller(stream, invoker, _mapping(starting_position="TRIM_HORIZON"))

    async def scenario() -> None:
        await poller.start()
        try:
            await invoker.wait_for(1)
        finally:
            await poller.close()

    _run(scenario)
    assert invoker.keys()[0] == ["old"]


def test_a_batch_holds_at_most_batch_size_records() -> None:
    """Seven waiting records with batch size 3 are three invocations: 3, 3, 1, in order."""
    stream, invoker = FakeStream(), RecordingInvoker()
    poller = _poller(stream, invoker, _mapping(batch_size=3, batching_window_seconds=1))

    async def scenario() -> None:
        await poller.start()
        try:
            for n in range(7):
                stream.write("INSERT", f"k{n}")
            await invoker.wait_for(3)
        finally:
            await poller.close()

    _run(scenario)
    assert invoker.keys() == [["k0", "k1", "k2"], ["k3", "k4", "k5"], ["k6"]]
    assert max(stream.limits) <= 3


def test_the_window_gathers_records_that_arrive_while_it_is_open() -> None:
    """With a window, records written apart within it go in one batch, invoked at its end."""
    stream, invoker = FakeStream(), RecordingInvoker()
    poller = _poller(stream, invoker, _mapping(batching_window_seconds=5))

    async def scenario() -> None:
        await poller.start()
        try:
            loop = asyncio.get_running_loop()
            began = loop.time()
            stream.write("INSERT", "first")
            await asyncio.sleep(LOCAL_MAX_BATCHING_WINDOW / 3)
            stream.write("INSERT", "second")
            await invoker.wait_for(1)
            waited = loop.time() - began
            # Capped locally: half a second, not the declared five.
            assert LOCAL_MAX_BATCHING_WINDOW - 0.05 <= waited < LOCAL_MAX_BATCHING_WINDOW + 0.5
        finally:
            await poller.close()

    _run(scenario)
    assert invoker.keys() == [["first", "second"]]


def test_filtered_out_records_never_reach_the_function() -> None:
    """With the counter's filter, MODIFY records are dropped; the others keep their order and
    fill the batches (records dropped take no room in one)."""
    stream, invoker = FakeStream(), RecordingInvoker()
    filters = parse_filters({"filters": [{"pattern": '{"eventName": ["INSERT", "REMOVE"]}'}]})
    mapping = _mapping(filters=filters, batch_size=2, batching_window_seconds=1)
    poller = _poller(stream, invoker, mapping)

    async def scenario() -> None:
        await poller.start()
        try:
            for name, key in [("INSERT", "a"), ("MODIFY", "a"), ("MODIFY", "b"), ("REMOVE", "a")]:
                stream.write(name, key)
            stream.write("INSERT", "c")
            await invoker.wait_for(2)
        finally:
            await poller.close()

    _run(scenario)
    names = [[r["eventName"] for r in event["Records"]] for _, event in invoker.events]
    assert names == [["INSERT", "REMOVE"], ["INSERT"]]
    assert invoker.keys() == [["a", "a"], ["c"]]


def test_a_failed_batch_is_retried_until_it_succeeds_then_the_next_follows(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two failures: the same batch three times, a warning for each failure, then the next."""

    async def fail_twice(attempt: int) -> None:
        if attempt <= 2:
            raise FunctionError("Unhandled", "RuntimeError: table busy")

    stream, invoker = FakeStream(), RecordingInvoker(fail_twice)
    poller = _poller(stream, invoker)

    async def scenario() -> None:
        await poller.start()
        try:
            stream.write("INSERT", "a")
            await invoker.wait_for(3)
            stream.write("INSERT", "b")
            await invoker.wait_for(4)
        finally:
            await poller.close()

    with caplog.at_level(logging.DEBUG, "wsauth.localcloud.streams"):
        _run(scenario)
    assert invoker.keys() == [["a"], ["a"], ["a"], ["b"]]
    first = invoker.events[0][1]
    assert all(event == first for _, event in invoker.events[:3])
    failures = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage().split(": ", 1)[0] for r in failures] == [
        "stream mapping connections → counter"
    ] * 2
    assert "retry 1" in failures[0].getMessage() and "table busy" in failures[0].getMessage()
    delivered = [r for r in caplog.records if "delivered" in r.getMessage()]
    assert [r.levelno for r in delivered] == [logging.DEBUG, logging.DEBUG]
    assert poller.last_processing_result[_mapping().uuid] == "OK"


def test_maximum_retry_attempts_discards_the_batch_and_moves_on() -> None:
    """With `maximum_retry_attempts` 1, a batch failing twice is dropped; the next one runs."""

    async def fail_on_a(attempt: int) -> None:
        if attempt <= 2:
            raise FunctionError("TimeoutError", "counter timed out after 3 s")

    stream, invoker = FakeStream(), RecordingInvoker(fail_on_a)
    poller = _poller(stream, invoker, _mapping(maximum_retry_attempts=1))

    async def scenario() -> None:
        await poller.start()
        try:
            stream.write("INSERT", "a")
            await invoker.wait_for(2)
            stream.write("INSERT", "b")
            await invoker.wait_for(3)
        finally:
            await poller.close()

    _run(scenario)
    assert invoker.keys() == [["a"], ["a"], ["b"]]


def test_a_disabled_mapping_is_named_but_never_reads(caplog: pytest.LogCaptureFixture) -> None:
    """`enabled: false`: the start-up line says so; the stream is not even described."""
    stream, invoker = FakeStream(), RecordingInvoker()
    opened: list[bool] = []
    poller = StreamPoller(
        [_mapping(enabled=False)], invoker, lambda: opened.append(True), poll_interval=POLL
    )

    async def scenario() -> None:
        await poller.start()
        stream.write("INSERT", "a")
        await asyncio.sleep(POLL * 5)
        await poller.close()

    with caplog.at_level(logging.INFO, "wsauth.localcloud.streams"):
        _run(scenario)
    assert invoker.events == [] and opened == []
    assert "stream mapping: connections → counter (all records) is disabled" in caplog.text


def test_start_names_each_mapping_with_its_filter_and_local_window(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One line per mapping, as the start-up summary shows it; unapplied settings warned."""
    stream, invoker = FakeStream(), RecordingInvoker()
    filters = parse_filters({"filters": [{"pattern": '{"eventName": ["INSERT", "REMOVE"]}'}]})
    mapping = _mapping(
        filters=filters,
        batching_window_seconds=5,
        not_applied=("bisect_batch_on_function_error (a failed batch is retried whole)",),
    )
    poller = _poller(stream, invoker, mapping)

    async def scenario() -> None:
        await poller.start()
        await poller.close()

    with caplog.at_level(logging.INFO, "wsauth.localcloud.streams"):
        _run(scenario)
    assert (
        "stream mapping: connections → counter (INSERT, REMOVE) from LATEST, batches of up to "
        "100, window 5 s (0.5 s locally)"
    ) in caplog.text
    assert "bisect_batch_on_function_error (a failed batch is retried whole) not applied" in (
        caplog.text
    )


def test_close_cancels_a_batch_in_flight_and_reads_no_more() -> None:
    """Stopping mid-invocation cancels it and returns; nothing is invoked afterwards."""
    entered = asyncio.Event()

    async def hang(attempt: int) -> None:
        entered.set()
        await asyncio.sleep(60)

    stream, invoker = FakeStream(), RecordingInvoker(hang)
    poller = _poller(stream, invoker)

    async def scenario() -> None:
        await poller.start()
        stream.write("INSERT", "a")
        await asyncio.wait_for(entered.wait(), 5)
        await asyncio.wait_for(poller.close(), 1)
        reads = len(stream.limits)
        stream.write("INSERT", "b")
        await asyncio.sleep(POLL * 5)
        assert len(stream.limits) == reads

    _run(scenario)
    assert invoker.cancelled == 1 and len(invoker.events) == 1


def test_binary_values_are_base64_text_as_in_lambdas_events() -> None:
    """boto3 decodes `B` values to bytes; the function gets them as JSON carries them."""
    record = {
        "eventID": "e",
        "eventName": "INSERT",
        "dynamodb": {
            "ApproximateCreationDateTime": datetime(2026, 1, 1, tzinfo=UTC),
            "Keys": {"id": {"B": b"\x00\x01"}},
            "NewImage": {"id": {"B": b"\x00\x01"}, "set": {"BS": [b"\xff"]}},
            "SequenceNumber": "7",
            "SizeBytes": 9,
            "StreamViewType": "NEW_IMAGE",
        },
    }
    shaped = stream_event_record(record, STREAM_ARN)
    assert shaped["dynamodb"]["Keys"] == {"id": {"B": "AAE="}}
    assert shaped["dynamodb"]["NewImage"]["set"] == {"BS": ["/w=="]}
    assert list(shaped) == [
        "eventID",
        "eventName",
        "eventVersion",
        "eventSource",
        "awsRegion",
        "dynamodb",
        "eventSourceARN",
    ]
