"""Sessions: what they cost. ``python -m bench.sessions [--quick] [--json]``.

Two local clouds run at once: the project's program as it is (``sessionExpiry: enforce``, a
limit of 10 connections per user) and the same program with both off
(``bench/programs/sessions_off``). The variants alternate round by round, so the machine's
noise falls on both.

* Echo round trip (1 client) and throughput (10 clients): a live session costs no table read
  per message, so the two should not differ beyond noise.
* 50 simultaneous handshakes, each by its own user (fresh tokens, once per round): with
  sessions and the limit, each `$connect` makes one conditional write to the user's item (the
  count, which also returns the sign-out record) before its connection item.
* The sweeper over 10,000 connections of which 100 have expired, in moto's DynamoDB (in
  process) with a stand-in ``@connections`` that only counts: items read, queries, time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

from bench.gateway import percentile, round_trips, throughput, timed_connects
from bench.localcloud import table_drained
from wsauth.localcloud.testing import start_local_cloud

OFF_PROGRAM = Path(__file__).resolve().parent / "programs" / "sessions_off"
CONNECTIONS = 10_000
EXPIRED = 100


def cloud_figures(rounds: int, count: int, seconds: float) -> dict[str, Any]:
    """Alternate on and off; echo figures are medians over the rounds, handshake figures are
    taken over every handshake of every round."""
    samples: dict[str, dict[str, list[float]]] = {
        variant: {"rt_median_us": [], "rt_p95_us": [], "msgs_per_s": [], "handshakes_ms": []}
        for variant in ("on", "off")
    }
    with (
        start_local_cloud(["--no-web"]) as on,
        start_local_cloud(["--no-web"], program_dir=OFF_PROGRAM) as off,
    ):
        clouds = {"on": on, "off": off}
        urls = {
            name: cloud.websocket_url(cloud.id_token(cloud.create_user()))
            for name, cloud in clouds.items()
        }
        fresh = {name: [cloud.create_user() for _ in range(50)] for name, cloud in clouds.items()}
        settle = {name: table_drained(cloud) for name, cloud in clouds.items()}
        for name, cloud in clouds.items():  # unmeasured: start every worker the pool will have
            tokens = [cloud.websocket_url(cloud.id_token(user)) for user in fresh[name]]
            asyncio.run(timed_connects(tokens, settle[name]))
        order = ["on", "off"]
        for index in range(rounds):
            for variant in order if index % 2 == 0 else reversed(order):
                cloud = clouds[variant]
                trips = asyncio.run(round_trips(urls[variant], count))
                samples[variant]["rt_median_us"].append(statistics.median(trips))
                samples[variant]["rt_p95_us"].append(percentile(trips, 0.95))
                samples[variant]["msgs_per_s"].append(
                    asyncio.run(throughput(urls[variant], 10, seconds))
                )
                tokens = [cloud.websocket_url(cloud.id_token(user)) for user in fresh[variant]]
                samples[variant]["handshakes_ms"] += asyncio.run(
                    timed_connects(tokens, settle[variant])
                )
    figures: dict[str, Any] = {}
    for variant, values in samples.items():
        handshakes = values.pop("handshakes_ms")
        figures[variant] = {name: statistics.median(v) for name, v in values.items()}
        figures[variant]["hs50_median_ms"] = statistics.median(handshakes)
        figures[variant]["hs50_p95_ms"] = percentile(handshakes, 0.95)
    return figures


class CountingManagement:
    """Stands in for `@connections`: counts, so only the sweeper's own work is timed."""

    def __init__(self) -> None:
        self.posts = 0
        self.deletes = 0

    def post_to_connection(self, ConnectionId: str, Data: bytes) -> None:  # noqa: N803
        self.posts += 1

    def delete_connection(self, ConnectionId: str) -> None:  # noqa: N803
        self.deletes += 1


class CountingDynamoDB:
    """A DynamoDB client that counts queries, scans and the items they return."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.exceptions = client.exceptions
        self.queries = 0
        self.scans = 0
        self.items_read = 0

    def query(self, **request: Any) -> Any:
        self.queries += 1
        answer = self._client.query(**request)
        self.items_read += len(answer.get("Items", []))
        return answer

    def scan(self, **request: Any) -> Any:  # never called: counted to prove it
        self.scans += 1
        return self._client.scan(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def sweeper_figures() -> dict[str, Any]:
    """10,000 connections, 100 expired (spread over the past three hours): one sweep."""
    import os

    import boto3
    from moto import mock_aws

    from tests.support import create_connection_table
    from wsauth.handlers import sweeper

    for name, value in (("AWS_ACCESS_KEY_ID", "x"), ("AWS_SECRET_ACCESS_KEY", "x")):
        os.environ.setdefault(name, value)
    now = int(time.time())
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_connection_table(client, "bench-connections")
        items = []
        for index in range(CONNECTIONS):
            expires_at = now - 1 - index * 107 if index < EXPIRED else now + 60 + index % 3600
            items.append(
                {
                    "PutRequest": {
                        "Item": {
                            "connectionId": {"S": f"conn-{index:05d}"},
                            "userId": {"S": f"user-{index % 500}"},
                            "expiresAt": {"N": str(expires_at)},
                            "expiryBucket": {"N": str(expires_at // 600)},
                        }
                    }
                }
            )
        for start in range(0, len(items), 25):
            client.batch_write_item(RequestItems={"bench-connections": items[start : start + 25]})
        counting = CountingDynamoDB(client)
        management = CountingManagement()
        started = time.perf_counter()
        counts = sweeper.sweep(
            counting,
            management,
            "bench-connections",
            now=now,
            leeway_seconds=0,
            lookback_seconds=10800,
        )
        elapsed_ms = (time.perf_counter() - started) * 1000
    return {
        "connections": CONNECTIONS,
        "expired": EXPIRED,
        "closed": counts["closed"],
        "items_read": counting.items_read,
        "queries": counting.queries,
        "scans": counting.scans,
        "sweep_ms": elapsed_ms,
    }


def main(argv: list[str] | None = None) -> int:
    """Run both measures and print them."""
    parser = argparse.ArgumentParser(prog="python -m bench.sessions")
    parser.add_argument("--quick", action="store_true", help="fewer rounds and messages")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rounds, count, seconds = (2, 300, 2.0) if args.quick else (4, 1000, 5.0)
    sweep = sweeper_figures()
    clouds = cloud_figures(rounds, count, seconds)
    result = {"clouds": clouds, "sweeper": sweep}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"through the local cloud, sessions and limit on vs off, {rounds} alternated rounds:")
    for variant in ("on", "off"):
        figures = clouds[variant]
        print(
            f"  {variant:<4} round trip {figures['rt_median_us']:6.0f} µs "
            f"(p95 {figures['rt_p95_us']:6.0f})  10 clients {figures['msgs_per_s']:5.0f} msg/s  "
            f"50 handshakes p50 {figures['hs50_median_ms']:5.1f} ms "
            f"p95 {figures['hs50_p95_ms']:5.1f} ms"
        )
    on, off = clouds["on"], clouds["off"]
    print(
        f"  on / off: round trip {on['rt_median_us'] / off['rt_median_us']:.2f}x, "
        f"throughput {on['msgs_per_s'] / off['msgs_per_s']:.2f}x, "
        f"handshake p95 {on['hs50_p95_ms'] / off['hs50_p95_ms']:.2f}x "
        f"({on['hs50_p95_ms'] - off['hs50_p95_ms']:+.1f} ms)"
    )
    print(
        f"sweeper: {sweep['connections']} connections, {sweep['expired']} expired -> "
        f"closed {sweep['closed']}, items read {sweep['items_read']}, queries {sweep['queries']}, "
        f"scans {sweep['scans']}, {sweep['sweep_ms']:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
