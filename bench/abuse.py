"""The local cloud under abusive clients: a normal client's latency, and memory that stays flat.

    python -m bench.abuse [--quick] [--json]

One `wsauth local --no-web` (the project's program) serves everything. Latency: a normal
client connects with a fresh ID token (minted beforehand, not timed), sends one message, gets
the echo and closes; each sample is that whole exchange, and the next starts once its
`$disconnect` has run. The samples are taken unloaded (4 blocks of 10), then for each abuse in
4 alternating pairs of blocks, unloaded and loaded, so the machine's drift falls on both; a
block's samples are spread over at least 10 s, loaded or not. Each abuse is run by its own
process (`bench.abusers`, which describes them), so that the sampling client keeps its own
core and event loop: (1) a flood of masked empty pongs, (2) a text frame with fin=0 then
empty continuations without end, (3) 200 idle TCP connections, (4) 16 slow 14 KB
`@connections` heads and 10 bodiless 4 MiB `@connections` requests.

Every abuser stops by itself at its deadline (or on SIGTERM, which the bench sends when its
block is done) and is killed if it overruns; before the next block the bench waits until the
gateway has let go of what it held (the abuser's connection item gone, or the gateway's open
files back to where they were).

Memory: the RSS of the gateway (the `wsauth local` process itself) and of moto (its
`wsauth.localcloud.aws` child), before and after 10,000 connect/echo/disconnect cycles (20 at
a time, tokens reused) and before and after a 60 MB continuation-frame flood on one connection
(sent until 60 MB or until the server closes it; the gateway's peak while it lasts as well).

`--quick`: blocks of 5 samples over 3 s, 1,000 cycles, a 10 MB flood (a couple of minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections import Counter
from typing import Any

from websockets.asyncio.client import connect

from bench.abusers import KINDS, Abuser
from bench.gateway import MESSAGE, percentile, rss_kib
from bench.localcloud import _is_moto, table_drained
from wsauth.localcloud.testing import (
    CloudUser,
    LocalCloud,
    descendant_pids,
    start_local_cloud,
)

ABUSE_LABELS = {
    "pongs": "(1) flood of masked empty pongs, authenticated",
    "fragments": "(2) text frame fin=0, then empty continuations without end",
    "idle": "(3) 200 TCP connections: nothing / a partial HTTP head, idling",
    "slow": "(4) 16 slow 14 KB `@connections` heads + 10 bodiless 4 MiB POSTs",
}
_SAMPLE_TIMEOUT = 5.0
"""Seconds one connect/echo/close may take before it counts as failed."""
_GIVE_UP_AFTER = 3
"""Consecutive failed samples after which the rest of the block counts as failed untried."""
_CLEANUP_TIMEOUT = 30.0


def _role_rss_kib(cloud: LocalCloud) -> dict[str, int]:
    """RSS of the gateway process and of moto; the Lambda workers together, for reference."""
    root = cloud.process.pid
    figures = {"gateway": rss_kib(root), "moto": 0, "workers": 0}
    for pid in descendant_pids(root):
        try:
            role = "moto" if _is_moto(pid) else "workers"
            figures[role] += rss_kib(pid)
        except (FileNotFoundError, ProcessLookupError, RuntimeError):
            pass  # a worker that exited, or a zombie
    return figures


def _open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _eventually(check: Any, timeout: float) -> float | None:
    """Poll until `check()` holds; the seconds it took, or None if it never did."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            return None
        time.sleep(0.02)
    return time.monotonic() - started


def _gone(cloud: LocalCloud, user: CloudUser) -> bool:
    return not cloud.connections_of(user)


async def _connect_echo_close(url: str) -> float:
    """One normal client's whole exchange, in ms; infinity if it failed or took too long."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(_SAMPLE_TIMEOUT):
            async with connect(url) as client:
                await client.send(MESSAGE)
                await client.recv()
    except Exception:  # a refusal, a reset or the timeout: the client did not get served
        return float("inf")
    return (time.perf_counter() - started) * 1e3


class Sampler:
    """Normal clients, each with a fresh token; waits for each one's `$disconnect`."""

    def __init__(
        self, cloud: LocalCloud, users: list[CloudUser], count: int, size: int, seconds: float
    ) -> None:
        self.cloud = cloud
        self.size = size
        self.seconds = seconds
        self.pending = [
            (user, cloud.websocket_url(cloud.id_token(user)))
            for index in range(count)
            for user in [users[index % len(users)]]
        ]

    def block(self) -> list[float]:
        """`size` samples spread over at least `seconds`, so a block lasts as long loaded as
        unloaded and an abuse runs long enough to reach its steady state."""
        samples: list[float] = []
        failed_in_a_row = 0
        started = time.monotonic()
        for index in range(self.size):
            time.sleep(max(0.0, started + index * self.seconds / self.size - time.monotonic()))
            user, url = self.pending.pop()
            if failed_in_a_row >= _GIVE_UP_AFTER:
                samples.append(float("inf"))
                continue
            samples.append(asyncio.run(_connect_echo_close(url)))
            failed_in_a_row = failed_in_a_row + 1 if samples[-1] == float("inf") else 0
            # Not timed: the next sample starts once this one's `$disconnect` is done.
            _eventually(lambda user=user: _gone(self.cloud, user), _SAMPLE_TIMEOUT)
        return samples


def abuse_latency(
    cloud: LocalCloud, sampler: Sampler, kind: str, abuse_user: CloudUser, blocks: int
) -> dict[str, Any]:
    """Alternate unloaded and loaded blocks of samples for one abuse."""
    gateway = cloud.process.pid
    unloaded: list[float] = []
    loaded: list[float] = []
    reports: list[dict[str, Any]] = []
    cleanup: list[float | None] = []
    files = {"before": _open_files(gateway), "loaded": 0}
    for _ in range(blocks):
        unloaded += sampler.block()
        url = cloud.websocket_url(cloud.id_token(abuse_user))
        try:
            # Its own deadline: the longest the loaded block can take, every sample timing out.
            abuser = Abuser(kind, url, seconds=sampler.seconds + sampler.size * _SAMPLE_TIMEOUT)
        except RuntimeError as error:
            # No abuse, no loaded samples: the block is reported, not measured.
            reports.append({"error": str(error)})
            continue
        try:
            time.sleep(0.5)  # let the abuse reach its pace before the first sample
            files["loaded"] = max(files["loaded"], _open_files(gateway))
            loaded += sampler.block()
        finally:
            reports.append(abuser.stop())
        if kind in ("pongs", "fragments"):
            cleanup.append(_eventually(lambda: _gone(cloud, abuse_user), _CLEANUP_TIMEOUT))
        else:
            cleanup.append(
                _eventually(lambda: _open_files(gateway) <= files["before"] + 2, _CLEANUP_TIMEOUT)
            )
    return {
        "unloaded_ms": unloaded,
        "loaded_ms": loaded,
        "unloaded_p95_ms": percentile(unloaded, 0.95),
        "loaded_p95_ms": percentile(loaded, 0.95),
        "unloaded_failed": sum(s == float("inf") for s in unloaded),
        "loaded_failed": sum(s == float("inf") for s in loaded),
        "gateway_open_files": files,
        "cleanup_s": cleanup,
        "abusers": reports,
    }


async def _cycles(urls: list[str], count: int) -> int:
    """`count` connect/echo/close cycles, one worker per URL (so per user); failures."""
    remaining = count
    failures = 0

    async def worker(url: str) -> None:
        nonlocal remaining, failures
        while remaining > 0:
            remaining -= 1
            try:
                async with asyncio.timeout(30):
                    async with connect(url) as client:
                        await client.send(MESSAGE)
                        await client.recv()
            except Exception:
                failures += 1

    await asyncio.gather(*(worker(url) for url in urls))
    return failures


def _settled_rss(cloud: LocalCloud) -> dict[str, int]:
    """RSS once every `$disconnect` has run and the processes had a moment to free memory."""
    asyncio.run(asyncio.wait_for(table_drained(cloud)(), 60))
    time.sleep(1.0)
    return _role_rss_kib(cloud)


def cycles_memory(cloud: LocalCloud, users: list[CloudUser], count: int) -> dict[str, Any]:
    urls = [cloud.websocket_url(cloud.id_token(user)) for user in users]
    asyncio.run(_cycles(urls, 200))  # every worker the load needs, started and warm
    before = _settled_rss(cloud)
    trace = []
    started = time.perf_counter()
    failures = 0
    step = count // 10
    for done in range(step, count + 1, step):
        failures += asyncio.run(_cycles(urls, step))
        trace.append({"cycles": done, **_role_rss_kib(cloud)})
    seconds = time.perf_counter() - started
    after = _settled_rss(cloud)
    return {
        "cycles": count,
        "concurrency": len(urls),
        "failures": failures,
        "seconds": seconds,
        "before_kib": before,
        "after_kib": after,
        "trace": trace,
    }


def flood_memory(cloud: LocalCloud, abuse_user: CloudUser, max_bytes: int) -> dict[str, Any]:
    before = _settled_rss(cloud)
    url = cloud.websocket_url(cloud.id_token(abuse_user))
    abuser = Abuser("fragments", url, seconds=240, max_bytes=max_bytes, reconnect=False)
    peak = before["gateway"]
    while abuser.process.poll() is None:
        peak = max(peak, rss_kib(cloud.process.pid))
        time.sleep(0.1)
    report = abuser.wait()
    # The gateway may still be reading what the kernel buffered; watch it to the disconnect.
    gone = _eventually(lambda: _gone(cloud, abuse_user), _CLEANUP_TIMEOUT)
    peak = max(peak, rss_kib(cloud.process.pid))
    after = _settled_rss(cloud)
    return {
        "max_bytes": max_bytes,
        "abuser": report,
        "disconnect_s": gone,
        "gateway_peak_kib": peak,
        "before_kib": before,
        "after_kib": after,
    }


def run(quick: bool) -> dict[str, Any]:
    size = 5 if quick else 10
    blocks = 4
    results: dict[str, Any] = {"started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
    with start_local_cloud(["--no-web"]) as cloud:
        users = [cloud.create_user() for _ in range(20)]
        abuse_user = cloud.create_user()
        asyncio.run(_cycles([cloud.websocket_url(cloud.id_token(u)) for u in users], 100))
        count = blocks * size * (1 + 2 * len(KINDS))
        sampler = Sampler(cloud, users[:8], count, size, 3.0 if quick else 10.0)
        baseline = []
        for _ in range(blocks):
            baseline += sampler.block()
        results["baseline_p95_ms"] = percentile(baseline, 0.95)
        results["baseline_ms"] = baseline
        results["latency"] = {
            kind: abuse_latency(cloud, sampler, kind, abuse_user, blocks) for kind in KINDS
        }
        results["cycles"] = cycles_memory(cloud, users, 1_000 if quick else 10_000)
        results["flood"] = flood_memory(cloud, abuse_user, (10 if quick else 60) * 1_000_000)
    return results


def _ms(value: float) -> str:
    return "failed" if value == float("inf") else f"{value:,.1f}"


def _ratio(loaded: float, unloaded: float) -> str:
    if loaded == float("inf"):
        return "∞ (failed)"
    return f"{loaded / unloaded:.2f}×"


def _mib(kib: int) -> str:
    return f"{kib / 1024:,.1f}"


def _abuser_summary(kind: str, figures: dict[str, Any]) -> str:
    """What the abusers did and met, summed over the blocks, and how fast the gateway let go."""
    reports = figures["abusers"]
    waits = figures["cleanup_s"]
    if None in waits:
        let_go = f"; not let go within {_CLEANUP_TIMEOUT:.0f} s ×{waits.count(None)}"
    else:
        let_go = f"; let go in ≤ {max(waits, default=0.0):.1f} s"
    return _abuser_doings(kind, reports) + let_go


def _abuser_doings(kind: str, reports: list[dict[str, Any]]) -> str:
    if kind in ("pongs", "fragments"):
        ended: Counter[str] = Counter()
        for report in reports:
            ended.update(report.get("ended", {}))
            if "error" in report:
                ended[report["error"]] += 1
        sent = sum(report.get("sent_bytes", 0) for report in reports)
        seconds = sum(report.get("seconds", 0.0) for report in reports)
        connections = sum(report.get("connections", 0) for report in reports)
        endings = ", ".join(f"{why} ×{n}" for why, n in ended.most_common())
        return f"{sent / 1e6:,.0f} MB in {seconds:.1f} s over {connections} connections; {endings}"
    answers: Counter[str] = Counter()
    for report in reports:
        answers.update(report.get("answers", {}))
    opened = sum(report.get("opened", 0) for report in reports)
    told = ", ".join(f"{status} ×{n}" for status, n in answers.most_common(3)) or "none"
    return f"{opened} connections opened; answers: {told}"


def print_tables(results: dict[str, Any]) -> None:
    baseline = results["baseline_p95_ms"]
    print(f"Normal client: connect (fresh token) + echo + close, p95 ms; unloaded {_ms(baseline)}")
    print()
    print(
        "| abuse | unloaded p95 (ms) | loaded p95 (ms) | loaded / unloaded "
        "| failed (unloaded / loaded) | what the abuser did |"
    )
    print("|---|---:|---:|---:|---:|---|")
    for kind, figures in results["latency"].items():
        unloaded, loaded = figures["unloaded_p95_ms"], figures["loaded_p95_ms"]
        failed = f"{figures['unloaded_failed']} / {figures['loaded_failed']}"
        print(
            f"| {ABUSE_LABELS[kind]} | {_ms(unloaded)} | {_ms(loaded)} | "
            f"{_ratio(loaded, unloaded)} | {failed} | "
            f"{_abuser_summary(kind, figures)} |"
        )
    print()
    print("| load | gateway RSS before → after (MiB) | Δ | moto RSS before → after (MiB) | Δ |")
    print("|---|---:|---:|---:|---:|")
    cycles, flood = results["cycles"], results["flood"]
    rows = [
        (
            f"{cycles['cycles']:,} connect/echo/disconnect cycles, {cycles['concurrency']} at "
            f"once ({cycles['seconds']:.0f} s, {cycles['failures']} failed)",
            cycles,
        ),
        (
            f"fragment flood: {flood['abuser'].get('sent_bytes', 0) / 1e6:,.1f} MB of "
            f"{flood['max_bytes'] / 1e6:,.0f} MB sent in {flood['abuser'].get('seconds', 0):.1f}"
            f" s, {', '.join(flood['abuser'].get('ended', {})) or '?'}; gateway peak "
            f"{_mib(flood['gateway_peak_kib'])} MiB",
            flood,
        ),
    ]
    for label, figures in rows:
        before, after = figures["before_kib"], figures["after_kib"]
        print(
            f"| {label} | {_mib(before['gateway'])} → {_mib(after['gateway'])} | "
            f"{(after['gateway'] - before['gateway']) / 1024:+,.1f} | "
            f"{_mib(before['moto'])} → {_mib(after['moto'])} | "
            f"{(after['moto'] - before['moto']) / 1024:+,.1f} |"
        )


def _finite(value: Any) -> Any:
    """JSON has no infinity: a failed sample is null."""
    if isinstance(value, float) and value == float("inf"):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print raw figures as JSON")
    args = parser.parse_args()
    started = time.perf_counter()
    results = run(args.quick)
    results["seconds"] = time.perf_counter() - started
    if args.json:
        print(json.dumps(_finite(results), indent=2))
    print_tables(results)
    print(f"\n{results['started_utc']} UTC, {results['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
