"""Benchmarks of the websocket handler's side: import and cold-client cost, fan-out, packaging.

Run: `.venv/bin/python -m bench.handlers` (about a minute; needs PyPI for the packaging part
unless pip's cache has the wheels). Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
IMPORT_RUNS = 21
FAN_OUT_CONNECTIONS = 100
POST_LATENCY_SECONDS = 0.02

# Runs in a fresh interpreter: what a Lambda cold start pays before and during its first event.
_COLD_START = """
import json, os, time
started = time.perf_counter()
import wsauth.handlers.websocket
imported = time.perf_counter()
from wsauth.handlers import connections
connections.dynamodb_client()
client = time.perf_counter()
print(json.dumps({"import": imported - started, "first_client": client - imported}))
"""


def _cold_starts() -> dict[str, list[float]]:
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
    }
    samples: dict[str, list[float]] = {"import": [], "first_client": []}
    for run in range(IMPORT_RUNS + 1):
        completed = subprocess.run(
            [sys.executable, "-c", _COLD_START],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        if run == 0:
            continue  # warms the OS page cache and writes .pyc files, as a deployed image has
        for name, seconds in json.loads(completed.stdout).items():
            samples[name].append(seconds)
    return samples


class _SlowManagementApi(BaseHTTPRequestHandler):
    """Answers every `@connections` POST with 200 after a fixed, network-like latency."""

    protocol_version = "HTTP/1.1"  # keep-alive, as API Gateway's endpoint allows

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(POST_LATENCY_SECONDS)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return


def _fan_out() -> dict[int, float]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    import boto3
    from moto.server import ThreadedMotoServer

    from tests.support import create_connection_table
    from wsauth.handlers import connections, sender

    credentials = {
        "region_name": "us-east-1",
        "aws_access_key_id": "bench",
        "aws_secret_access_key": "bench",
    }
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    management_server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowManagementApi)
    threading.Thread(target=management_server.serve_forever, daemon=True).start()
    try:
        host, port = moto.get_host_and_port()
        dynamodb = boto3.client("dynamodb", endpoint_url=f"http://{host}:{port}", **credentials)
        create_connection_table(dynamodb, "bench")
        for n in range(FAN_OUT_CONNECTIONS):
            connections.put_connection(
                dynamodb,
                "bench",
                connection_id=f"c{n:03}",
                user_id="sub-bench",
                username="bench",
                connected_at_ms=0,
                ttl_seconds=600,
            )
        endpoint = f"http://127.0.0.1:{management_server.server_address[1]}/prod"
        # The sender's own cached client, so its connection pool settings are what is measured.
        management = sender.management_client(endpoint, "us-east-1")
        results = {}
        for bound in (1, 4, 16):
            started = time.perf_counter()
            report = sender.send_to_user(
                "sub-bench",
                {"notice": "bench"},
                table_name="bench",
                endpoint_url=endpoint,
                max_concurrency=bound,
                dynamodb=dynamodb,
                management=management,
            )
            results[bound] = time.perf_counter() - started
            assert len(report.delivered) == FAN_OUT_CONNECTIONS, report
        return results
    finally:
        management_server.shutdown()
        moto.stop()


def _packaging() -> dict[str, float]:
    from pulumi_wsauth.packaging import build_lambda_archive

    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        archive = build_lambda_archive("arm64", "python3.13", cache_dir=Path(cache))
        built = time.perf_counter() - started
        started = time.perf_counter()
        build_lambda_archive("arm64", "python3.13", cache_dir=Path(cache))
        hit = time.perf_counter() - started
        return {"build": built, "hit": hit, "size_mib": archive.stat().st_size / 2**20}


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def main() -> None:
    """Run every measurement once and print the Markdown table."""
    cold = _cold_starts()
    fan_out = _fan_out()
    packaging = _packaging()
    rows = [
        (
            f"import `handlers.websocket` (fresh process, median of {IMPORT_RUNS})",
            _ms(statistics.median(cold["import"])),
        ),
        (
            "first DynamoDB client (imports boto3; paid on the first event), median",
            _ms(statistics.median(cold["first_client"])),
        ),
    ]
    for bound, seconds in fan_out.items():
        rows.append(
            (
                f"`send_to_user` to {FAN_OUT_CONNECTIONS} connections, "
                f"{POST_LATENCY_SECONDS * 1000:.0f} ms per post, max_concurrency={bound}",
                _ms(seconds),
            )
        )
    rows += [
        (
            "Lambda archive arm64/python3.13, empty cache (pip, wheels in pip's cache)",
            _ms(packaging["build"]),
        ),
        ("Lambda archive, cache hit", _ms(packaging["hit"])),
        ("Lambda archive size", f"{packaging['size_mib']:.1f} MiB"),
    ]
    print("| measurement | result |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
