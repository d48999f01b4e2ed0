"""DynamoDB streams in the embedded moto, and the event source mappings that read them.

* moto's stream (through the embedded server, with `moto_gaps`' fills): one record per change,
  in order, in the table's view type; nothing for writes that change nothing or are undone;
  iterators as AWS hands them out; what it keeps is bounded.
* The realizers: a table's `streamArn`/`streamLabel`; a mapping's outputs, and the refusal of
  sources and patterns the local cloud does not run, naming the resource.
* End to end: a program's mapping, realized on moto, runs a real Lambda worker with the stream's
  records, filtered, in order, retrying a failed batch.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pulumi
import pulumi_aws as aws_sdk
import pytest
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from wsauth.localcloud.aws import EmbeddedAws
from wsauth.localcloud.lambdas import LambdaRuntime
from wsauth.localcloud.realize import Realizer
from wsauth.localcloud.realizers import LambdaRealizer, Registry
from wsauth.localcloud.realizers.base import (
    ACCOUNT_ID,
    RealizeContext,
    RealizeError,
    machine_architecture,
)
from wsauth.localcloud.runner import _lambda_environment
from wsauth.localcloud.streams import StreamPoller
from wsauth.localcloud.testing import eventually

REGION = "eu-west-1"
FUNCTIONS = Path(__file__).parent / "programs" / "streams" / "functions"
RUNTIME = f"python3.{sys.version_info.minor}"
COUNTER_FILTER = {"filters": [{"pattern": json.dumps({"eventName": ["INSERT", "REMOVE"]})}]}


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAws]:
    server = EmbeddedAws(region=REGION)
    server.start()
    yield server
    server.stop()


def _table(aws: EmbeddedAws, view_type: str | None = "KEYS_ONLY") -> tuple[str, str]:
    """Create a table keyed by `id` (with a stream of `view_type`); return name and stream."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if view_type is not None:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view_type}
    table = aws.client("dynamodb").create_table(**request)["TableDescription"]
    return name, table.get("LatestStreamArn", "")


def _latest(aws: EmbeddedAws, stream_arn: str, kind: str = "LATEST") -> str:
    streams = aws.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
    return str(
        streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType=kind
        )["ShardIterator"]
    )


def _item(key: str, **numbers: int) -> dict[str, Any]:
    return {"id": {"S": key}, **{name: {"N": str(value)} for name, value in numbers.items()}}


def _add(table: str, key: str) -> dict[str, Any]:
    return {
        "TableName": table,
        "Key": {"id": {"S": key}},
        "UpdateExpression": "ADD v :one",
        "ExpressionAttributeValues": {":one": {"N": "1"}},
    }


# --- moto's stream ---------------------------------------------------------------------------


def test_each_change_is_one_record_in_order_and_writes_that_change_nothing_none(
    aws: EmbeddedAws,
) -> None:
    """INSERT, MODIFY, REMOVE as DynamoDB writes them, KEYS_ONLY; no-op and undone writes,
    deletes of nothing: no record; an update creating its item: one INSERT, not two."""
    dynamodb = aws.client("dynamodb")
    table, stream_arn = _table(aws)
    dynamodb.put_item(TableName=table, Item=_item("before"))
    iterator = _latest(aws, stream_arn)

    dynamodb.put_item(TableName=table, Item=_item("a", v=1))  # INSERT a
    dynamodb.put_item(TableName=table, Item=_item("a", v=1))  # the same item: nothing
    dynamodb.update_item(  # sets what is there: nothing
        TableName=table,
        Key={"id": {"S": "a"}},
        UpdateExpression="SET v = :v",
        ExpressionAttributeValues={":v": {"N": "1"}},
    )
    dynamodb.update_item(**_add(table, "a"))  # MODIFY a
    dynamodb.put_item(TableName=table, Item=_item("a", v=5))  # MODIFY a
    dynamodb.update_item(**_add(table, "n"))  # creates n: INSERT n
    dynamodb.delete_item(TableName=table, Key={"id": {"S": "a"}})  # REMOVE a
    dynamodb.delete_item(TableName=table, Key={"id": {"S": "missing"}})  # nothing
    dynamodb.batch_write_item(
        RequestItems={
            table: [
                {"PutRequest": {"Item": _item("b")}},
                {"DeleteRequest": {"Key": {"id": {"S": "n"}}}},
            ]
        }
    )
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(  # cancelled: its Put is undone, and writes no record
            TransactItems=[
                {"Put": {"TableName": table, "Item": _item("tx")}},
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": {"id": {"S": "nope"}},
                        "ConditionExpression": "attribute_exists(id)",
                    }
                },
            ]
        )
    dynamodb.put_item(TableName=table, Item=_item("after"))  # INSERT after

    records = aws.client("dynamodbstreams").get_records(ShardIterator=iterator)["Records"]
    assert [(r["eventName"], r["dynamodb"]["Keys"]["id"]["S"]) for r in records] == [
        ("INSERT", "a"),
        ("MODIFY", "a"),
        ("MODIFY", "a"),
        ("INSERT", "n"),
        ("REMOVE", "a"),
        ("INSERT", "b"),
        ("REMOVE", "n"),
        ("INSERT", "after"),
    ]
    for record in records:
        assert (record["eventVersion"], record["eventSource"], record["awsRegion"]) == (
            "1.1",
            "aws:dynamodb",
            REGION,
        )
        change = record["dynamodb"]
        assert set(change) == {
            "ApproximateCreationDateTime",
            "Keys",
            "SequenceNumber",
            "SizeBytes",
            "StreamViewType",
        }
        assert change["StreamViewType"] == "KEYS_ONLY"
        assert change["ApproximateCreationDateTime"].microsecond == 0
    sequence = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert sequence == sorted(set(sequence))
    assert dynamodb.get_item(TableName=table, Key={"id": {"S": "tx"}}).get("Item") is None


@pytest.mark.parametrize(
    ("view_type", "images"),
    [
        ("KEYS_ONLY", set()),
        ("NEW_IMAGE", {"NewImage"}),
        ("OLD_IMAGE", {"OldImage"}),
        ("NEW_AND_OLD_IMAGES", {"NewImage", "OldImage"}),
    ],
)
def test_a_modify_record_carries_the_images_of_the_view_type(
    aws: EmbeddedAws, view_type: str, images: set[str]
) -> None:
    """The stream's view type decides which item images a record holds."""
    dynamodb = aws.client("dynamodb")
    table, stream_arn = _table(aws, view_type)
    dynamodb.put_item(TableName=table, Item=_item("a", v=1))
    iterator = _latest(aws, stream_arn)
    dynamodb.put_item(TableName=table, Item=_item("a", v=2))
    (record,) = aws.client("dynamodbstreams").get_records(ShardIterator=iterator)["Records"]
    assert record["eventName"] == "MODIFY"
    assert set(record["dynamodb"]) & {"NewImage", "OldImage"} == images
    if "OldImage" in images:
        assert record["dynamodb"]["OldImage"]["v"] == {"N": "1"}
    if "NewImage" in images:
        assert record["dynamodb"]["NewImage"]["v"] == {"N": "2"}


def test_stream_is_described_and_read_as_aws_answers(aws: EmbeddedAws) -> None:
    """Label to the millisecond; an empty read hands back a usable iterator; `TRIM_HORIZON`
    starts at the first record; an iterator moto does not know is an expired one."""
    dynamodb, streams = aws.client("dynamodb"), aws.client("dynamodbstreams")
    table, stream_arn = _table(aws)
    description = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]
    assert (description["StreamStatus"], description["StreamViewType"]) == (
        "ENABLED",
        "KEYS_ONLY",
    )
    assert re.fullmatch(
        rf"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{table}/stream/"
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}",
        stream_arn,
    )
    assert stream_arn.endswith(f"/stream/{description['StreamLabel']}")

    latest = _latest(aws, stream_arn)
    empty = streams.get_records(ShardIterator=latest)
    assert empty["Records"] == []
    dynamodb.put_item(TableName=table, Item=_item("x"))
    assert [r["eventName"] for r in streams.get_records(ShardIterator=latest)["Records"]] == [
        "INSERT"
    ]
    assert len(streams.get_records(ShardIterator=empty["NextShardIterator"])["Records"]) == 1
    oldest = _latest(aws, stream_arn, "TRIM_HORIZON")
    assert len(streams.get_records(ShardIterator=oldest)["Records"]) == 1
    with pytest.raises(streams.exceptions.ExpiredIteratorException):
        streams.get_records(ShardIterator="not-an-iterator")


_BOUNDS_SCRIPT = """
import threading

import boto3
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from wsauth.localcloud import moto_gaps
from wsauth.localcloud.aws import _SignedServiceDispatch, _WsgiServer

moto_gaps.STREAM_RECORDS_KEPT = 20
moto_gaps.SHARD_ITERATORS_KEPT = 5
moto_gaps.fill()
app = _SignedServiceDispatch(DomainDispatcherApplication(create_backend_app))
server = _WsgiServer(("127.0.0.1", 0), app)
threading.Thread(target=server.serve_forever, daemon=True).start()


def client(service):
    return boto3.client(
        service,
        endpoint_url=f"http://127.0.0.1:{server.server_address[1]}",
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


dynamodb, streams = client("dynamodb"), client("dynamodbstreams")
table = dynamodb.create_table(
    TableName="t",
    KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
    BillingMode="PAY_PER_REQUEST",
    StreamSpecification={"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"},
)["TableDescription"]
arn = table["LatestStreamArn"]
shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]

def iterator(kind):
    return streams.get_shard_iterator(
        StreamArn=arn, ShardId=shard, ShardIteratorType=kind
    )["ShardIterator"]

behind = iterator("TRIM_HORIZON")
for n in range(100):
    dynamodb.put_item(TableName="t", Item={"id": {"S": f"k{n}"}})
kept = streams.get_records(ShardIterator=iterator("TRIM_HORIZON"))["Records"]
caught_up = streams.get_records(ShardIterator=behind)["Records"]
reader = iterator("TRIM_HORIZON")
for _ in range(30):
    reader = streams.get_records(ShardIterator=reader, Limit=1)["NextShardIterator"]
from moto.dynamodbstreams.models import dynamodbstreams_backends
live = len(dynamodbstreams_backends["123456789012"]["eu-west-1"].shard_iterators)
print(len(kept), kept[0]["dynamodb"]["Keys"]["id"]["S"], len(caught_up), live)
"""


def test_the_stream_keeps_a_bounded_number_of_records_and_iterators() -> None:
    """With small limits: the newest records are kept (a reader behind goes on from the oldest
    kept); iterators handed out beyond the limit expire, oldest first. Own process: the fills
    patch moto's classes."""
    result = subprocess.run(
        [sys.executable, "-c", _BOUNDS_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    kept, oldest, caught_up, live = result.stdout.split()[-4:]
    # Trimmed a tenth over the limit, down to it: between 20 and 22 records are kept.
    assert 20 <= int(kept) <= 22 and int(caught_up) == int(kept)
    assert oldest == f"k{100 - int(kept)}"
    assert int(live) <= 5


# --- the realizers -----------------------------------------------------------------------------


def _registry(aws: EmbeddedAws, tmp_path: Path) -> Registry:
    return Registry(RealizeContext(aws, tmp_path, tmp_path))


def _create(registry: Registry, typ: str, name: str, inputs: dict[str, Any]) -> Any:
    create = registry.creator(typ)
    assert create is not None, f"{typ} is not realized"
    return create(name, inputs)


_TABLE = "aws:dynamodb/table:Table"
_FUNCTION = "aws:lambda/function:Function"
_MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"


def _table_inputs(name: str, **stream: Any) -> dict[str, Any]:
    return {
        "name": name,
        "hashKey": "id",
        "attributes": [{"name": "id", "type": "S"}],
        "billingMode": "PAY_PER_REQUEST",
        **stream,
    }


def _function_inputs(name: str, handler: str = "streamfns.keep") -> dict[str, Any]:
    return {
        "name": name,
        "runtime": RUNTIME,
        "architectures": [machine_architecture()],
        "handler": handler,
        "code": pulumi.FileArchive(str(FUNCTIONS)),
        "timeout": 10,
    }


def test_a_table_with_a_stream_answers_with_its_arn_and_label(
    aws: EmbeddedAws, tmp_path: Path
) -> None:
    """`streamArn` is `…:table/{name}/stream/{label}`; a table without a stream has ""."""
    registry = _registry(aws, tmp_path)
    name = f"connections-{uuid.uuid4().hex[:6]}"
    _, outputs = _create(
        registry, _TABLE, "t", _table_inputs(name, streamEnabled=True, streamViewType="KEYS_ONLY")
    )
    assert outputs["streamArn"] == (
        f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}/stream/{outputs['streamLabel']}"
    )
    assert datetime.fromisoformat(outputs["streamLabel"]).microsecond % 1000 == 0
    assert (outputs["streamEnabled"], outputs["streamViewType"]) == (True, "KEYS_ONLY")
    # A view type alone turns no stream on (moto's would).
    _, plain = _create(
        registry, _TABLE, "u", _table_inputs(f"plain-{name}", streamViewType="NEW_IMAGE")
    )
    assert (plain["streamArn"], plain["streamLabel"], plain["streamEnabled"]) == ("", "", False)
    with pytest.raises(RealizeError, match="stream_view_type is required"):
        _create(registry, _TABLE, "v", _table_inputs(f"bad-{name}", streamEnabled=True))


def test_a_mapping_answers_as_aws_and_runs_the_function_it_names(
    aws: EmbeddedAws, tmp_path: Path
) -> None:
    """Outputs as Lambda gives them; the function is resolved from its ARN; the filter kept."""
    registry = _registry(aws, tmp_path)
    name = f"connections-{uuid.uuid4().hex[:6]}"
    _, table = _create(
        registry, _TABLE, "t", _table_inputs(name, streamEnabled=True, streamViewType="KEYS_ONLY")
    )
    _, function = _create(registry, _FUNCTION, "counter", _function_inputs("counter"))
    mapping_id, outputs = _create(
        registry,
        _MAPPING,
        "counter-stream",
        {
            "eventSourceArn": table["streamArn"],
            "functionName": function["arn"],
            "startingPosition": "LATEST",
            "batchSize": 100,
            "maximumBatchingWindowInSeconds": 5,
            "filterCriteria": COUNTER_FILTER,
        },
    )
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", mapping_id
    )
    assert outputs["uuid"] == outputs["id"] == mapping_id
    assert (
        outputs["arn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:event-source-mapping:{mapping_id}"
    )
    assert outputs["functionArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:counter"
    assert (outputs["state"], outputs["lastProcessingResult"], outputs["enabled"]) == (
        "Enabled",
        "No records processed",
        True,
    )
    assert (outputs["batchSize"], outputs["maximumRetryAttempts"]) == (100, -1)
    (mapping,) = registry.service(LambdaRealizer).stream_mappings()
    assert (mapping.function_name, mapping.table_name, mapping.describe_filters()) == (
        "counter",
        name,
        "INSERT, REMOVE",
    )
    _, disabled = _create(
        registry,
        _MAPPING,
        "off",
        {
            "eventSourceArn": table["streamArn"],
            "functionName": "counter",
            "startingPosition": "TRIM_HORIZON",
            "enabled": False,
        },
    )
    assert disabled["state"] == "Disabled"


_SQS = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:jobs"
_KINESIS = f"arn:aws:kinesis:{REGION}:{ACCOUNT_ID}:stream/clicks"
_MSK = f"arn:aws:kafka:{REGION}:{ACCOUNT_ID}:cluster/events/abc-1"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"eventSourceArn": _SQS},
            "an SQS queue; the local cloud runs event source mappings on DynamoDB streams only",
        ),
        ({"eventSourceArn": _KINESIS}, "a Kinesis stream"),
        ({"eventSourceArn": _MSK}, r"an Amazon MSK \(Kafka\) cluster"),
        (
            {"eventSourceArn": None, "selfManagedEventSource": {"endpoints": {"KAFKA": "b:9092"}}},
            "a self-managed Kafka cluster",
        ),
        ({"eventSourceArn": "TABLE"}, "a DynamoDB table, not its stream"),
        ({"eventSourceArn": "STREAM/stream/2020-01-01T00:00:00.000"}, "its stream is"),
        ({"eventSourceArn": "PLAIN/stream/2020-01-01T00:00:00.000"}, "it has none"),
        (
            {"eventSourceArn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/nope/stream/x"},
            "no table 'nope'",
        ),
        ({"startingPosition": None}, "starting_position None"),
        ({"startingPosition": "AT_TIMESTAMP"}, "LATEST or TRIM_HORIZON"),
        ({"batchSize": 10_001}, "batchSize 10001"),
        (
            {"filterCriteria": {"filters": [{"pattern": '{"eventName": [{"prefix": "IN"}]}'}]}},
            "uses prefix",
        ),
    ],
    ids=[
        "sqs",
        "kinesis",
        "msk",
        "self-managed kafka",
        "table arn",
        "stale stream",
        "table without stream",
        "unknown table",
        "no starting position",
        "at timestamp",
        "batch too big",
        "operator",
    ],
)
def test_what_the_local_cloud_cannot_run_is_refused_at_start_naming_the_mapping(
    aws: EmbeddedAws, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    """Another source or an operator pattern: the program does not start, and the error
    names the mapping and says why."""
    realizer = Realizer(aws, tmp_path, tmp_path)
    name = f"src-{uuid.uuid4().hex[:6]}"
    _, table = _create(
        realizer.registry,
        _TABLE,
        "t",
        _table_inputs(name, streamEnabled=True, streamViewType="KEYS_ONLY"),
    )
    _, plain = _create(realizer.registry, _TABLE, "p", _table_inputs(f"plain-{name}"))
    inputs: dict[str, Any] = {
        "eventSourceArn": table["streamArn"],
        "functionName": "counter",
        "startingPosition": "LATEST",
        **change,
    }
    source = str(inputs["eventSourceArn"] or "")
    source = source.replace("TABLE", table["arn"]).replace("STREAM", table["arn"])
    inputs["eventSourceArn"] = source.replace("PLAIN", plain["arn"]) or None
    realizer.new_resource(
        SimpleNamespace(
            typ=_MAPPING, name="counter-stream", inputs=inputs, custom=True, resource_id=None
        )
    )
    with pytest.raises(
        RealizeError, match=r"cannot run this program locally; counter-stream: "
    ) as error:
        realizer.check()
    assert re.search(message, str(error.value)), str(error.value)


def test_a_mapping_to_a_function_the_program_lacks_is_refused(
    aws: EmbeddedAws, tmp_path: Path
) -> None:
    """The function is looked up once the program ran (a name may come before its function)."""
    registry = _registry(aws, tmp_path)
    _, table = _create(
        registry,
        _TABLE,
        "t",
        _table_inputs(f"f-{uuid.uuid4().hex[:6]}", streamEnabled=True, streamViewType="KEYS_ONLY"),
    )
    _create(
        registry,
        _MAPPING,
        "orphan",
        {
            "eventSourceArn": table["streamArn"],
            "functionName": "gone",
            "startingPosition": "LATEST",
        },
    )
    with pytest.raises(RealizeError, match="orphan names function 'gone'"):
        registry.service(LambdaRealizer).stream_mappings()


# --- end to end: a program's mapping, a real worker ------------------------------------------


@pytest.fixture
def mocks(aws: EmbeddedAws, tmp_path: Path) -> Iterator[Realizer]:
    # Pulumi's mock runtime wants a current event loop; an earlier `asyncio.run` leaves none.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    realizer = Realizer(aws, tmp_path, tmp_path)
    pulumi_settings.set_root_resource(None)  # type: ignore[arg-type]
    pulumi.runtime.set_all_config({"aws:region": REGION})
    pulumi.runtime.set_mocks(realizer, project="wsauth", stack="local", preview=False)
    try:
        yield realizer
    finally:
        pulumi.runtime.set_all_config({})
        pulumi_settings.set_root_resource(None)  # type: ignore[arg-type]
        asyncio.set_event_loop(None)
        loop.close()


def _program(suffix: str) -> None:
    """A table with a keys-only stream, mapped (counter filter) to a function keeping events."""
    connections = aws_sdk.dynamodb.Table(
        "connections",
        name=f"connections-{suffix}",
        hash_key="id",
        attributes=[{"name": "id", "type": "S"}],
        billing_mode="PAY_PER_REQUEST",
        stream_enabled=True,
        stream_view_type="KEYS_ONLY",
    )
    results = aws_sdk.dynamodb.Table(
        "results",
        name=f"results-{suffix}",
        hash_key="id",
        attributes=[{"name": "id", "type": "S"}],
        billing_mode="PAY_PER_REQUEST",
    )
    keeper = aws_sdk.lambda_.Function(
        "keeper",
        name=f"keeper-{suffix}",
        role=f"arn:aws:iam::{ACCOUNT_ID}:role/keeper",
        runtime=RUNTIME,
        architectures=[machine_architecture()],
        handler="streamfns.keep",
        code=pulumi.FileArchive(str(FUNCTIONS)),
        timeout=10,
        environment={"variables": {"RESULTS_TABLE": results.name}},
    )
    aws_sdk.lambda_.EventSourceMapping(
        "keeper-stream",
        event_source_arn=connections.stream_arn,
        function_name=keeper.arn,
        starting_position="LATEST",
        batch_size=2,
        maximum_batching_window_in_seconds=5,
        filter_criteria=aws_sdk.lambda_.EventSourceMappingFilterCriteriaArgs(
            filters=[
                aws_sdk.lambda_.EventSourceMappingFilterCriteriaFilterArgs(
                    pattern=json.dumps({"eventName": ["INSERT", "REMOVE"]})
                )
            ]
        ),
    )


def test_a_programs_mapping_delivers_the_streams_records_to_a_real_worker(
    aws: EmbeddedAws, mocks: Realizer
) -> None:
    """Writes become invocations of the mapped function: INSERT and REMOVE only, in order, in
    batches of two; a batch that fails once is delivered again, then the next one follows."""
    suffix = uuid.uuid4().hex[:6]
    _sync_await(run_pulumi_func(lambda: _program(suffix)))
    mocks.check()
    (mapping,) = mocks.lambdas.stream_mappings()
    runtime = LambdaRuntime(
        mocks.lambdas.functions,
        max_workers=1,
        runtime_environment=_lambda_environment(REGION, aws.endpoint),
    )
    dynamodb = aws.client("dynamodb")
    table, results = f"connections-{suffix}", f"results-{suffix}"

    def invocations() -> list[dict[str, Any]]:
        items = dynamodb.scan(TableName=results)["Items"]
        kept = sorted(
            (item for item in items if item["id"]["S"].startswith("invocation#")),
            key=lambda item: item["id"]["S"],
        )
        return [json.loads(item["event"]["S"]) for item in kept]

    async def scenario() -> None:
        poller = StreamPoller(
            [mapping],
            runtime,
            lambda: aws.client("dynamodbstreams"),
            poll_interval=0.05,
            retry_backoff=0.05,
        )
        await poller.start()
        try:
            await runtime.warm(mapping.function_name)
            for key in ("a", "b"):
                await asyncio.to_thread(dynamodb.put_item, TableName=table, Item=_item(key))
            await asyncio.to_thread(dynamodb.update_item, **_add(table, "a"))  # MODIFY: filtered
            for key in ("fail-once", "c"):
                await asyncio.to_thread(dynamodb.put_item, TableName=table, Item=_item(key))
            await asyncio.to_thread(dynamodb.delete_item, TableName=table, Key={"id": {"S": "a"}})
            await asyncio.to_thread(eventually, lambda: len(invocations()) == 3, 20)
        finally:
            await poller.close()
            await runtime.close()

    asyncio.run(scenario())
    events = invocations()
    assert [
        [(r["eventName"], r["dynamodb"]["Keys"]["id"]["S"]) for r in event["Records"]]
        for event in events
    ] == [
        [("INSERT", "a"), ("INSERT", "b")],
        [("INSERT", "fail-once"), ("INSERT", "c")],
        [("REMOVE", "a")],
    ]
    record = events[0]["Records"][0]
    assert record["eventSourceARN"] == mapping.event_source_arn
    assert (record["eventVersion"], record["eventSource"], record["awsRegion"]) == (
        "1.1",
        "aws:dynamodb",
        REGION,
    )
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)
    assert record["dynamodb"]["StreamViewType"] == "KEYS_ONLY"
    failed = dynamodb.get_item(TableName=results, Key={"id": {"S": "failed-once"}})
    assert "Item" in failed  # the second batch did fail once before it was kept
