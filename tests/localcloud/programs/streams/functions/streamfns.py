"""A test-only Lambda handler mapped to a table's stream: each invocation leaves its event behind.

A batch holding the key `fail-once` fails the first time it is delivered (the function
remembers that it did in the results table), so the test sees Lambda's retry of a stream batch.
"""

from __future__ import annotations

import json
import os
from typing import Any

import boto3

_clients: dict[str, Any] = {}


def _dynamodb() -> Any:
    if "dynamodb" not in _clients:
        _clients["dynamodb"] = boto3.client("dynamodb")
    return _clients["dynamodb"]


def keep(event: dict[str, Any], context: Any) -> None:
    """Store the event as item `invocation#NNNN`, numbered in the order of invocations."""
    dynamodb, table = _dynamodb(), os.environ["RESULTS_TABLE"]
    keys = [record["dynamodb"]["Keys"]["id"]["S"] for record in event["Records"]]
    if "fail-once" in keys:
        try:
            dynamodb.put_item(
                TableName=table,
                Item={"id": {"S": "failed-once"}},
                ConditionExpression="attribute_not_exists(id)",
            )
        except dynamodb.exceptions.ConditionalCheckFailedException:
            pass  # failed before: this is the retry
        else:
            raise RuntimeError("failing this batch once")
    number = dynamodb.update_item(
        TableName=table,
        Key={"id": {"S": "invocations"}},
        UpdateExpression="ADD n :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
        ReturnValues="UPDATED_NEW",
    )["Attributes"]["n"]["N"]
    dynamodb.put_item(
        TableName=table,
        Item={"id": {"S": f"invocation#{int(number):04d}"}, "event": {"S": json.dumps(event)}},
    )
