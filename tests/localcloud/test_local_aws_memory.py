"""The embedded AWS keeps only the data it holds: moto's instance tracking is off there."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from wsauth.localcloud.aws import EmbeddedAws

PAIRS = 500
"""`PutItem`/`DeleteItem` pairs, as many connects and disconnects."""


@pytest.fixture(scope="module")
def aws() -> Iterator[EmbeddedAws]:
    server = EmbeddedAws()
    server.start()
    yield server
    server.stop()


def _tracked_instances(aws: EmbeddedAws) -> int:
    """Count the model instances moto's registry holds, as its own dashboard lists them."""
    with urllib.request.urlopen(aws.endpoint + "/moto-api/data.json", timeout=10) as response:
        registry: dict[str, dict[str, list[Any]]] = json.load(response)
    return sum(len(instances) for models in registry.values() for instances in models.values())


def test_items_written_and_deleted_are_not_kept(aws: EmbeddedAws) -> None:
    """Hundreds of put/delete pairs leave moto's instance registry exactly as it was."""
    dynamodb = aws.client("dynamodb")
    table = f"connections-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "connectionId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "connectionId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    def connect_and_disconnect(count: int) -> None:
        for n in range(count):
            key = {"connectionId": {"S": f"conn-{n}"}}
            dynamodb.put_item(TableName=table, Item={**key, "userId": {"S": "x" * 36}})
            dynamodb.delete_item(TableName=table, Key=key)

    connect_and_disconnect(10)  # the table, the first items: whatever is made once
    before = _tracked_instances(aws)

    connect_and_disconnect(PAIRS)

    assert _tracked_instances(aws) == before
    assert dynamodb.scan(TableName=table)["Count"] == 0
