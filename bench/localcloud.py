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
import os
import statistics
import time
from typing import Any

from websockets.asyncio.client import connect

from bench.gateway import (
    MESSAGE,
    ROWS,
    Settle,
    handshakes,
    percentile,
    round_trips,
    rss_kib,
    run_server,
    shared_figures,
    throughput,
    timed_connects,
)
from wsauth.localcloud.testing import LocalCloud, descendant_pids, start_local_cloud


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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _role(pid: int, root: int, aws_pid: int | None) -> str:
    if pid == root:
        return "gateway"
    return "moto" if pid == aws_pid else "workers"


async def cpu_per_message(url: str, root: int, clients: int, seconds: float) -> dict[str, float]:
    """Where the CPU goes while `clients` echo: µs of CPU per message, by process role."""
    await throughput(url, clients, 1.0)  # start every worker this load needs
    members = {root, *descendant_pids(root)}
    aws_pid = next((pid for pid in members if _is_moto(pid)), None)
    before = {pid: cpu_seconds(pid) for pid in members}
    rate = await throughput(url, clients, seconds)
    messages = rate * seconds
    spent: dict[str, float] = {}
    for pid in members:
        try:
            used = cpu_seconds(pid) - before[pid]
        except FileNotFoundError:
            continue
        role = _role(pid, root, aws_pid)
        spent[role] = spent.get(role, 0.0) + used
    return {f"cpu_us_{role}": used / messages * 1e6 for role, used in spent.items()}


def _is_moto(pid: int) -> bool:
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        return b"wsauth.localcloud.aws" in cmdline.read()


def table_drained(cloud: LocalCloud) -> Settle:
    """A `Settle` that waits until every `$disconnect` has deleted its connection's item."""
    dynamodb = cloud.client("dynamodb")
    table = cloud.outputs["connectionTableName"]

    async def settle() -> None:
        # Connections only: each user's own item (sign-out record, count) has no `userId`.
        while dynamodb.scan(
            TableName=table, Select="COUNT", FilterExpression="attribute_exists(userId)"
        )["Count"]:
            await asyncio.sleep(0.005)

    return settle


async def measure(
    url: str, pid: int, quick: bool, fresh_urls: list[str], settle: Settle | None = None
) -> dict[str, float]:
    """The figures for one server; `settle` as in `timed_connects` (None for the floor)."""
    rtt = await round_trips(url, 300 if quick else 1500)
    seconds = 2.0 if quick else 5.0
    hs1 = await handshakes(url, 1, 20 if quick else 60, settle)
    # One unmeasured round first: 50 at once start every worker the pool will have (Lambda's
    # cold starts); the measured rounds are the steady state, as the floor's are.
    cold50 = await handshakes(url, 50, 1, settle)
    # Eight rounds: the p95 of fewer is set by whichever single round met a burst of other work.
    hs50 = await handshakes(url, 50, 2 if quick else 8, settle)
    figures = await shared_figures(url, rtt, hs1, hs50, seconds)
    figures["hs50_cold_p95_ms"] = percentile(cold50, 0.95)
    if fresh_urls:
        # Each client with its own user's fresh token (no verified-token cache).
        fresh = await timed_connects(fresh_urls, settle)
        figures["hs50_fresh_median_ms"] = statistics.median(fresh)
        figures["hs50_fresh_p95_ms"] = percentile(fresh, 0.95)
    if fresh_urls:
        figures.update(await cpu_per_message(url, pid, 10, seconds))
    figures["idle_1000_kib"] = await idle_memory_tree([url] * 1000, pid)
    return figures


async def handler_alone(cloud: LocalCloud, url: str, count: int) -> dict[str, float]:
    """The echo handler itself, called in this process on a live connection.

    The same `handlers.websocket.handler` the workers run, with the same environment, minus
    the worker and the IPC: what one echo costs before the local cloud adds anything (almost
    all of it is boto3's `post_to_connection`). Its CPU per call bounds the throughput: with
    every core doing nothing but this call, `cores / CPU` messages per second.

    Returns:
        `handler_alone_us` (median wall time) and `handler_alone_cpu_us` (the calling
        thread's CPU time per call: botocore's side only, not the gateway's).
    """
    outputs = cloud.outputs
    os.environ.update(
        AWS_REGION=outputs["region"],
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_ENDPOINT_URL_DYNAMODB=outputs["awsEndpoint"],
        AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI=outputs["managementEndpoint"],
        CONNECTION_TABLE_NAME=outputs["connectionTableName"],
    )
    from wsauth.handlers import websocket

    async with connect(url, max_queue=None) as client:
        await client.send("{}")
        await client.recv()
        user_items = cloud.client("dynamodb").scan(
            TableName=outputs["connectionTableName"], FilterExpression="attribute_exists(userId)"
        )
        connection_id = user_items["Items"][0]["connectionId"]["S"]
        event = {
            "requestContext": {
                "routeKey": "$default",
                "eventType": "MESSAGE",
                "connectionId": connection_id,
                "stage": "prod",
            },
            "body": MESSAGE,
            "isBase64Encoded": False,
        }

        def run() -> tuple[list[float], float]:
            samples = []
            cpu_started = time.thread_time()
            for _ in range(count):
                started = time.perf_counter()
                websocket.handler(event, None)
                samples.append((time.perf_counter() - started) * 1e6)
            return samples, (time.thread_time() - cpu_started) / count * 1e6

        samples, cpu_us = await asyncio.to_thread(run)
    return {"handler_alone_us": statistics.median(samples), "handler_alone_cpu_us": cpu_us}


def measure_local_cloud(quick: bool) -> dict[str, float]:
    started = time.perf_counter()
    with start_local_cloud(["--no-web"]) as cloud:
        ready_s = time.perf_counter() - started
        url, fresh_urls = _urls(cloud)
        first_started = time.perf_counter()
        asyncio.run(_first_echo(url))
        first_echo_ms = (time.perf_counter() - first_started) * 1e3
        figures = asyncio.run(
            measure(url, cloud.process.pid, quick, fresh_urls, table_drained(cloud))
        )
        figures.update(asyncio.run(handler_alone(cloud, url, 300 if quick else 1000)))
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
    print(
        f"| the echo handler alone, in-process (boto3 post), median (µs) | | "
        f"{local['handler_alone_us']:,.1f} | |"
    )
    cpu_per_call = local["handler_alone_cpu_us"]
    ceiling = (os.cpu_count() or 1) * 1e6 / cpu_per_call
    print(f"| the echo handler alone, in-process, CPU per call (µs) | | {cpu_per_call:,.1f} | |")
    print(
        f"| ceiling: {os.cpu_count()} cores doing nothing but that call (msg/s) | | "
        f"{ceiling:,.0f} | {ceiling / floor['msgs_10']:.0%} of floor's 10-client rate |"
    )
    print(f"| start to ready (s), archive cached | | {local['ready_s']:.1f} | |")
    cpu = ", ".join(
        f"{key.removeprefix('cpu_us_')} {value:,.0f}"
        for key, value in sorted(local.items())
        if key.startswith("cpu_us_")
    )
    print(f"| CPU per message with 10 clients (µs, by process) | | {cpu} | |")
    print(f"| first connect + echo (cold starts) (ms) | | {local['first_echo_ms']:,.0f} | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
