"""Where moto falls short of the documented behaviour of the services it stands for, filled in
the embedded server only (the deployed path never runs this).

DynamoDB: a write is atomic per item, its condition included; moto checks a condition and
writes in separate Python steps, so two threads of the embedded server could both pass one
condition (two handshakes both under a user's connection limit). The server runs DynamoDB
requests one at a time (`aws._SignedServiceDispatch`).

Cognito:

* Admin APIs take a user's `sub` as `Username` ("If username isn't an alias attribute in your
  user pool, this value must be the sub of a local user", AdminGetUser and the other Admin*
  references); moto looks users up by username and sign-in aliases only.
* `AdminUserGlobalSignOut` and `GlobalSignOut` revoke every refresh token of the user however
  they signed in; moto compares the name the sign-out was asked with to the name each token was
  issued under, so a sign-out by `sub` (or by an alias) revoked nothing.

DynamoDB Streams (read by the local cloud's event source mappings, `streams.py`):

* Requests: the API signs as `dynamodb`, so the embedded server tells it from DynamoDB's by
  its `X-Amz-Target` and runs it in DynamoDB's turn (`aws._SignedServiceDispatch`).
* One record per change: moto's UpdateItem of a missing item wrote two INSERT records (one for
  the item it creates, one for the update); a write that changes nothing (a PutItem of the same
  item, an UpdateItem setting what is there) wrote a MODIFY, where DynamoDB writes no record; a
  cancelled TransactWriteItems kept the records of the writes it undid, and moto's rollback gave
  the table a copy of its stream, which readers of the original never saw written again.
* Record shape: `eventVersion` "1.1" and the table's region (moto: "1.0", always us-east-1);
  `ApproximateCreationDateTime` rounded down to the second; the stream label to milliseconds
  (`2026-01-01T00:00:00.000`, as AWS labels streams).
* Memory: moto keeps every record of a stream and every shard iterator it ever handed out (one
  per `GetRecords`, empty ones too). Records are kept 24 hours, as DynamoDB keeps them, but at
  most `STREAM_RECORDS_KEPT` per stream (the oldest go first; a reader behind them goes on
  from the oldest kept); an iterator expires 15 minutes after it was handed out, as in AWS
  (`ExpiredIteratorException`, where moto answered 500), at most `SHARD_ITERATORS_KEPT` are
  live (the oldest expire first), and a read that finds nothing new hands back the iterator it
  was given.

Memory: moto appends every model instance it ever creates (each DynamoDB item written, each
Cognito token's user, ...) to a class-wide list (`BaseModel.__new__`, `instances_tracked`),
for its dashboard (`/moto-api/data.json`) and never lets go of them: a long-running local cloud
grew by about 1.4 KB per connect/disconnect, the `PutItem`/`DeleteItem` pair, forever. A
service frees what is deleted; the embedded server creates models untracked, so its memory
follows the data it holds. The dashboard lists no instances there.
"""

from __future__ import annotations

import bisect
import time
from datetime import datetime, timedelta
from typing import Any

__all__ = ["SHARD_ITERATORS_KEPT", "STREAM_RECORDS_KEPT", "fill"]

STREAM_RECORDS_KEPT = 10_000
"""The most records a table's stream keeps (AWS keeps 24 hours of them, however many)."""
SHARD_ITERATORS_KEPT = 1_000
"""The most DynamoDB Streams shard iterators live at once (AWS: each lives 15 minutes)."""
_STREAM_RETENTION = timedelta(hours=24)
_ITERATOR_SECONDS = 15 * 60


def fill() -> None:
    """Patch moto's models (in the embedded server's process)."""
    _stop_tracking_instances()
    _fill_cognito()
    _fill_dynamodb_streams()


def _stop_tracking_instances() -> None:
    from moto.core.common_models import BaseModel

    def untracked_new(cls: type[Any], *args: Any, **kwargs: Any) -> Any:
        # What `BaseModel.__new__` does, minus `cls.instances_tracked.append(instance)`.
        return object.__new__(cls)

    BaseModel.__new__ = staticmethod(untracked_new)  # type: ignore[method-assign,assignment]


def _fill_cognito() -> None:
    from moto.cognitoidp.models import CognitoIdpUserPool

    find_by_name = CognitoIdpUserPool._get_user

    def get_user(pool: Any, username: str) -> Any:
        user = find_by_name(pool, username)
        if user:
            return user
        return next(
            (candidate for candidate in pool.users.values() if candidate.id == username), None
        )

    def sign_out(pool: Any, username: str) -> None:
        user = get_user(pool, username)

        def same_user(name: str) -> bool:
            return name == username or (user is not None and get_user(pool, name) is user)

        for token, issued in list(pool.refresh_tokens.items()):
            if issued is not None and same_user(issued[1]):
                pool.refresh_tokens[token] = None
        for token, (_, name) in list(pool.access_tokens.items()):
            if same_user(name):
                pool.access_tokens.pop(token)

    CognitoIdpUserPool._get_user = get_user  # type: ignore[method-assign,assignment]
    CognitoIdpUserPool.sign_out = sign_out  # type: ignore[method-assign,assignment]


def _fill_dynamodb_streams() -> None:
    from moto.core.exceptions import JsonRESTError
    from moto.core.utils import utcnow
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import StreamRecord, StreamShard, Table
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend, ShardIterator

    def sequence_of(record: Any) -> int:
        return int(record.record["dynamodb"]["SequenceNumber"])

    # --- the stream's label, its records' shape -------------------------------------------

    set_stream_specification = Table.set_stream_specification

    def labelled_to_the_millisecond(table: Any, streams: Any) -> None:
        set_stream_specification(table, streams)
        if table.latest_stream_label:
            moment = datetime.fromisoformat(table.latest_stream_label)
            table.latest_stream_label = moment.isoformat(timespec="milliseconds")

    record_init = StreamRecord.__init__

    def shaped_record(record: Any, table: Any, *args: Any, **kwargs: Any) -> None:
        record_init(record, table, *args, **kwargs)
        record.record["eventVersion"] = "1.1"
        record.record["awsRegion"] = table.region_name
        change = record.record["dynamodb"]
        change["ApproximateCreationDateTime"] = change["ApproximateCreationDateTime"].replace(
            microsecond=0
        )

    # --- one record per change, numbered on, kept for a while -----------------------------

    shard_init = StreamShard.__init__
    moto_add = StreamShard.add

    def numbered_shard(shard: Any, *args: Any, **kwargs: Any) -> None:
        shard_init(shard, *args, **kwargs)
        shard.next_sequence = shard.starting_sequence_number
        shard.skip_created_for_update = False

    def add(shard: Any, old: Any, new: Any) -> None:
        if shard.table.lambda_event_source_mappings:  # moto's own Lambda: as moto does it
            moto_add(shard, old, new)
            return
        if shard.skip_created_for_update:
            # The first write of an UpdateItem: the item moto creates for a missing key.
            shard.skip_created_for_update = False
            if old is None:
                return
        if old is not None and new is not None and old.to_json() == new.to_json():
            return  # nothing changed: DynamoDB writes no record
        event_name = "INSERT" if old is None else "REMOVE" if new is None else "MODIFY"
        view_type = shard.table.stream_specification["StreamViewType"]
        sequence = shard.next_sequence
        shard.next_sequence += 1
        shard.items.append(StreamRecord(shard.table, view_type, event_name, old, new, sequence))
        _trim_stream(shard.items)

    def get(shard: Any, start: int, quantity: int) -> list[dict[str, Any]]:
        index = bisect.bisect_left(shard.items, start, key=sequence_of)
        return [record.to_json() for record in shard.items[index : index + quantity]]

    def _trim_stream(items: list[Any]) -> None:
        # A tenth over the limit before trimming, so a busy stream trims now and then.
        if len(items) > STREAM_RECORDS_KEPT + STREAM_RECORDS_KEPT // 10:
            del items[: len(items) - STREAM_RECORDS_KEPT]
        cutoff = utcnow() - _STREAM_RETENTION
        expired = 0
        while (
            expired < len(items)
            and items[expired].record["dynamodb"]["ApproximateCreationDateTime"] < cutoff
        ):
            expired += 1
        if expired:
            del items[:expired]

    update_item = DynamoDBBackend.update_item

    def update_item_once(backend: Any, *args: Any, **kwargs: Any) -> Any:
        table_name = kwargs["table_name"] if "table_name" in kwargs else args[0]
        shard = backend.tables[table_name].stream_shard if table_name in backend.tables else None
        if shard is None:
            return update_item(backend, *args, **kwargs)
        shard.skip_created_for_update = True
        try:
            return update_item(backend, *args, **kwargs)
        finally:
            shard.skip_created_for_update = False

    transact_write_items = DynamoDBBackend.transact_write_items

    def transact_keeping_streams(backend: Any, *args: Any, **kwargs: Any) -> None:
        streams = {
            name: (table.stream_shard, table.stream_shard.next_sequence)
            for name, table in backend.tables.items()
            if table.stream_shard is not None
        }
        try:
            transact_write_items(backend, *args, **kwargs)
        except BaseException:
            for name, (shard, next_sequence) in streams.items():
                table = backend.tables.get(name)
                if table is None:
                    continue
                # The rolled-back table is a copy: give it back the stream readers hold,
                # without the records of the writes the rollback undid.
                table.stream_shard, shard.table = shard, table
                del shard.items[bisect.bisect_left(shard.items, next_sequence, key=sequence_of) :]
            raise

    # --- shard iterators: positioned by sequence number, expiring -------------------------

    iterator_init = ShardIterator.__init__

    def positioned_iterator(iterator: Any, backend: Any, shard: Any, kind: str, *args: Any) -> None:
        iterator_init(iterator, backend, shard, kind, *args)
        if kind == "LATEST":  # moto counted the records it holds, not the ones it ever wrote
            iterator.sequence_number = shard.next_sequence
        iterator.issued = time.monotonic()

    def read(iterator: Any, limit: int = 1000) -> dict[str, Any]:
        records = iterator.stream_shard.get(iterator.sequence_number, limit)
        if not records:
            iterator.issued = time.monotonic()  # handed back as new
            keep_iterator(iterator.streams_backend, iterator)
            return {"NextShardIterator": iterator.arn, "Records": []}
        after = ShardIterator(
            iterator.streams_backend,
            iterator.stream_shard,
            "AFTER_SEQUENCE_NUMBER",
            max(int(record["dynamodb"]["SequenceNumber"]) for record in records),
        )
        keep_iterator(iterator.streams_backend, after)
        return {"NextShardIterator": after.arn, "Records": records}

    def keep_iterator(backend: Any, iterator: Any) -> None:
        kept: dict[str, Any] = backend.shard_iterators
        kept.pop(iterator.arn, None)  # to the end: the newest
        kept[iterator.arn] = iterator
        now = time.monotonic()
        for arn in list(kept):  # oldest first
            if len(kept) <= SHARD_ITERATORS_KEPT and now - kept[arn].issued < _ITERATOR_SECONDS:
                break
            del kept[arn]

    get_shard_iterator = DynamoDBStreamsBackend.get_shard_iterator

    def kept_shard_iterator(backend: Any, *args: Any, **kwargs: Any) -> Any:
        iterator = get_shard_iterator(backend, *args, **kwargs)
        keep_iterator(backend, iterator)
        return iterator

    def get_records(backend: Any, iterator_arn: str, limit: int) -> dict[str, Any]:
        iterator = backend.shard_iterators.get(iterator_arn)
        if iterator is None or time.monotonic() - iterator.issued >= _ITERATOR_SECONDS:
            backend.shard_iterators.pop(iterator_arn, None)
            raise JsonRESTError(
                "ExpiredIteratorException",
                "Iterator expired (shard iterators live 15 minutes) or unknown",
            )
        result: dict[str, Any] = read(iterator, limit)
        return result

    Table.set_stream_specification = labelled_to_the_millisecond  # type: ignore[method-assign,assignment]
    StreamRecord.__init__ = shaped_record  # type: ignore[method-assign,assignment]
    StreamShard.__init__ = numbered_shard  # type: ignore[method-assign,assignment]
    StreamShard.add = add  # type: ignore[method-assign,assignment]
    StreamShard.get = get  # type: ignore[method-assign,assignment]
    DynamoDBBackend.update_item = update_item_once  # type: ignore[method-assign,assignment]
    DynamoDBBackend.transact_write_items = transact_keeping_streams  # type: ignore[method-assign,assignment]
    ShardIterator.__init__ = positioned_iterator  # type: ignore[method-assign,assignment]
    ShardIterator.get = read  # type: ignore[method-assign,assignment]
    DynamoDBStreamsBackend.get_shard_iterator = kept_shard_iterator  # type: ignore[method-assign,assignment]
    DynamoDBStreamsBackend.get_records = get_records  # type: ignore[method-assign,assignment]
