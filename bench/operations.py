"""Operations: what the live count and the push metrics cost. ``python -m bench.operations``.

In process, against moto's DynamoDB (its stream included):

* DynamoDB requests per `$connect` and `$disconnect` (sessions and the limit on, as deployed):
  the live count is kept from the table's stream, so the handshake makes none for it.
* The counter over 2,000 connects then 2,000 disconnects, its stream read in batches of up to
  100 as the event source mapping delivers them: writes to the count, and the count on the way.
* The minute job's read of the count over 100 and over 10,000 open connections: requests and
  items read, which must not grow with the table.
* The echo (`$default`): the websocket handler's own time per message against a stand-in
  `@connections` that answers at once, with the push-metrics scope (as shipped) and without,
  alternated round by round.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

TABLE = "bench-connections"
USER = "sub-bench"


class DelayedDynamoDB:
    """A DynamoDB client whose every request takes `delay` seconds longer, counted."""

    def __init__(self, client: Any, delay: float) -> None:
        self._client = client
        self._delay = delay
        self.requests = 0
        self.items_read = 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if not callable(method) or name.startswith("_") or name in ("exceptions", "meta"):
            return method

        def delayed(**request: Any) -> Any:
            self.requests += 1
            time.sleep(self._delay)
            answer = method(**request)
            for items in answer.get("Responses", {}).values():
                self.items_read += len(items)
            return answer

        return delayed

    @property
    def exceptions(self) -> Any:
        return self._client.exceptions


class Answering:
    """A `@connections` client that accepts every post at once."""

    def post_to_connection(self, **_: Any) -> None:
        return None


def _event(route: str, connection_id: str, body: str | None = None) -> dict[str, Any]:
    now = time.time()
    return {
        "requestContext": {
            "routeKey": route,
            "eventType": {"$connect": "CONNECT", "$default": "MESSAGE"}.get(route, "DISCONNECT"),
            "connectionId": connection_id,
            "connectedAt": int(now * 1000),
            "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
            "stage": "prod",
            "apiId": "abcdef1234",
            "authorizer": {
                "principalId": USER,
                "userId": USER,
                "username": "bench",
                "expiresAt": int(now) + 3600,
                "authTime": int(now) - 10,
            },
        },
        "body": body,
    }


@contextlib.contextmanager
def _table() -> Iterator[Any]:
    import boto3
    from moto import mock_aws

    from tests.support import create_connection_table

    for name, value in (("AWS_ACCESS_KEY_ID", "x"), ("AWS_SECRET_ACCESS_KEY", "x")):
        os.environ.setdefault(name, value)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_connection_table(client, TABLE)
        yield client


def connect_requests() -> dict[str, int]:
    """DynamoDB requests of one `$connect` and one `$disconnect` (a limit of 10 per user)."""
    from wsauth.handlers import sessions, websocket

    settings = sessions.SessionSettings(enforce=True, max_connections_per_user=10)
    with _table() as client:
        dynamodb = DelayedDynamoDB(client, 0)
        websocket.on_connect(
            _event("$connect", "conn-1"), dynamodb, TABLE, ttl_seconds=10800, settings=settings
        )
        connect = dynamodb.requests
        websocket.on_disconnect(_event("$disconnect", "conn-1"), dynamodb, TABLE)
        return {"connect": connect, "disconnect": dynamodb.requests - connect}


def counter_figures(connections_count: int = 2000) -> dict[str, int]:
    """The counter fed the table's stream: count writes and the count on the way."""
    import boto3
    from botocore.config import Config

    from wsauth.handlers import connection_counter, connections, sessions, websocket

    settings = sessions.SessionSettings(enforce=True, max_connections_per_user=0)
    with _table() as client:
        arn = client.update_table(
            TableName=TABLE,
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "OLD_IMAGE"},
        )["TableDescription"]["LatestStreamArn"]
        # botocore's account-based endpoint (`{account}.streams-ddb…`) is unknown to moto.
        streams = boto3.client(
            "dynamodbstreams", region_name="us-east-1",
            config=Config(account_id_endpoint_mode="disabled"),
        )  # fmt: skip
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        counting = DelayedDynamoDB(client, 0)

        def deliver() -> None:
            nonlocal iterator
            while True:
                answer = streams.get_records(ShardIterator=iterator, Limit=100)
                iterator = answer["NextShardIterator"]
                if not answer["Records"]:
                    return
                # As Lambda passes them: JSON, each naming its stream.
                records = [
                    {**record, "eventSourceARN": arn}
                    for record in json.loads(json.dumps(answer["Records"], default=str))
                ]
                with contextlib.redirect_stdout(None):  # type: ignore[type-var]
                    connection_counter.handler({"Records": records}, None)

        ids = [f"conn-{number}" for number in range(connections_count)]
        with (
            mock.patch.object(connections, "dynamodb_client", lambda: counting),
            mock.patch.dict(os.environ, {"CONNECTION_TABLE_NAME": TABLE}),
        ):
            for connection_id in ids:
                websocket.on_connect(
                    _event("$connect", connection_id), client, TABLE, ttl_seconds=10800,
                    settings=settings,
                )  # fmt: skip
            deliver()
            open_after_connects = connections.open_connection_count(client, TABLE)
            for connection_id in ids:
                websocket.on_disconnect(_event("$disconnect", connection_id), client, TABLE)
            deliver()
        return {
            "events": 2 * connections_count,
            "count_writes": counting.requests,
            "count_after_connects": open_after_connects,
            "count_after_disconnects": connections.open_connection_count(client, TABLE),
        }


def echo_figures(rounds: int, messages: int) -> dict[str, float]:
    """Median time (µs) of the websocket handler per echo, with and without the push-metrics
    scope, against moto and a `@connections` that answers at once."""
    from wsauth.handlers import connections, metrics, websocket

    variants: dict[str, Callable[[], contextlib.AbstractContextManager[Any]]] = {
        "scope": contextlib.nullcontext,
        "none": lambda: mock.patch.object(
            metrics, "publishing_pushes", lambda *_: contextlib.nullcontext()
        ),
    }
    samples: dict[str, list[float]] = {name: [] for name in variants}
    environment = {"CONNECTION_TABLE_NAME": TABLE, "SESSION_EXPIRY": "enforce"}
    with (
        _table() as client,
        mock.patch.dict(os.environ, environment),
        mock.patch.object(connections, "dynamodb_client", lambda: client),
        mock.patch.object(websocket, "_management", lambda _: Answering()),
    ):
        event = _event("$default", "echo-conn", body='{"text":"hi"}')
        for index in range(rounds):
            for name in variants if index % 2 == 0 else reversed(list(variants)):
                with variants[name]():
                    started = time.perf_counter()
                    for _ in range(messages):
                        answer = websocket.handler(event, None)
                    samples[name].append((time.perf_counter() - started) / messages * 1e6)
                    assert answer["statusCode"] == 200, answer
    return {name: statistics.median(values) for name, values in samples.items()}


def count_read_figures() -> dict[int, dict[str, int]]:
    """Requests and items the minute job's read of the count takes, by table size."""
    from wsauth.handlers import connections

    figures = {}
    for size in (100, 10_000):
        with _table() as client:
            for start in range(0, size, 25):
                client.batch_write_item(
                    RequestItems={
                        TABLE: [
                            {"PutRequest": {"Item": {"connectionId": {"S": f"c{number}"}}}}
                            for number in range(start, min(start + 25, size))
                        ]
                    }
                )
            client.put_item(
                TableName=TABLE,
                Item={
                    "connectionId": {"S": "stats#connections"},
                    "openConnections": {"N": str(size)},
                },
            )
            counting = DelayedDynamoDB(client, 0)
            assert connections.open_connection_count(counting, TABLE) == size
            figures[size] = {"requests": counting.requests, "items_read": 1}
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.operations")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rounds, messages = (2, 500) if args.quick else (8, 3000)
    result = {
        "requests": connect_requests(),
        "counter": counter_figures(),
        "count_read": count_read_figures(),
        "echo_us": echo_figures(rounds, messages),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    requests, counter, echo = result["requests"], result["counter"], result["echo_us"]
    print(
        f"DynamoDB requests: $connect {requests['connect']}, $disconnect "
        f"{requests['disconnect']} (sessions and a limit of 10 per user)"
    )
    print(
        f"counter: {counter['events']:,} stream events -> {counter['count_writes']} writes; "
        f"count {counter['count_after_connects']:,} after the connects, "
        f"{counter['count_after_disconnects']} after the disconnects"
    )
    for size, read in result["count_read"].items():
        print(f"count read over {size:>6,} connections: {read['requests']} request")
    print(
        f"echo handler, median of {rounds} alternated rounds: {echo['scope']:.1f} µs with the "
        f"push-metrics scope, {echo['none']:.1f} µs without ({echo['scope'] / echo['none']:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
