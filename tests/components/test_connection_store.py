"""ConnectionStore under Pulumi mocks: the table of the contract, configured for production."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pulumi_wsauth import USER_ID_INDEX, ConnectionStore, ConnectionStoreArgs
from tests.components.fakes import Deployment, resolved

TABLE = "aws:dynamodb/table:Table"


def build(
    args: ConnectionStoreArgs | None = None, seen: dict[str, Any] | None = None
) -> Callable[[], None]:
    def program() -> None:
        store = ConnectionStore("store", args)
        if seen is not None:
            seen["store"] = store

    return program


def test_keys_index_and_ttl_follow_the_contract(deploy: Callable[..., Deployment]) -> None:
    """`connectionId` key, `userIdIndex` on `userId`, `expiryIndex` on the expiry bucket and
    the expiry (keys only: the sweeper needs the connection id alone), TTL on `removedAt`."""
    table = deploy(build()).one(TABLE, "store-table").inputs

    assert table["hashKey"] == "connectionId"
    assert "rangeKey" not in table
    assert sorted(table["attributes"], key=lambda a: a["name"]) == [
        {"name": "connectionId", "type": "S"},
        {"name": "expiresAt", "type": "N"},
        {"name": "expiryBucket", "type": "N"},
        {"name": "userId", "type": "S"},
    ]
    assert table["globalSecondaryIndexes"] == [
        {
            "name": "userIdIndex",
            "keySchemas": [{"attributeName": "userId", "keyType": "HASH"}],
            "projectionType": "ALL",
        },
        {
            "name": "expiryIndex",
            "keySchemas": [
                {"attributeName": "expiryBucket", "keyType": "HASH"},
                {"attributeName": "expiresAt", "keyType": "RANGE"},
            ],
            "projectionType": "KEYS_ONLY",
        },
    ]
    assert table["ttl"] == {"attributeName": "removedAt", "enabled": True}


def test_billing_recovery_and_encryption(deploy: Callable[..., Deployment]) -> None:
    """On-demand, point-in-time recovery, encrypted with the AWS managed key."""
    table = deploy(build()).one(TABLE, "store-table").inputs

    assert table["billingMode"] == "PAY_PER_REQUEST"
    assert "readCapacity" not in table and "writeCapacity" not in table
    assert table["pointInTimeRecovery"] == {"enabled": True}
    assert table["serverSideEncryption"] == {"enabled": True}


@pytest.mark.parametrize(
    ("args", "expected"),
    [({}, False), ({"deletion_protection": False}, False), ({"deletion_protection": True}, True)],
)
def test_deletion_protection_is_a_switch(
    deploy: Callable[..., Deployment], args: ConnectionStoreArgs, expected: bool
) -> None:
    """Deletion protection is off unless asked for."""
    table = deploy(build(args)).one(TABLE, "store-table")

    assert table.inputs["deletionProtectionEnabled"] is expected


def test_outputs_name_the_table_and_index(deploy: Callable[..., Deployment]) -> None:
    """Name, ARN, index name and index ARN, as IAM policies need them."""
    seen: dict[str, Any] = {}
    table = deploy(build(seen=seen)).one(TABLE, "store-table")
    store: ConnectionStore = seen["store"]

    assert resolved(store.table_name) == table.state["name"]
    assert resolved(store.table_arn) == table.state["arn"]
    assert resolved(store.user_id_index_name) == USER_ID_INDEX == "userIdIndex"
    assert resolved(store.user_id_index_arn) == f"{table.state['arn']}/index/userIdIndex"
