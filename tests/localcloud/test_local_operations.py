"""End to end: the program with alarms mailed and a custom domain runs locally, and the live
connection count follows connects and disconnects.

The program (`programs/operations/`) is the project's own with `alarmEmail`, an alarm override
and a domain in a Route 53 zone. Alarms, the dashboard, the topic, the certificate and the
domain are recorded; the minute job runs every half second (`--sweep-interval 0.5`) and its
embedded-metric-format line reaches the embedded CloudWatch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from websockets.asyncio.client import connect

from wsauth.localcloud.testing import LocalCloud, eventually, start_local_cloud

pytestmark = pytest.mark.e2e

PROGRAM = Path(__file__).parent / "programs" / "operations"


@pytest.fixture(scope="module")
def operations_cloud() -> Iterator[LocalCloud]:
    with start_local_cloud(["--no-web"], program_dir=PROGRAM, sweep_interval=0.5) as cloud:
        yield cloud


def test_starts_and_names_what_it_records(operations_cloud: LocalCloud) -> None:
    """Nothing of the operations part is an error: each is recorded and named at start."""
    log = operations_cloud.log_text()
    summary = next(line for line in log.splitlines() if "recorded, nothing to run" in line)
    for part in (
        "13 CloudWatch alarms",
        "1 dashboard",
        "3 log metric filters",
        "1 SNS topic",
        "1 email subscription",
        "1 custom domain (chat.example.com)",
        "1 ACM certificate",
        "2 Route 53 records",
    ):
        assert part in summary, part
    assert "not served" in log and "wss://chat.example.com" in log


def test_local_endpoints_stay_local_with_a_domain(operations_cloud: LocalCloud) -> None:
    """`webSocketEndpoint` deploys as wss://chat.example.com; locally it is the stage's URL."""
    outputs = operations_cloud.outputs
    socket = urlsplit(outputs["webSocketEndpoint"])
    assert (socket.scheme, socket.hostname, socket.path) == ("ws", "127.0.0.1", "/prod")
    assert urlsplit(outputs["managementEndpoint"]).path == "/prod"
    assert outputs["customDomainTarget"].endswith(".execute-api.us-east-1.amazonaws.com")
    assert outputs["alarmTopicArn"].startswith("arn:aws:sns:us-east-1:")


def test_live_count_follows_connects_and_disconnects(operations_cloud: LocalCloud) -> None:
    """Three connections of two users count 3; closing two leaves 1; closing the last, 0."""
    cloud = operations_cloud
    first, second = cloud.create_user(), cloud.create_user()
    tokens = [cloud.id_token(first), cloud.id_token(first), cloud.id_token(second)]

    def count_becomes(expected: int) -> None:
        eventually(lambda: cloud.latest_metric("ConnectionCount") == expected, timeout=20)

    async def scenario() -> None:
        async with AsyncExitStack() as stack:
            sockets = [
                await stack.enter_async_context(connect(cloud.websocket_url(t))) for t in tokens
            ]
            await asyncio.to_thread(count_becomes, 3)
            for socket in sockets[:2]:
                await socket.close()
            await asyncio.to_thread(count_becomes, 1)
        await asyncio.to_thread(count_becomes, 0)

    asyncio.run(scenario())
