"""Gateway overhead against the floor, a bare `websockets` echo server.

    python -m bench.gateway [--quick]

Each server runs in its own process (one core each on this 2-core machine); the clients run
here, the same `websockets` client for both. The gateway's functions are in-process fakes:
an authorizer that allows, a `$connect` that answers 200, and an echo that posts the body
straight back through `POST @connections` over kept-alive HTTP connections, as the real
handler does with boto3. That isolates what the gateway itself costs; the full system with
Lambda workers is benchmarked by the realizer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from websockets.asyncio.client import connect

Settle = Callable[[], Awaitable[None]]
"""Waits until the server has finished the work a round's closes started."""

MESSAGE = '{"action":"sendmessage","data":"hello from the benchmark"}'


def signature_headers() -> str:
    """A SigV4 header pair for a key the gateway has no secret for: it checks the form, scope
    and date (what needs no secret) and takes the signature on trust."""
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return (
        f"X-Amz-Date: {amz_date}\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIDBENCH/"
        f"{amz_date[:8]}/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, "
        "Signature=0000\r\n"
    )


# Servers (run in a child process).


class EchoInvoker:
    """Allows every connect and echoes every message through the management API."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def invoke(self, function_name: str, event: dict[str, Any]) -> Any:
        if function_name == "auth":
            return {
                "principalId": "bench",
                "policyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Action": "execute-api:Invoke",
                            "Effect": "Allow",
                            "Resource": event["methodArn"],
                        }
                    ],
                },
                "context": {"userId": "bench"},
            }
        context = event["requestContext"]
        if context["eventType"] == "MESSAGE":
            await self._post(context["connectionId"], event["body"].encode())
        return {"statusCode": 200}

    async def _post(self, connection_id: str, body: bytes) -> None:
        if self._idle:
            reader, writer = self._idle.pop()
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = (
            f"POST /prod/@connections/{quote(connection_id, safe='')} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{self.port}\r\n{signature_headers()}"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        response_head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in response_head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        if length:
            await reader.readexactly(length)
        if not response_head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(response_head.decode())
        self._idle.append((reader, writer))


async def serve_gateway(ready: Any) -> None:
    from wsauth.localcloud.gateway import Gateway
    from wsauth.localcloud.spec import ApiSpec, AuthorizerSpec, RouteSpec

    routes = {key: RouteSpec(key, "ws") for key in ("$connect", "$disconnect", "$default")}
    api = ApiSpec(
        api_id="bench",
        name="bench",
        stage="prod",
        route_selection_expression="$request.body.action",
        routes=routes,
        connect_authorizer=AuthorizerSpec("auth", "auth", ("route.request.querystring.idToken",)),
    )
    invoker = EchoInvoker(0)
    gateway = Gateway(api, invoker, region="us-east-1", port=0)
    await gateway.start()
    invoker.port = gateway.port
    ready(gateway.websocket_url() + "?idToken=bench")
    await asyncio.Event().wait()


async def serve_floor(ready: Any) -> None:
    from websockets.asyncio.server import ServerConnection, serve

    async def echo(connection: ServerConnection) -> None:
        async for message in connection:
            await connection.send(message)

    async with serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        ready(f"ws://127.0.0.1:{port}/prod")
        await asyncio.Event().wait()


def serve(kind: str, profile: str | None) -> None:
    def ready(url: str) -> None:
        print(url, flush=True)

    coroutine = serve_gateway(ready) if kind == "gateway" else serve_floor(ready)
    if profile:
        import cProfile
        import signal

        profiler = cProfile.Profile()

        def stop(*_: Any) -> None:
            profiler.disable()
            profiler.dump_stats(profile)
            os._exit(0)

        signal.signal(signal.SIGTERM, stop)
        profiler.enable()
    asyncio.run(coroutine)


# Clients (this process).


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def round_trips(url: str, count: int) -> list[float]:
    async with connect(url) as client:
        for _ in range(200):
            await client.send(MESSAGE)
            await client.recv()
        samples = []
        for _ in range(count):
            started = time.perf_counter()
            await client.send(MESSAGE)
            await client.recv()
            samples.append((time.perf_counter() - started) * 1e6)
    return samples


async def throughput(url: str, clients: int, seconds: float) -> float:
    done = 0
    connections = [await connect(url) for _ in range(clients)]
    stop_at = 0.0

    async def talk(client: Any) -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            await client.send(MESSAGE)
            await client.recv()
            done += 1

    stop_at = time.perf_counter() + 0.5  # warm-up
    await asyncio.gather(*(talk(c) for c in connections))
    done = 0
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(*(talk(c) for c in connections))
    elapsed = time.perf_counter() - started
    for client in connections:
        await client.close()
    return done / elapsed


async def timed_connects(urls: list[str], settle: Settle | None = None) -> list[float]:
    """Open one connection per URL, all at once; return each handshake's ms.

    Only the handshakes are timed (the authorizer and `$connect`): every connection stays
    open until all are done, then all close, and `settle` waits for the server to finish
    what the closes started (`$disconnect`) so that it does not run into the next
    measurement. No fixed pause: an idle machine wakes up slower, which would penalize
    whichever server was measured after one.
    """

    async def one(url: str) -> tuple[float, Any]:
        started = time.perf_counter()
        client = await connect(url)
        return (time.perf_counter() - started) * 1e3, client

    opened = await asyncio.gather(*(one(url) for url in urls))
    await asyncio.gather(*(client.close() for _, client in opened))
    if settle is not None:
        await settle()
    return [elapsed for elapsed, _ in opened]


async def handshakes(
    url: str, clients: int, rounds: int, settle: Settle | None = None
) -> list[float]:
    samples: list[float] = []
    for _ in range(rounds):
        samples += await timed_connects([url] * clients, settle)
    return samples


async def idle_memory(url: str, pid: int, clients: int) -> int:
    before = rss_kib(pid)
    connections = []
    for start in range(0, clients, 100):
        connections += await asyncio.gather(
            *(connect(url) for _ in range(min(100, clients - start)))
        )
    await asyncio.sleep(0.5)  # let the server settle before reading its RSS
    after = rss_kib(pid)
    await asyncio.gather(*(c.close() for c in connections))
    return after - before


async def measure(url: str, pid: int, quick: bool) -> dict[str, float]:
    rtt = await round_trips(url, 500 if quick else 3000)
    seconds = 1.0 if quick else 3.0
    hs1 = await handshakes(url, 1, 20 if quick else 100)
    hs50 = await handshakes(url, 50, 2 if quick else 6)
    figures = await shared_figures(url, rtt, hs1, hs50, seconds)
    figures["idle_1000_kib"] = await idle_memory(url, pid, 1000)
    return figures


async def shared_figures(
    url: str, rtt: list[float], hs1: list[float], hs50: list[float], seconds: float
) -> dict[str, float]:
    """The figures both benches report (ROWS but memory): from the samples, plus throughput
    with 10 and 50 clients for `seconds` each."""
    return {
        "rtt_median_us": statistics.median(rtt),
        "rtt_p95_us": percentile(rtt, 0.95),
        "msgs_10": await throughput(url, 10, seconds),
        "msgs_50": await throughput(url, 50, seconds),
        "hs1_median_ms": statistics.median(hs1),
        "hs50_median_ms": statistics.median(hs50),
        "hs50_p95_ms": percentile(hs50, 0.95),
    }


def run_server(kind: str, profile: str | None = None) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "bench.gateway", "--serve", kind]
    if profile:
        command += ["--profile", profile]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url:
        process.kill()
        raise RuntimeError(f"{kind} server did not start")
    return process, url


# The figures both benchmarks report (bench.localcloud reuses them): label, key, how to compare.
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
    parser.add_argument("--serve", choices=["floor", "gateway"], help=argparse.SUPPRESS)
    parser.add_argument("--profile", help="cProfile the gateway server into this file")
    parser.add_argument("--json", action="store_true", help="print raw figures as JSON")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="floor/gateway rounds, alternated; each figure is the median over rounds "
        "(the machine is shared, so one round can catch another process's burst)",
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.profile)
        return 0
    rounds: dict[str, list[dict[str, float]]] = {"floor": [], "gateway": []}
    for _ in range(args.rounds):
        for kind in ("floor", "gateway"):
            process, url = run_server(kind, args.profile if kind == "gateway" else None)
            try:
                rounds[kind].append(asyncio.run(measure(url, process.pid, args.quick)))
            finally:
                process.terminate()
                process.wait()
    results = {
        kind: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        for kind, runs in rounds.items()
    }
    if args.json:
        print(json.dumps(rounds, indent=2))
    floor, gateway = results["floor"], results["gateway"]
    print("| measure | floor (bare websockets) | gateway | gateway vs floor |")
    print("|---|---:|---:|---:|")
    for label, key, kind in ROWS:
        if kind == "share":
            relation = f"{gateway[key] / floor[key]:.0%} of floor"
        else:
            relation = f"{gateway[key] / floor[key]:.1f}×"
        print(f"| {label} | {floor[key]:,.1f} | {gateway[key]:,.1f} | {relation} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
