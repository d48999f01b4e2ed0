"""The whole local cloud (`wsauth local`: gateway, Lambda workers, moto) against the floor.

    python -m bench.localcloud [--quick] [--json]

The floor is `bench.gateway`'s bare `websockets` echo server (no auth, no handler), in its own
process. The local cloud runs as `wsauth local --port 0` in its own process tree, with the
project's program: every connection runs the real authorizer (JWT verified against moto's JWKS)
and the real `$connect` (DynamoDB put in moto); every message runs the real echo handler in a
worker process, which answers through boto3's `post_to_connection`, as in AWS. Clients run here,
with real ID tokens from the embedded user pool.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from websockets.asyncio.client import connect

from bench.gateway import (
    handshakes,
    percentile,
    round_trips,
    rss_kib,
    run_server,
    throughput,
)
from localcloud.testing import LocalCloud, descendant_pids, start_local_cloud


def tree_rss_kib(pid: int) -> int:
    """RSS of a process and all its descendants (the local cloud and its workers)."""
    total = 0
    for member in {pid, *descendant_pids(pid)}:
        try:
            total += rss_kib(member)
        except (FileNotFoundError, RuntimeError):
            pass  # a worker that exited, or a zombie
    return total


async def idle_memory_tree(urls: list[str], pid: int) -> int:
    before = tree_rss_kib(pid)
    connections = []
    for start in range(0, len(urls), 100):
        connections += await asyncio.gather(*(connect(url) for url in urls[start : start + 100]))
    await asyncio.sleep(0.5)  # let the server settle before reading its RSS
    after = tree_rss_kib(pid)
    await asyncio.gather(*(c.close() for c in connections))
    return after - before


async def distinct_handshakes(urls: list[str]) -> list[float]:
    """All clients at once, each with its own user's fresh token (no verified-token cache)."""

    async def one(url: str) -> float:
        started = time.perf_counter()
        client = await connect(url)
        elapsed = (time.perf_counter() - started) * 1e3
        await client.close()
        return elapsed

    return list(await asyncio.gather(*(one(url) for url in urls)))


async def measure(url: str, pid: int, quick: bool, fresh_urls: list[str]) -> dict[str, float]:
    rtt = await round_trips(url, 300 if quick else 1500)
    seconds = 2.0 if quick else 5.0
    hs1 = await handshakes(url, 1, 20 if quick else 60)
    # One unmeasured round first: 50 at once start every worker the pool will have (Lambda's
    # cold starts); the measured rounds are the steady state, as the floor's are.
    cold50 = await handshakes(url, 50, 1)
    hs50 = await handshakes(url, 50, 2 if quick else 4)
    figures = {
        "rtt_median_us": statistics.median(rtt),
        "rtt_p95_us": percentile(rtt, 0.95),
        "msgs_10": await throughput(url, 10, seconds),
        "msgs_50": await throughput(url, 50, seconds),
        "hs1_median_ms": statistics.median(hs1),
        "hs50_median_ms": statistics.median(hs50),
        "hs50_p95_ms": percentile(hs50, 0.95),
        "hs50_cold_p95_ms": percentile(cold50, 0.95),
    }
    if fresh_urls:
        fresh = await distinct_handshakes(fresh_urls)
        figures["hs50_fresh_median_ms"] = statistics.median(fresh)
        figures["hs50_fresh_p95_ms"] = percentile(fresh, 0.95)
    figures["idle_1000_kib"] = await idle_memory_tree([url] * 1000, pid)
    return figures


def measure_local_cloud(quick: bool) -> dict[str, float]:
    started = time.perf_counter()
    with start_local_cloud(["--no-web"]) as cloud:
        ready_s = time.perf_counter() - started
        url, fresh_urls = _urls(cloud)
        first_started = time.perf_counter()
        asyncio.run(_first_echo(url))
        first_echo_ms = (time.perf_counter() - first_started) * 1e3
        figures = asyncio.run(measure(url, cloud.process.pid, quick, fresh_urls))
    figures["ready_s"] = ready_s
    figures["first_echo_ms"] = first_echo_ms
    return figures


def _urls(cloud: LocalCloud) -> tuple[str, list[str]]:
    user = cloud.create_user()
    url = cloud.websocket_url(cloud.id_token(user))
    fresh = [cloud.websocket_url(cloud.id_token(cloud.create_user())) for _ in range(50)]
    return url, fresh


async def _first_echo(url: str) -> None:
    """Connect and echo once: the cold starts of both functions' first workers."""
    async with connect(url) as client:
        await client.send('{"action":"sendmessage","data":"first"}')
        await client.recv()


def measure_floor(quick: bool) -> dict[str, float]:
    process, url = run_server("floor")
    try:
        figures = asyncio.run(measure(url, process.pid, quick, []))
    finally:
        process.terminate()
        process.wait()
    return figures


ROWS = [
    ("echo round trip, 1 client, median (µs)", "rtt_median_us", "ratio"),
    ("echo round trip, 1 client, p95 (µs)", "rtt_p95_us", "ratio"),
    ("messages/s, 10 clients", "msgs_10", "share"),
    ("messages/s, 50 clients", "msgs_50", "share"),
    ("handshake, 1 client, median (ms)", "hs1_median_ms", "ratio"),
    ("handshake, 50 at once, median (ms)", "hs50_median_ms", "ratio"),
    ("handshake, 50 at once, p95 (ms)", "hs50_p95_ms", "ratio"),
    ("RSS for 1,000 idle connections (KiB)", "idle_1000_kib", "ratio"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print raw figures as JSON")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "floor": measure_floor(args.quick),
        "local": measure_local_cloud(args.quick),
    }
    if args.json:
        print(json.dumps(results, indent=2))
    floor, local = results["floor"], results["local"]
    print("| measure | floor (bare websockets) | wsauth local | local vs floor |")
    print("|---|---:|---:|---:|")
    for label, key, kind in ROWS:
        relation = (
            f"{local[key] / floor[key]:.0%} of floor"
            if kind == "share"
            else f"{local[key] / floor[key]:.1f}×"
        )
        print(f"| {label} | {floor[key]:,.1f} | {local[key]:,.1f} | {relation} |")
    print(
        f"| handshake, 50 users at once with fresh tokens, median / p95 (ms) | | "
        f"{local['hs50_fresh_median_ms']:,.1f} / {local['hs50_fresh_p95_ms']:,.1f} | |"
    )
    print(
        f"| handshake, 50 at once, first round (workers cold-starting), p95 (ms) | | "
        f"{local['hs50_cold_p95_ms']:,.1f} | |"
    )
    print(f"| start to ready (s), archive cached | | {local['ready_s']:.1f} | |")
    print(f"| first connect + echo (cold starts) (ms) | | {local['first_echo_ms']:,.0f} | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
