"""Test-only Lambda handlers for routes the end-to-end tests add to the program."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3


def crash(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise RuntimeError("this handler always fails")


def hang(event: dict[str, Any], context: Any) -> dict[str, Any]:
    time.sleep(3600)  # far past the function's timeout: the runtime must kill it
    return {"statusCode": 200}


def whoami(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answer the sender through `@connections` with what API Gateway told the function."""
    request = event["requestContext"]
    # The endpoint comes from AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI, as in the real handler.
    boto3.client("apigatewaymanagementapi").post_to_connection(
        ConnectionId=request["connectionId"],
        Data=json.dumps(
            {
                "routeKey": request["routeKey"],
                "userId": request["authorizer"]["userId"],
                "functionName": context.function_name,
            }
        ).encode(),
    )
    return {"statusCode": 200}
