"""The live connection count: kept from the table's stream by the counter (every connection
item created counts in, every one removed, by whatever path, counts out), read with one GetItem
and published by the minute job."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.handlers.test_sessions import Management
from tests.support import connection_items
from wsauth.handlers import admission, connection_counter, connections, sender, sweeper, websocket

EmfLines = Callable[[], list[dict[str, Any]]]
USER = "sub-alice"
ENDPOINT = "https://abcdef1234.execute-api.us-east-1.amazonaws.com/prod"


def _connect(connection_id: str, **authorizer: Any) -> dict[str, Any]:
    return {
        "requestContext": {
            "routeKey": "$connect",
            "eventType": "CONNECT",
            "connectionId": connection_id,
            "connectedAt": int(time.time() * 1000),
            "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
            "stage": "prod",
            "apiId": "abcdef1234",
            "authorizer": {"principalId": USER, "userId": USER, "username": "alice", **authorizer},
        },
    }


def _disconnect(connection_id: str) -> dict[str, Any]:
    event = _connect(connection_id)
    event["requestContext"].update(routeKey="$disconnect", eventType="DISCONNECT")
    return event


def _store(dynamodb: Any, table_name: str, connection_id: str, **options: Any) -> None:
    settings: dict[str, Any] = {
        "user_id": USER, "username": "alice", "connected_at_ms": 1, "ttl_seconds": 10800,
    }  # fmt: skip
    settings.update(options)
    connections.put_connection(dynamodb, table_name, connection_id=connection_id, **settings)


@pytest.fixture
def management(monkeypatch: pytest.MonkeyPatch) -> Management:
    """The stand-in `@connections` every handler gets."""
    stand_in = Management()
    monkeypatch.setattr(sender, "management_client", lambda *args, **kwargs: stand_in)
    return stand_in


# --- the counter, fed the table's own stream ---------------------------------------------------


class Stream:
    """The table's stream (moto's), from now on: what Lambda's event source mapping reads."""

    def __init__(self, dynamodb: Any, table_name: str) -> None:
        import boto3

        table = dynamodb.update_table(
            TableName=table_name,
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "OLD_IMAGE"},
        )["TableDescription"]
        from botocore.config import Config

        # botocore's account-based endpoint (`{account}.streams-ddb…`) is unknown to moto.
        self._streams = boto3.client(
            "dynamodbstreams",
            region_name="us-east-1",
            config=Config(account_id_endpoint_mode="disabled"),
        )
        self.arn = arn = table["LatestStreamArn"]
        shard = self._streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
        self._iterator = self._streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]

    def deliver(self) -> dict[str, int]:
        """Pass the new INSERT and REMOVE records to the counter, as the mapping's filter does
        (Lambda adds each record's `eventSourceARN`)."""
        answer = self._streams.get_records(ShardIterator=self._iterator)
        self._iterator = answer["NextShardIterator"]
        records = [
            {**r, "eventSourceARN": self.arn}
            for r in answer["Records"]
            if r["eventName"] in ("INSERT", "REMOVE")
        ]
        return connection_counter.handler({"Records": _plain(records)}, None)


def _plain(value: Any) -> Any:
    """Records as Lambda passes them: JSON (boto3 parses the creation time into a datetime)."""
    import json

    return json.loads(json.dumps(value, default=lambda when: when.timestamp()))


@pytest.fixture
def stream(dynamodb: Any, table_name: str, monkeypatch: pytest.MonkeyPatch) -> Stream:
    monkeypatch.setenv("CONNECTION_TABLE_NAME", table_name)
    return Stream(dynamodb, table_name)


def _count(dynamodb: Any, table_name: str) -> int:
    return connections.open_connection_count(dynamodb, table_name)


def test_connects_and_disconnects_move_the_count(
    dynamodb: Any, table_name: str, stream: Stream
) -> None:
    websocket.handler(_connect("conn-1"), None)
    websocket.handler(_connect("conn-2"), None)
    assert stream.deliver() == {"created": 2, "removed": 0}
    assert _count(dynamodb, table_name) == 2

    websocket.handler(_disconnect("conn-1"), None)
    websocket.handler(_disconnect("conn-1"), None)  # a repeated $disconnect removes nothing
    assert stream.deliver() == {"created": 0, "removed": 1}
    assert _count(dynamodb, table_name) == 1


def test_every_path_that_removes_an_item_counts_out(
    dynamodb: Any, table_name: str, stream: Stream, management: Management
) -> None:
    """A 410 on a push, the limit's healing and an item deleted by hand (or the TTL, which
    writes the same REMOVE record) all count out, with no code of theirs for it."""
    from wsauth.handlers import users

    now_ms = int(time.time() * 1000)
    for name in ("pushed-gone", "healed", "by-hand", "live"):
        _store(dynamodb, table_name, name, connected_at_ms=now_ms, counted=True)
        users.count_connection(dynamodb, table_name, USER, limit=4, now=time.time())
    stream.deliver()
    assert _count(dynamodb, table_name) == 4

    management.gone = {"pushed-gone"}
    sender.send_to_connection("pushed-gone", {"n": 1}, table_name=table_name, endpoint_url=ENDPOINT)
    management.gone = {"healed"}
    # A minute later, at its limit of 3, the user's next handshake heals the count: `healed`
    # is forgotten.
    admission.admit(
        dynamodb, table_name, management, user_id=USER, auth_time=time.time(), limit=3,
        check_revocation=False, now=time.time() + 60,
    )  # fmt: skip
    dynamodb.delete_item(TableName=table_name, Key={"connectionId": {"S": "by-hand"}})

    assert stream.deliver() == {"created": 0, "removed": 3}
    assert _count(dynamodb, table_name) == 1


def test_users_items_and_the_count_itself_are_not_connections(
    dynamodb: Any, table_name: str, stream: Stream
) -> None:
    """A user's item (sign-out record, per-user count) and `stats#connections` come and go in
    the same stream; only connection items count."""
    from wsauth.handlers import users

    users.count_connection(dynamodb, table_name, USER, limit=10, now=time.time())
    websocket.handler(_connect("conn-1"), None)
    assert stream.deliver() == {"created": 1, "removed": 0}
    dynamodb.delete_item(TableName=table_name, Key={"connectionId": {"S": f"user#{USER}"}})

    assert stream.deliver() == {"created": 0, "removed": 0}
    assert _count(dynamodb, table_name) == 1


def test_a_batch_is_one_write_and_a_quiet_one_none(
    dynamodb: Any, table_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONNECTION_TABLE_NAME", table_name)
    writes: list[dict[str, Any]] = []

    class Recording:
        def __getattr__(self, name: str) -> Any:
            return getattr(dynamodb, name)

        def update_item(self, **request: Any) -> Any:
            writes.append(request)
            return dynamodb.update_item(**request)

    monkeypatch.setattr(connections, "dynamodb_client", lambda: Recording())

    def record(event: str, key: str) -> dict[str, Any]:
        return _record(event, key)

    batch = [record("INSERT", f"c{n}") for n in range(7)] + [record("REMOVE", "c0")]
    assert connection_counter.handler({"Records": batch}, None) == {"created": 7, "removed": 1}
    assert connection_counter.handler({"Records": [record("MODIFY", "c1")]}, None) == {
        "created": 0,
        "removed": 0,
    }
    assert connection_counter.handler({"Records": []}, None) == {"created": 0, "removed": 0}

    # The stream's first batch also claims the count for it (a second, conditional write).
    assert [w["ExpressionAttributeValues"][":change"] for w in writes] == [{"N": "6"}] * 2
    writes.clear()
    connection_counter.handler({"Records": [record("INSERT", f"d{n}") for n in range(3)]}, None)
    assert len(writes) == 1
    assert _count(dynamodb, table_name) == 9


def test_a_refused_write_fails_the_batch_for_lambda_to_retry(
    dynamodb: Any, table_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONNECTION_TABLE_NAME", table_name)

    class NoUpdates:
        def __getattr__(self, name: str) -> Any:
            return getattr(dynamodb, name)

        def update_item(self, **request: Any) -> Any:
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "U")

    monkeypatch.setattr(connections, "dynamodb_client", lambda: NoUpdates())
    batch = [_record("INSERT", "c1")]

    with pytest.raises(ClientError):
        connection_counter.handler({"Records": batch}, None)


STREAM = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-11-27T12:00:00.000"
STREAM_STARTED_MS = 1_795_780_800_000  # 2026-11-27T12:00:00Z


def _record(event: str, key: str, connected_at_ms: int | None = None) -> dict[str, Any]:
    change: dict[str, Any] = {"Keys": {"connectionId": {"S": key}}}
    if connected_at_ms is not None:
        change["OldImage"] = {
            "connectionId": {"S": key},
            "connectedAt": {"N": str(connected_at_ms)},
        }
    return {"eventName": event, "dynamodb": change, "eventSourceARN": STREAM}


def test_a_stream_starts_at_its_label() -> None:
    assert connection_counter.stream_started_ms(STREAM) == STREAM_STARTED_MS
    with pytest.raises(ValueError, match="not a DynamoDB stream ARN"):
        connection_counter.stream_started_ms("arn:aws:dynamodb:us-east-1:1:table/t")


def test_connections_from_before_the_stream_are_not_counted_out(
    dynamodb: Any, table_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stored before the stream began, a connection was never counted in: its removal leaves
    the count, so the count is never pushed below the truth for good."""
    monkeypatch.setenv("CONNECTION_TABLE_NAME", table_name)
    batch = [
        _record("INSERT", "new-1"),
        _record("INSERT", "new-2"),
        _record("REMOVE", "old", connected_at_ms=STREAM_STARTED_MS - 1),
        _record("REMOVE", "new-1", connected_at_ms=STREAM_STARTED_MS + 5),
    ]

    assert connection_counter.handler({"Records": batch}, None) == {"created": 2, "removed": 1}
    assert _count(dynamodb, table_name) == 1


def test_a_new_stream_starts_the_count_over_and_an_old_one_is_ignored(
    dynamodb: Any, table_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table's stream replaced: the count belongs to the newest; a late batch of the old
    one changes nothing."""
    monkeypatch.setenv("CONNECTION_TABLE_NAME", table_name)
    newer = STREAM.replace("2026-11-27T12", "2026-11-28T12")
    connection_counter.handler({"Records": [_record("INSERT", f"c{n}") for n in range(5)]}, None)

    moved = [{**_record("INSERT", "d1"), "eventSourceARN": newer}]
    connection_counter.handler({"Records": moved}, None)
    assert _count(dynamodb, table_name) == 1
    connection_counter.handler({"Records": [_record("INSERT", "late")]}, None)
    assert _count(dynamodb, table_name) == 1


def test_two_shards_claiming_a_new_stream_at_once_both_count(
    dynamodb: Any, table_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shards of one stream run side by side: when another shard's batch claims the count just
    after this batch found it unclaimed, this batch adds to that claim instead of losing its
    change."""
    monkeypatch.setenv("CONNECTION_TABLE_NAME", table_name)
    label = STREAM.rpartition("/stream/")[2]

    class Racing:
        raced = False

        def __getattr__(self, name: str) -> Any:
            return getattr(dynamodb, name)

        def update_item(self, **request: Any) -> Any:
            try:
                return dynamodb.update_item(**request)
            except dynamodb.exceptions.ConditionalCheckFailedException:
                if not Racing.raced:  # the other shard's claim lands now
                    Racing.raced = True
                    dynamodb.put_item(
                        TableName=table_name,
                        Item={
                            "connectionId": {"S": "stats#connections"},
                            "openConnections": {"N": "5"},
                            "streamLabel": {"S": label},
                        },
                    )
                raise

    monkeypatch.setattr(connections, "dynamodb_client", lambda: Racing())

    connection_counter.handler({"Records": [_record("INSERT", f"c{n}") for n in range(3)]}, None)

    assert Racing.raced
    assert _count(dynamodb, table_name) == 8


def test_the_count_is_never_read_below_zero(
    dynamodb: Any, table_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Connections opened before the count existed and closed since take it below zero."""
    dynamodb.put_item(
        TableName=table_name,
        Item={"connectionId": {"S": "stats#connections"}, "openConnections": {"N": "-2"}},
    )

    assert _count(dynamodb, table_name) == 0
    assert "connection_count_negative" in caplog.text


def test_an_empty_table_counts_zero(dynamodb: Any, table_name: str) -> None:
    assert _count(dynamodb, table_name) == 0


def test_the_count_item_stays_out_of_both_indexes(
    dynamodb: Any, table_name: str, stream: Stream
) -> None:
    """Never taken for a user's connection, nor swept, nor expired by the TTL."""
    _store(dynamodb, table_name, "conn-1", expires_at=int(time.time()) - 100)
    stream.deliver()
    item = dynamodb.get_item(
        TableName=table_name, Key={"connectionId": {"S": "stats#connections"}}
    )["Item"]

    assert set(item) == {"connectionId", "openConnections", "streamLabel"}
    assert list(connections.connection_ids_of_user(dynamodb, table_name, USER)) == ["conn-1"]
    assert list(
        connections.expired_connection_ids(
            dynamodb, table_name, expired_by=time.time(), lookback_seconds=10800
        )
    ) == ["conn-1"]


class CountingReads:
    """moto's client, recording which calls were made."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.exceptions = client.exceptions
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self._client, name)


# --- the minute job -----------------------------------------------------------------------------


def test_sweeper_with_sessions_off_publishes_the_count_and_sweeps_nothing(
    dynamodb: Any,
    table_name: str,
    stream: Stream,
    management: Management,
    emf_lines: EmfLines,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`SESSION_EXPIRY=off`: the count is published, nothing is read from `expiryIndex`, no
    connection is told or closed (and `MANAGEMENT_ENDPOINT` is not needed)."""
    monkeypatch.setenv("SESSION_EXPIRY", "off")
    monkeypatch.setenv("API_ID", "abcdef1234")
    monkeypatch.setenv("STAGE_NAME", "prod")
    for index in range(5):
        _store(dynamodb, table_name, f"conn-{index}", expires_at=int(time.time()) - 100)
    stream.deliver()
    reads = CountingReads(dynamodb)
    monkeypatch.setattr(connections, "dynamodb_client", lambda: reads)

    assert sweeper.handler({"detail-type": "Scheduled Event"}, None) == {"connections": 5}

    assert management.posts == [] and management.deleted == []
    assert reads.calls == ["get_item"]  # the count's one item; no query, no scan
    (line,) = emf_lines()
    assert (line["ApiId"], line["Stage"], line["ConnectionCount"]) == ("abcdef1234", "prod", 5)
    assert [m["Name"] for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]] == [
        "ConnectionCount"
    ]
    assert len(connection_items(dynamodb, table_name)) == 5


def test_sweeper_publishes_zero_connections(
    dynamodb: Any, management: Management, emf_lines: EmfLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An idle API still reports ConnectionCount 0 every run (a gap would mean no data)."""
    monkeypatch.setenv("MANAGEMENT_ENDPOINT", ENDPOINT)
    monkeypatch.setenv("API_ID", "abcdef1234")
    monkeypatch.setenv("STAGE_NAME", "prod")

    assert sweeper.handler({}, None) == {"connections": 0, "closed": 0, "gone": 0, "failed": 0}
    assert [line["ConnectionCount"] for line in emf_lines()] == [0]


def test_sweeper_without_dimensions_skips_the_metric(
    dynamodb: Any,
    table_name: str,
    stream: Stream,
    management: Management,
    emf_lines: EmfLines,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No `API_ID` / `STAGE_NAME`: the run still sweeps and counts, and prints no metric."""
    monkeypatch.setenv("MANAGEMENT_ENDPOINT", ENDPOINT)
    _store(dynamodb, table_name, "expired", expires_at=int(time.time()) - 100)
    stream.deliver()

    assert sweeper.handler({}, None) == {"connections": 1, "closed": 1, "gone": 0, "failed": 0}
    assert emf_lines() == []


def test_sweeper_sweeps_then_fails_when_the_count_cannot_be_read(
    dynamodb: Any,
    table_name: str,
    management: Management,
    emf_lines: EmfLines,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A refused read (an old policy) costs the metric, never the sweep; then the run fails,
    so the function's errors alarm says the count stopped."""
    monkeypatch.setenv("MANAGEMENT_ENDPOINT", ENDPOINT)
    monkeypatch.setenv("API_ID", "abcdef1234")
    monkeypatch.setenv("STAGE_NAME", "prod")
    _store(dynamodb, table_name, "expired", expires_at=int(time.time()) - 100)

    class NoCount(CountingReads):
        def get_item(self, **request: Any) -> Any:
            if request["Key"]["connectionId"]["S"] == "stats#connections":
                raise ClientError({"Error": {"Code": "AccessDeniedException"}}, "GetItem")
            return self._client.get_item(**request)

    monkeypatch.setattr(connections, "dynamodb_client", lambda: NoCount(dynamodb))

    with pytest.raises(RuntimeError, match="could not be read"):
        sweeper.handler({}, None)
    assert management.deleted == ["expired"]
    assert emf_lines() == []
