"""Test-only Lambda handlers that EventBridge schedules run: each run leaves an item behind."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import boto3


def mark(event: dict[str, Any], context: Any) -> None:
    """Record the event and the `@connections` endpoint this function was given."""
    boto3.client("dynamodb").put_item(
        TableName=os.environ["MARKS_TABLE"],
        Item={
            "id": {"S": event["id"]},
            "function": {"S": context.function_name},
            "event": {"S": json.dumps(event)},
            "managementEndpoint": {
                "S": os.environ.get("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI", "")
            },
        },
    )


def slow(event: dict[str, Any], context: Any) -> None:
    """Take a second, longer than the test's schedule interval; record when it ran."""
    dynamodb = boto3.client("dynamodb")
    key = {"id": {"S": event["id"]}}
    dynamodb.put_item(
        TableName=os.environ["MARKS_TABLE"],
        Item={**key, "function": {"S": context.function_name}, "started": {"N": repr(time.time())}},
    )
    time.sleep(1.0)
    dynamodb.update_item(
        TableName=os.environ["MARKS_TABLE"],
        Key=key,
        UpdateExpression="SET finished = :now",
        ExpressionAttributeValues={":now": {"N": repr(time.time())}},
    )
