"""Cold starts as Lambda sees them: ``python -m bench.coldstart [--runs N]``.

Each handler starts in a fresh interpreter of the Lambda runtime's version (``python3.13`` when
installed, else this one), with ``-S`` (no site-packages: only the archive) and ``-B`` (nothing
written: Lambda's code directory is read-only, and as root here only ``-B`` makes it so), from
the archive ``pulumi up`` uploads, unpacked read-only. Two variants of one archive, alternated
run by run: as built (with the runtime's bytecode) and with every ``.pyc`` removed (the archive
as it was before bytecode was shipped).

* authorizer: import plus its first decision on a valid token against a loopback JWKS, so that
  moving imports into the first call cannot pass for speed;
* websocket function: import (its boto3 clients are created on first use, from the runtime's
  own boto3, which is not in the archive).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from bench.authorizer import Signer, _env, serve_jwks
from pulumi_wsauth.interpreters import find_python
from pulumi_wsauth.packaging import build_lambda_archive

RUNTIME_VERSION = "3.13"

# Runs in the runtime's interpreter, from the unpacked archive; reports on stderr.
_AUTHORIZER_CHILD = """
import json, os, sys, time
started = time.perf_counter()
from handlers.authorizer import handler
imported = time.perf_counter()
query = {"idToken": os.environ["BENCH_TOKEN"]}
answer = handler({"methodArn": "arn:x", "queryStringParameters": query}, None)
decided = time.perf_counter()
assert answer["policyDocument"]["Statement"][0]["Effect"] == "Allow", answer
sys.stderr.write(json.dumps({"in_process_ms": (decided - started) * 1000}) + "\\n")
"""
_WEBSOCKET_CHILD = """
import json, sys, time
started = time.perf_counter()
import handlers.websocket
sys.stderr.write(json.dumps({"in_process_ms": (time.perf_counter() - started) * 1000}) + "\\n")
"""


def _unpack(archive: Path, target: Path, with_bytecode: bool) -> Path:
    with zipfile.ZipFile(archive) as zipped:
        for name in zipped.namelist():
            if with_bytecode or not name.endswith(".pyc"):
                zipped.extract(name, target)
    for path in sorted(target.rglob("*"), reverse=True):
        path.chmod(0o555 if path.is_dir() else 0o444)
    target.chmod(0o555)
    return target


def _run(python: Path, code_dir: Path, child: str, env: dict[str, str]) -> tuple[float, float]:
    """Whole process and in-process milliseconds of one cold start."""
    started = time.perf_counter()
    completed = subprocess.run(
        [
            str(python),
            "-S",
            "-B",
            "-c",
            f"import sys; sys.path.insert(0, {str(code_dir)!r})\n{child}",
        ],
        cwd=code_dir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    )
    process_ms = (time.perf_counter() - started) * 1000
    report = json.loads(completed.stderr.strip().splitlines()[-1])
    return process_ms, report["in_process_ms"]


def measure(runs: int) -> dict[str, Any]:
    """Alternate the two variants of each handler's cold start; medians and minima."""
    found = find_python(RUNTIME_VERSION)
    version = RUNTIME_VERSION if found else f"{sys.version_info.major}.{sys.version_info.minor}"
    python = found.path if found else Path(sys.executable)
    architecture = "arm64" if platform.machine() == "aarch64" else "x86_64"
    archive = build_lambda_archive(architecture, f"python{version}")
    signer = Signer()
    server, jwks_url = serve_jwks(signer.jwk)
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            code_dirs = {
                "with .pyc": _unpack(archive, Path(tmp) / "with", True),
                "without .pyc": _unpack(archive, Path(tmp) / "without", False),
            }
            env = {**os.environ, **_env(jwks_url)}
            env.pop("PYTHONPATH", None)
            order = list(code_dirs)
            for run in range(runs):
                for variant in order if run % 2 == 0 else reversed(order):
                    env["BENCH_TOKEN"] = signer.token()
                    for handler, child in (
                        ("authorizer", _AUTHORIZER_CHILD),
                        ("websocket", _WEBSOCKET_CHILD),
                    ):
                        result = _run(python, code_dirs[variant], child, env)
                        samples.setdefault((handler, variant), []).append(result)
            for path in Path(tmp).rglob("*"):  # writable again, so the folder can go
                path.chmod(0o755)
    finally:
        server.shutdown()
    figures = {
        f"{handler} {variant}": {
            "process_ms": statistics.median(s[0] for s in runs_),
            "in_process_ms": statistics.median(s[1] for s in runs_),
            "in_process_min_ms": min(s[1] for s in runs_),
        }
        for (handler, variant), runs_ in samples.items()
    }
    return {"python": str(python), "version": version, "archive": archive.name, **figures}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(prog="python -m bench.coldstart")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = measure(args.runs)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"python{result['version']} ({result['python']}), {args.runs} runs each, alternated")
    print(f"{'':<28}{'process':>10}{'in process':>12}{'min':>8}")
    for handler, what in (("authorizer", "import + 1st decision"), ("websocket", "import")):
        for variant in ("without .pyc", "with .pyc"):
            figure = result[f"{handler} {variant}"]
            print(
                f"{handler + ' ' + variant:<28}{figure['process_ms']:>8.1f}ms"
                f"{figure['in_process_ms']:>10.1f}ms{figure['in_process_min_ms']:>6.1f}ms"
            )
        ratio = (
            result[f"{handler} with .pyc"]["in_process_ms"]
            / result[f"{handler} without .pyc"]["in_process_ms"]
        )
        print(f"  {handler} ({what}) with .pyc / without: {ratio:.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
