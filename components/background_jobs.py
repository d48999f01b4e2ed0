"""The functions of SecuredWebSocketApi that no route invokes: the minute job (EventBridge) and
the connection counter (the connection table's stream)."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from .functions import FunctionFactory
from .naming import physical_name
from .policies import counter_policy, sweeper_policy
from .websocket_settings import SecuredWebSocketApiArgs, Settings

__all__ = [
    "COUNTER_HANDLER",
    "SWEEPER_HANDLER",
    "SWEEP_SCHEDULE",
    "connection_counter",
    "minute_job",
]

SWEEPER_HANDLER = "handlers.sweeper.handler"
COUNTER_HANDLER = "handlers.connection_counter.handler"
SWEEP_SCHEDULE = "rate(1 minute)"


def minute_job(
    functions: FunctionFactory,
    settings: Settings,
    args: SecuredWebSocketApiArgs,
    *,
    api: aws.apigatewayv2.Api,
    management_endpoint: pulumi.Output[str],
) -> aws.lambda_.Function:
    """The function that runs every minute: publishes the live connection count and, with
    sessions, closes idle expired connections.

    A connection that sends nothing is never checked by the websocket function; this finds the
    expired ones through the table's `expiryIndex`.
    """
    name = functions.name
    sessions = settings.session_expiry == "enforce"
    sweeper = functions.create(
        "sweeper",
        handler=SWEEPER_HANDLER,
        memory_mb=256,
        # Closing is two short calls per connection, a bounded number at once.
        timeout_seconds=60,
        environment={
            "CONNECTION_TABLE_NAME": args["connection_table_name"],
            "CONNECTION_TTL_SECONDS": str(settings.connection_ttl_seconds),
            "CLOCK_LEEWAY_SECONDS": str(settings.clock_leeway_seconds),
            "MANAGEMENT_ENDPOINT": management_endpoint,
            "SESSION_EXPIRY": settings.session_expiry,
            "API_ID": api.id,
            "STAGE_NAME": settings.stage_name,
        },
        policy=lambda log_group_arn: sweeper_policy(
            log_group_arn,
            args["connection_table_arn"],
            api.execution_arn,
            settings.stage_name,
            expiry_index_arn=args.get("expiry_index_arn") if sessions else None,
        ),
    )
    task = "Counts the connections" + (" and closes the expired sessions" if sessions else "")
    schedule = aws.cloudwatch.EventRule(
        f"{name}-sweep-schedule",
        description=f"{task} of {physical_name(name, 'api')}",
        schedule_expression=SWEEP_SCHEDULE,
        opts=functions.child,
    )
    aws.cloudwatch.EventTarget(
        f"{name}-sweep-target", rule=schedule.name, arn=sweeper.arn, opts=functions.child
    )
    aws.lambda_.Permission(
        f"{name}-sweeper-schedule-invoke",
        action="lambda:InvokeFunction",
        function=sweeper.name,
        principal="events.amazonaws.com",
        source_arn=schedule.arn,
        opts=functions.child,
    )
    return sweeper


def connection_counter(
    functions: FunctionFactory, args: SecuredWebSocketApiArgs
) -> aws.lambda_.Function:
    """The function that keeps the live connection count from the table's stream.

    Whatever creates or removes a connection item (the TTL included), the count follows, and
    `$connect` does not wait for it. Lambda reads the stream with the function's role (no
    invoke permission) and retries a failed batch until it succeeds.
    """
    counter = functions.create(
        "counter",
        handler=COUNTER_HANDLER,
        memory_mb=128,
        timeout_seconds=30,
        environment={"CONNECTION_TABLE_NAME": args["connection_table_name"]},
        policy=lambda log_group_arn: counter_policy(
            log_group_arn, args["connection_table_arn"], args["connection_table_stream_arn"]
        ),
    )
    aws.lambda_.EventSourceMapping(
        f"{functions.name}-counter-stream",
        event_source_arn=args["connection_table_stream_arn"],
        function_name=counter.arn,
        # From the stream's start: every connection stored since is in it (README, Operating it).
        starting_position="TRIM_HORIZON",
        batch_size=100,
        # One write per batch: up to 5 s of connects and disconnects summed.
        maximum_batching_window_in_seconds=5,
        # Only creations and removals change the count; updates (refreshes, users' items, the
        # count's own writes) never reach the function.
        filter_criteria=aws.lambda_.EventSourceMappingFilterCriteriaArgs(
            filters=[
                aws.lambda_.EventSourceMappingFilterCriteriaFilterArgs(
                    pattern=json.dumps({"eventName": ["INSERT", "REMOVE"]})
                )
            ]
        ),
        opts=functions.child,
    )
    return counter
