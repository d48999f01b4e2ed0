"""What a month of the stack costs at a few sizes: the README's table ("Operating it").

Run `python -m bench.monthly_cost` (prints the Markdown table). Not a benchmark: a model. It
multiplies the stack's own per-connection and per-message work (counted from the code: requests
to each service, items written, log lines) by AWS's public us-east-1 list prices, free tiers
left out. Change `PRICES` when they change; `SIZES` for other workloads.
"""

from __future__ import annotations

from dataclasses import dataclass

MINUTES_PER_MONTH = 730 * 60
"""AWS bills a month as 730 hours."""

PRICES_AS_OF = "2026-06"
"""When the prices below were last checked, with their sources."""

PRICES = {
    # API Gateway WebSocket: per million messages (each way, in 32 KB units) for the first
    # billion a month and beyond, and per million connection minutes.
    # amnic.com/blogs/aws-api-gateway-pricing (citing aws.amazon.com/api-gateway/pricing),
    # awsforengineers.com (19 May 2025).
    "api_message": 1.00 / 1e6,
    "api_message_over_a_billion": 0.80 / 1e6,
    "api_connection_minute": 0.25 / 1e6,
    # Lambda: per million requests and per GB-second on arm64.
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_second_arm64": 0.0000133334,
    # DynamoDB on demand since the November 2024 cut: per million write and read request
    # units. airbyte.com/data-engineering-resources/dynamodb-pricing (July 2025).
    "dynamodb_write_unit": 0.625 / 1e6,
    "dynamodb_read_unit": 0.125 / 1e6,
    # CloudWatch: per alarm metric a month (standard resolution), per dashboard a month, per
    # custom metric a month, per GB of logs ingested. factualminds.com (13 June 2026).
    "alarm_metric": 0.10,
    "dashboard": 3.00,
    "custom_metric": 0.30,
    "log_gb": 0.50,
}

# The stack's own work, counted from its code and settings.
ALARM_METRICS = 12 + 6
"""Twelve single-metric alarms, and table_throttles, which adds six metrics."""
CUSTOM_METRICS = 3 + 3
"""ConnectionCount, FailedPushes, GonePushes (EMF); Allow, Deny, Error (metric filters)."""
WRITE_UNITS_PER_CONNECTION = 8
"""$connect: the item (+1 per index it lands in, 2) and the user's count; $disconnect: the same
again, deleted. Items are under 1 KB."""
COUNTER_BATCH = 100
"""Stream records per counter run (and per write to the count) when connections come and go
faster than one batch per 5-second window; slower, one run per window at most."""
LOG_BYTES_PER_RUN = 350
"""Lambda's START, END and REPORT lines, plus the function's own JSON line."""
ACCESS_LOG_BYTES = 650
"""One access-log line per connect, disconnect and client message."""
SECONDS = {
    "authorizer": (0.5, 0.010),
    "websocket": (0.25, 0.030),
    "minute job": (0.25, 0.300),
    "counter": (0.125, 0.020),
}
"""Memory (GB) and billed seconds per run, warm: the authorizer verifies a cached key, the
websocket function makes one DynamoDB or @connections call, the minute job a GetItem and a few
queries, the counter one UpdateItem."""


@dataclass(frozen=True)
class Size:
    """A workload: how many connections are open on average and what they do."""

    name: str
    connections: int
    """Open at any time, on average."""
    messages_per_minute: float
    """Client messages per connection per minute; each is echoed (one more message out)."""
    session_minutes: int = 60
    """How long a connection lasts before the client reconnects."""


SIZES = (
    Size("small", 100, 1),
    Size("medium", 1_000, 2),
    Size("large", 10_000, 5),
)


def monthly_cost(size: Size) -> dict[str, float]:
    """Dollars per month by service for one workload."""
    p = PRICES
    connection_minutes = size.connections * MINUTES_PER_MONTH
    client_messages = connection_minutes * size.messages_per_minute
    connections = connection_minutes / size.session_minutes
    minute_job_runs = MINUTES_PER_MONTH

    messages = 2 * client_messages
    api = (
        min(messages, 1e9) * p["api_message"]
        + max(messages - 1e9, 0) * p["api_message_over_a_billion"]
        + connection_minutes * p["api_connection_minute"]
    )
    # Stream records reach the counter in batches: a run per 5-second window that has any,
    # more only when a window holds over a batch.
    events, windows = 2 * connections, 12 * MINUTES_PER_MONTH
    counter_runs = min(events, max(windows, events / COUNTER_BATCH))
    runs = {
        "authorizer": connections,
        "websocket": 2 * connections + client_messages,
        "minute job": minute_job_runs,
        "counter": counter_runs,
    }
    lambda_cost = sum(
        count * (p["lambda_request"] + gb * seconds * p["lambda_gb_second_arm64"])
        for role, count in runs.items()
        for gb, seconds in [SECONDS[role]]
    )
    # The counter writes once per run; the minute job reads one item (eventually consistent:
    # half a unit). Lambda's reads of the stream are free.
    dynamodb = (connections * WRITE_UNITS_PER_CONNECTION + counter_runs) * p[
        "dynamodb_write_unit"
    ] + minute_job_runs * 0.5 * p["dynamodb_read_unit"]
    log_bytes = (
        sum(runs.values()) * LOG_BYTES_PER_RUN
        + (2 * connections + client_messages) * ACCESS_LOG_BYTES
    )
    cloudwatch = (
        ALARM_METRICS * p["alarm_metric"]
        + p["dashboard"]
        + CUSTOM_METRICS * p["custom_metric"]
        + log_bytes / 1e9 * p["log_gb"]
    )
    return {
        "API Gateway": api,
        "Lambda": lambda_cost,
        "DynamoDB": dynamodb,
        "CloudWatch": cloudwatch,
    }


def table() -> str:
    """The README's table, in Markdown."""
    services = list(monthly_cost(SIZES[0]))
    lines = [
        "| size | connections open | messages a month | "
        + " | ".join(services)
        + " | total a month |",
        "|---|---:|---:|" + "---:|" * (len(services) + 1),
    ]
    for size in SIZES:
        cost = monthly_cost(size)
        messages = size.connections * MINUTES_PER_MONTH * size.messages_per_minute * 2
        lines.append(
            f"| {size.name} | {size.connections:,} | {messages / 1e6:,.1f} M | "
            + " | ".join(f"${cost[s]:,.2f}" for s in services)
            + f" | **${sum(cost.values()):,.2f}** |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(f"Prices: us-east-1, as of {PRICES_AS_OF}; free tiers not deducted.\n")
    print(table())
