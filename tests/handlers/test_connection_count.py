"""The live connection count: 16 shard items counted in on `$connect`, out on every path that
forgets a connection, read with one BatchGetItem and published by the minute job."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.handlers.test_sessions import Management
from tests.support import connection_items
from wsauth.handlers import admission, connections, sender, sweeper, websocket

EmfLines = Callable[[], list[dict[str, Any]]]
USER = "sub-alice"
ENDPOINT = "https://abcdef1234.execute-api.us-east-1.amazonaws.com/prod"


def _shards(dynamodb: Any, table_name: str) -> dict[int, int]:
    """Shard → its `openConnections`, for the shard items that exist."""
    found = {}
    for shard in range(connections.COUNT_SHARDS):
        item = dynamodb.get_item(
            TableName=table_name,
            Key={"connectionId": {"S": f"stats#connections#{shard}"}},
            ConsistentRead=True,
        ).get("Item")
        if item is not None:
            found[shard] = int(item["openConnections"]["N"])
    return found


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


def _store_uncounted(dynamodb: Any, table_name: str, connection_id: str, **extra: Any) -> None:
    """An item as written before the live count existed: no `countShard`."""
    dynamodb.put_item(
        TableName=table_name,
        Item={
            "connectionId": {"S": connection_id},
            "userId": {"S": USER},
            "username": {"S": "alice"},
            "connectedAt": {"N": "1"},
            "removedAt": {"N": str(int(time.time()) + 3600)},
            **extra,
        },
    )


@pytest.fixture
def management(monkeypatch: pytest.MonkeyPatch) -> Management:
    """The stand-in `@connections` every handler gets."""
    stand_in = Management()
    monkeypatch.setattr(sender, "management_client", lambda *args, **kwargs: stand_in)
    return stand_in


# --- counted in, counted out --------------------------------------------------------------------


def test_connect_counts_into_the_connections_shard(dynamodb: Any, table_name: str) -> None:
    """`$connect` adds one to shard crc32(id) % 16 and records that shard on the item."""
    assert websocket.handler(_connect("conn-1"), None)["statusCode"] == 200

    shard = connections.count_shard("conn-1")
    assert shard == 4  # zlib.crc32(b"conn-1") % 16
    assert _shards(dynamodb, table_name) == {shard: 1}
    (item,) = connection_items(dynamodb, table_name)
    assert item["countShard"] == {"N": str(shard)}


def test_disconnect_counts_out_once(dynamodb: Any, table_name: str) -> None:
    """`$disconnect` takes the connection out of its shard; a repeated one changes nothing."""
    websocket.handler(_connect("conn-1"), None)
    websocket.handler(_connect("conn-2"), None)

    websocket.handler(_disconnect("conn-1"), None)
    websocket.handler(_disconnect("conn-1"), None)

    assert connections.open_connection_count(dynamodb, table_name) == 1
    assert _shards(dynamodb, table_name)[connections.count_shard("conn-1")] == 0


def test_a_410_on_a_push_counts_out(dynamodb: Any, table_name: str, management: Management) -> None:
    """A connection found gone by a push is forgotten and counted out."""
    _store(dynamodb, table_name, "conn-1")
    _store(dynamodb, table_name, "conn-2")
    management.gone = {"conn-1"}

    report = sender.send_to_user(USER, {"n": 1}, table_name=table_name, endpoint_url=ENDPOINT)

    assert report.gone == ["conn-1"]
    assert connections.open_connection_count(dynamodb, table_name) == 1


def test_the_sweeper_closing_an_expired_connection_counts_it_out(
    dynamodb: Any, table_name: str, management: Management, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closed by the sweeper: API Gateway's `$disconnect` counts it out; found gone (its
    `$disconnect` was lost): the sweeper itself does."""
    expired = int(time.time()) - 10
    _store(dynamodb, table_name, "closed", expires_at=expired)
    _store(dynamodb, table_name, "lost", expires_at=expired)
    _store(dynamodb, table_name, "live", expires_at=expired + 3600)
    management.gone = {"lost"}
    real_delete = management.delete_connection

    def delete_and_disconnect(ConnectionId: str) -> None:  # noqa: N803
        # What API Gateway does on `DELETE @connections/{id}`: close, then run `$disconnect`.
        real_delete(ConnectionId)
        websocket.on_disconnect(_disconnect(ConnectionId), dynamodb, table_name)

    monkeypatch.setattr(management, "delete_connection", delete_and_disconnect)
    assert connections.open_connection_count(dynamodb, table_name) == 3

    counts = sweeper.sweep(
        dynamodb, management, table_name, now=time.time(), leeway_seconds=0,
        lookback_seconds=10800,
    )  # fmt: skip

    assert counts == {"closed": 1, "gone": 1, "failed": 0}
    assert connections.open_connection_count(dynamodb, table_name) == 1


def test_healing_a_drifted_limit_counts_out(
    dynamodb: Any, table_name: str, management: Management
) -> None:
    """Connections the limit's healing forgets (unknown to API Gateway) leave the live count."""
    from wsauth.handlers import users

    long_ago_ms = int((time.time() - 3600) * 1000)
    for name in ("lost-1", "lost-2"):
        _store(dynamodb, table_name, name, connected_at_ms=long_ago_ms, counted=True)
        users.count_connection(dynamodb, table_name, USER, limit=2, now=time.time())
    management.gone = {"lost-1", "lost-2"}

    refused = admission.admit(
        dynamodb, table_name, management, user_id=USER, auth_time=time.time(), limit=2,
        check_revocation=False, now=time.time(),
    )  # fmt: skip

    assert refused is None
    assert connections.open_connection_count(dynamodb, table_name) == 0
    assert set(_shards(dynamodb, table_name).values()) == {0}


def test_items_without_a_shard_are_never_counted_out(
    dynamodb: Any, table_name: str, management: Management
) -> None:
    """Items stored before the count existed: forgetting them on any path leaves the count."""
    websocket.handler(_connect("counted"), None)
    for name in ("old-disconnected", "old-gone"):
        _store_uncounted(dynamodb, table_name, name)
    management.gone = {"old-gone"}

    websocket.handler(_disconnect("old-disconnected"), None)
    sender.send_to_connection(
        "old-gone", {"n": 1}, table_name=table_name, endpoint_url="https://x.example/prod"
    )

    assert [item["connectionId"]["S"] for item in connection_items(dynamodb, table_name)] == [
        "counted"
    ]
    assert _shards(dynamodb, table_name) == {connections.count_shard("counted"): 1}


# --- reading the count --------------------------------------------------------------------------


class CountingReads:
    """moto's client, recording each BatchGetItem request and which other calls were made."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.exceptions = client.exceptions
        self.batches: list[dict[str, Any]] = []
        self.calls: set[str] = set()

    def batch_get_item(self, **request: Any) -> Any:
        self.batches.append(request)
        return self._client.batch_get_item(**request)

    def __getattr__(self, name: str) -> Any:
        self.calls.add(name)
        return getattr(self._client, name)


def test_many_connections_spread_over_every_shard_are_read_in_one_batch(
    dynamodb: Any, table_name: str
) -> None:
    """300 connections land in all 16 shards; one BatchGetItem of the 16 keys reads the sum."""
    for index in range(300):
        _store(dynamodb, table_name, f"conn-{index:03}AAAAAAA=")
    for index in range(0, 300, 3):
        connections.forget_connection(dynamodb, table_name, f"conn-{index:03}AAAAAAA=")
    reads = CountingReads(dynamodb)

    assert connections.open_connection_count(reads, table_name) == 200
    assert reads.calls == set()  # no Scan, no Query: 16 keys, whatever the table holds

    shards = _shards(dynamodb, table_name)
    assert sorted(shards) == list(range(16)) and sum(shards.values()) == 200
    assert max(shards.values()) < 30  # spread, not piled on a few items
    (batch,) = reads.batches
    request = batch["RequestItems"][table_name]
    assert len(request["Keys"]) == 16
    assert request["ProjectionExpression"] == "openConnections"


def test_unprocessed_shards_are_read_again(dynamodb: Any, table_name: str) -> None:
    """Keys DynamoDB leaves unprocessed (throttled) are asked again until all are read."""
    for index in range(40):
        _store(dynamodb, table_name, f"c{index}")

    class Throttling(CountingReads):
        def batch_get_item(self, **request: Any) -> Any:
            self.batches.append(request)
            wanted = request["RequestItems"][table_name]
            keys = wanted["Keys"]
            if len(self.batches) > 2 or len(keys) == 1:
                return self._client.batch_get_item(**request)
            # Serve half, leave the rest unprocessed, as DynamoDB does under throttling.
            served = {table_name: {**wanted, "Keys": keys[: len(keys) // 2]}}
            answer = self._client.batch_get_item(RequestItems=served)
            answer["UnprocessedKeys"] = {table_name: {**wanted, "Keys": keys[len(keys) // 2 :]}}
            return answer

    reads = Throttling(dynamodb)

    assert connections.open_connection_count(reads, table_name) == 40
    assert [len(b["RequestItems"][table_name]["Keys"]) for b in reads.batches] == [16, 8, 4]


def test_the_count_is_never_below_zero(dynamodb: Any, table_name: str) -> None:
    """Shards that sum below zero (a count-out before its count-in) read as zero."""
    dynamodb.put_item(
        TableName=table_name,
        Item={"connectionId": {"S": "stats#connections#3"}, "openConnections": {"N": "-2"}},
    )
    _store(dynamodb, table_name, "conn-1")

    assert connections.open_connection_count(dynamodb, table_name) == 0


def test_an_empty_table_counts_zero(dynamodb: Any, table_name: str) -> None:
    """No shard written yet: zero."""
    assert connections.open_connection_count(dynamodb, table_name) == 0


def test_a_failed_count_in_never_refuses_the_connection(
    dynamodb: Any, table_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The count's write refused (say, a policy without UpdateItem): the connection is stored."""

    class NoUpdates:
        def __getattr__(self, name: str) -> Any:
            return getattr(dynamodb, name)

        def update_item(self, **request: Any) -> Any:
            raise ClientError({"Error": {"Code": "AccessDeniedException"}}, "UpdateItem")

    monkeypatch.setattr(connections, "dynamodb_client", lambda: NoUpdates())

    assert websocket.handler(_connect("conn-1"), None)["statusCode"] == 200
    assert [item["connectionId"]["S"] for item in connection_items(dynamodb, table_name)] == [
        "conn-1"
    ]


def test_the_count_is_written_beside_the_item(dynamodb: Any, table_name: str) -> None:
    """`$connect` waits for one round trip, not two: the item's PutItem cannot finish until the
    count's UpdateItem has started (sequential writes would wait here for 10 s, then fail)."""
    started = threading.Event()

    class Overlapping:
        def __getattr__(self, name: str) -> Any:
            return getattr(dynamodb, name)

        def update_item(self, **request: Any) -> Any:
            started.set()
            return dynamodb.update_item(**request)

        def put_item(self, **request: Any) -> Any:
            assert started.wait(10), "the count's write did not run beside the item's"
            return dynamodb.put_item(**request)

    _store(Overlapping(), table_name, "conn-1")  # type: ignore[arg-type]

    assert sum(_shards(dynamodb, table_name).values()) == 1


def test_a_connection_not_stored_is_not_counted(dynamodb: Any, table_name: str) -> None:
    """PutItem refused: the count it was added to is taken back, and the error still raised."""

    class NoPuts:
        def __getattr__(self, name: str) -> Any:
            return getattr(dynamodb, name)

        def put_item(self, **request: Any) -> Any:
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "Put")

    with pytest.raises(ClientError):
        _store(NoPuts(), table_name, "conn-1")  # type: ignore[arg-type]

    assert sum(_shards(dynamodb, table_name).values()) == 0
    assert connection_items(dynamodb, table_name) == []


def test_shards_stay_out_of_both_indexes(dynamodb: Any, table_name: str) -> None:
    """A shard item is never taken for a user's connection, nor swept, nor expired by the TTL."""
    _store(dynamodb, table_name, "conn-1", expires_at=int(time.time()) - 100)
    item = dynamodb.get_item(
        TableName=table_name,
        Key={"connectionId": {"S": f"stats#connections#{connections.count_shard('conn-1')}"}},
    )["Item"]

    assert set(item) == {"connectionId", "openConnections"}
    assert list(connections.connection_ids_of_user(dynamodb, table_name, USER)) == ["conn-1"]
    assert list(
        connections.expired_connection_ids(
            dynamodb, table_name, expired_by=time.time(), lookback_seconds=10800
        )
    ) == ["conn-1"]


# --- the minute job -----------------------------------------------------------------------------


def test_sweeper_with_sessions_off_publishes_the_count_and_sweeps_nothing(
    dynamodb: Any,
    table_name: str,
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
    reads = CountingReads(dynamodb)
    monkeypatch.setattr(connections, "dynamodb_client", lambda: reads)

    assert sweeper.handler({"detail-type": "Scheduled Event"}, None) == {"connections": 5}

    assert management.posts == [] and management.deleted == []
    assert len(reads.batches) == 1 and "query" not in reads.calls
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
    management: Management,
    emf_lines: EmfLines,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No `API_ID` / `STAGE_NAME`: the run still sweeps and counts, and prints no metric."""
    monkeypatch.setenv("MANAGEMENT_ENDPOINT", ENDPOINT)
    _store(dynamodb, table_name, "expired", expires_at=int(time.time()) - 100)

    assert sweeper.handler({}, None) == {"connections": 1, "closed": 1, "gone": 0, "failed": 0}
    assert emf_lines() == []


def test_sweeper_sweeps_when_the_count_cannot_be_read(
    dynamodb: Any,
    table_name: str,
    management: Management,
    emf_lines: EmfLines,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A refused BatchGetItem (an old policy) costs the metric, never the sweep."""
    monkeypatch.setenv("MANAGEMENT_ENDPOINT", ENDPOINT)
    monkeypatch.setenv("API_ID", "abcdef1234")
    monkeypatch.setenv("STAGE_NAME", "prod")
    _store(dynamodb, table_name, "expired", expires_at=int(time.time()) - 100)

    class NoBatches(CountingReads):
        def batch_get_item(self, **request: Any) -> Any:
            raise ClientError({"Error": {"Code": "AccessDeniedException"}}, "BatchGetItem")

    monkeypatch.setattr(connections, "dynamodb_client", lambda: NoBatches(dynamodb))

    assert sweeper.handler({}, None) == {"closed": 1, "gone": 0, "failed": 0}
    assert management.deleted == ["expired"]
    assert emf_lines() == []
