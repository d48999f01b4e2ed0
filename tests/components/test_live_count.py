"""The live connection count in the components: the table's stream, the counter function fed
by it through an event source mapping, and exact IAM for both it and the minute job."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.components.fakes import Deployment, resolved
from tests.components.test_connection_store import TABLE
from tests.components.test_connection_store import build as build_store
from tests.components.test_websocket_api import (
    FUNCTION,
    LOG_GROUP,
    STREAM_ARN,
    TABLE_ARN,
    TABLE_NAME,
    build,
    policy_of,
)

MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
COUNT_ITEM_ONLY = {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["stats#connections"]}}


def test_the_table_streams_its_keys(deploy: Callable[..., Deployment]) -> None:
    """A removal's old image says when the connection began; the TTL's deletes are in the
    stream like any other."""
    seen: dict[str, Any] = {}
    deployment = deploy(build_store(seen=seen))
    table = deployment.one(TABLE, "store-table")

    assert (table.inputs["streamEnabled"], table.inputs["streamViewType"]) == (True, "OLD_IMAGE")
    assert resolved(seen["store"].stream_arn) == table.state["streamArn"]


def test_the_counter_is_fed_creations_and_removals_from_the_stream(
    deploy: Callable[..., Deployment],
) -> None:
    deployment = deploy(build())
    counter = deployment.one(FUNCTION, "ws-counter")
    (mapping,) = deployment.of_type(MAPPING)

    assert counter.inputs["handler"] == "handlers.connection_counter.handler"
    assert counter.inputs["environment"]["variables"] == {"CONNECTION_TABLE_NAME": TABLE_NAME}
    assert mapping.inputs == {
        "eventSourceArn": STREAM_ARN,
        "functionName": counter.state["arn"],
        "startingPosition": "TRIM_HORIZON",
        "batchSize": 100,
        "maximumBatchingWindowInSeconds": 5,
        "filterCriteria": {"filters": [{"pattern": '{"eventName": ["INSERT", "REMOVE"]}'}]},
    }
    # Lambda polls the stream with the function's role: the mapping waits for its policy.
    policy = deployment.one("aws:iam/rolePolicy:RolePolicy", "ws-counter-policy")
    assert policy.urn in counter.dependencies


def test_the_counter_reads_this_stream_and_writes_the_count_item_only(
    deploy: Callable[..., Deployment],
) -> None:
    deployment = deploy(build())
    log_group_arn = deployment.one(LOG_GROUP, "ws-counter-logs").state["arn"]

    assert policy_of(deployment, "counter")["Statement"] == [
        {
            "Sid": "ReadThisTablesStream",
            "Effect": "Allow",
            "Action": [
                "dynamodb:DescribeStream",
                "dynamodb:GetRecords",
                "dynamodb:GetShardIterator",
            ],
            "Resource": [STREAM_ARN],
        },
        {
            "Sid": "ListThisTablesStreams",
            "Effect": "Allow",
            "Action": ["dynamodb:ListStreams"],
            "Resource": [f"{TABLE_ARN}/stream/*"],
        },
        {
            "Sid": "KeepTheConnectionCount",
            "Effect": "Allow",
            "Action": ["dynamodb:UpdateItem"],
            "Resource": [TABLE_ARN],
            "Condition": COUNT_ITEM_ONLY,
        },
        {
            "Sid": "OwnLogGroupOnly",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [log_group_arn, f"{log_group_arn}:log-stream:*"],
        },
    ]


def test_the_minute_job_reads_the_count_item_only(deploy: Callable[..., Deployment]) -> None:
    """With sessions and without, its one table read of its own is the count's item."""
    for settings in ({}, {"session_expiry": "off", "expiry_index_arn": None}):
        deployment = deploy(build(**settings))
        (count,) = [
            statement
            for statement in policy_of(deployment, "sweeper")["Statement"]
            if statement["Sid"] == "ReadTheConnectionCount"
        ]
        assert count == {
            "Sid": "ReadTheConnectionCount",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem"],
            "Resource": [TABLE_ARN],
            "Condition": COUNT_ITEM_ONLY,
        }


def test_no_other_function_may_touch_the_count(deploy: Callable[..., Deployment]) -> None:
    """The websocket function and the authorizer have no part in the count."""
    deployment = deploy(build(session_expiry="off", max_connections_per_user=0))

    for role in ("websocket", "authorizer"):
        assert "UpdateItem" not in json.dumps(policy_of(deployment, role))


def test_the_stream_is_required(deploy: Callable[..., Deployment]) -> None:
    with pytest.raises(ValueError, match="connection_table_stream_arn is required"):
        deploy(build(connection_table_stream_arn=None))
