"""Benchmark of the authorizer: ``python -m bench.authorizer [--iterations N] [--profile]``.

Measured in one run, against a JWKS served on loopback:

* the handler's median time for a fresh valid token (a new token each time, so the cache of
  verified tokens does not help; minting is not timed), next to the floor: a raw
  ``cryptography`` RS256 verify of the same token's signing input (signature base64url-decoded
  beforehand, so the floor is the ``verify`` call alone). Target: at most 1.5x. Both go through
  the same timing loop; stdout is Lambda's (every write flushed, to ``/dev/null``), so the
  handler's log line is paid for as on Lambda.
* python-jose's ``jwt.decode`` on the same tokens, for comparison;
* a repeated token (answered from the cache);
* cold start: a new interpreter that imports the handler and makes its first decision
  (JWKS fetch included), and the import time of each handler module.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ROOT = Path(__file__).resolve().parent.parent
POOL_ID = "eu-west-1_BenchPool1"
ISSUER = f"https://cognito-idp.eu-west-1.amazonaws.com/{POOL_ID}"
CLIENT_ID = "benchclient1234567890"
KID = "bench-kid"
METHOD_ARN = "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod/$connect"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Signer:
    """An RSA-2048 pool key and the tokens it signs, shaped like Cognito ID tokens."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = self.key.public_key().public_numbers()
        self.jwk = {
            "alg": "RS256",
            "e": _b64(numbers.e.to_bytes(3, "big")),
            "kid": KID,
            "kty": "RSA",
            "n": _b64(numbers.n.to_bytes(256, "big")),
            "use": "sig",
        }
        self.header = _b64(json.dumps({"kid": KID, "alg": "RS256"}).encode())

    def token(self) -> str:
        now = int(time.time())
        claims = {
            "sub": str(uuid.uuid4()),
            "cognito:groups": ["admins"],
            "email_verified": True,
            "iss": ISSUER,
            "cognito:username": "bench-user",
            "origin_jti": str(uuid.uuid4()),
            "aud": CLIENT_ID,
            "event_id": str(uuid.uuid4()),
            "token_use": "id",
            "auth_time": now,
            "exp": now + 3600,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "email": "bench@example.com",
        }
        signing_input = f"{self.header}.{_b64(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"


def serve_jwks(jwk: dict[str, Any]) -> tuple[ThreadingHTTPServer, str]:
    """Serve ``{"keys": [jwk]}`` on 127.0.0.1 (port 0) from a daemon thread."""
    body = json.dumps({"keys": [jwk]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/{POOL_ID}/.well-known/jwks.json"


def _env(jwks_url: str) -> dict[str, str]:
    return {
        "USER_POOL_ID": POOL_ID,
        "APP_CLIENT_ID": CLIENT_ID,
        "TOKEN_USE": "id",
        "JWKS_URL": jwks_url,
    }


def _event(token: str) -> dict[str, Any]:
    return {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "queryStringParameters": {"idToken": token},
        "requestContext": {"connectionId": "L0SM9cOFvHcCIhw=", "routeKey": "$connect"},
    }


def _timed(function: Any, calls: list[tuple[Any, ...]], check: Any = None) -> list[float]:
    """Microseconds of each ``function(*args)``; ``check`` sees each result, untimed.

    Results are not kept, so the timed loop holds no more live answers than a Lambda
    process does.
    """
    samples = []
    clock = time.perf_counter
    for args in calls:
        started = clock()
        result = function(*args)
        samples.append((clock() - started) * 1e6)
        if check is not None:
            check(result)
    return samples


class LambdaStdout:
    """What Lambda's Python runtime makes of stdout: awslambdaric's ``Unbuffered`` wrapper.

    Every write is followed by a flush, so the handler's log line costs its syscall here as
    it does on Lambda; the stream below is ``/dev/null``.
    """

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, data: str) -> None:
        self.stream.write(data)
        self.stream.flush()

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.stream, attr)


def _allowed(answer: Any) -> None:
    if answer["policyDocument"]["Statement"][0]["Effect"] != "Allow":
        raise AssertionError(answer)


def warm_figures(
    signer: Signer, jwks_url: str, iterations: int, rounds: int = 5
) -> dict[str, float]:
    """Median microseconds of the handler, the floor, jose's decode and a repeated token.

    Tokens are minted beforehand (minting is not timed); each contender then runs over the
    same tokens in blocks, the blocks alternating over ``rounds`` so that drift from other
    load on the machine spreads evenly over all of them.
    """
    from jose import jwt as jose_jwt

    os.environ.update(_env(jwks_url))
    from wsauth.handlers import authorizer

    authorizer.reset()
    public_key = signer.key.public_key()
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()

    def jose_decode(token: str) -> None:
        jose_jwt.decode(token, signer.jwk, algorithms=["RS256"], audience=CLIENT_ID, issuer=ISSUER)

    figures: dict[str, list[float]] = {"handler": [], "floor": [], "jose": [], "repeated": []}
    real_stdout = sys.stdout
    with open(os.devnull, "w") as devnull:
        # The handler logs one line per decision; Lambda flushes each write down a pipe.
        sys.stdout = LambdaStdout(devnull)  # type: ignore[assignment]
        try:
            # The cold decision: loads the JWKS.
            _allowed(authorizer.handler(_event(signer.token()), None))
            repeated = _event(signer.token())
            _allowed(authorizer.handler(repeated, None))
            per_round = max(1, iterations // rounds)
            for round_number in range(rounds):
                tokens = [signer.token() for _ in range(per_round)]
                # The floor is the RSA operation alone, on the same tokens: the signature
                # already base64url-decoded and the signing input split off, outside the timing.
                verify_calls = []
                for token in tokens:
                    signing_input, _, signature_b64 = token.rpartition(".")
                    signature = base64.urlsafe_b64decode(signature_b64 + "==")
                    verify_calls.append((signature, signing_input.encode(), pkcs1, sha256))
                contenders: list[tuple[str, Any, list[tuple[Any, ...]]]] = [
                    ("handler", authorizer.handler, [(_event(t), None) for t in tokens]),
                    ("floor", public_key.verify, verify_calls),
                    ("jose", jose_decode, [(token,) for token in tokens]),
                    ("repeated", authorizer.handler, [(repeated, None)] * per_round),
                ]
                if round_number % 2:
                    contenders.reverse()
                for name, function, calls in contenders:
                    check = _allowed if function is authorizer.handler else None
                    figures[name] += _timed(function, calls, check)
        finally:
            sys.stdout = real_stdout
    return {name: statistics.median(samples) for name, samples in figures.items()}


_COLD_CHILD = """
import json, os, sys, time
started = time.perf_counter()
from wsauth.handlers.authorizer import handler
imported = time.perf_counter()
query = {"idToken": os.environ["BENCH_TOKEN"]}
answer = handler({"methodArn": "arn:x", "queryStringParameters": query}, None)
decided = time.perf_counter()
sys.stderr.write(json.dumps({
    "effect": answer["policyDocument"]["Statement"][0]["Effect"],
    "import_ms": (imported - started) * 1000,
    "first_decision_ms": (decided - imported) * 1000,
    "boto3": "boto3" in sys.modules,
}) + "\\n")
"""


def cold_start(signer: Signer, jwks_url: str, runs: int) -> dict[str, Any]:
    """New interpreter -> first decision, median over ``runs``, next to a bare interpreter."""
    env = {**os.environ, **_env(jwks_url), "PYTHONDONTWRITEBYTECODE": "1"}
    total_ms: list[float] = []
    import_ms: list[float] = []
    decision_ms: list[float] = []
    bare_ms: list[float] = []
    boto3_loaded = False
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True, cwd=ROOT)
        bare_ms.append((time.perf_counter() - started) * 1000)

        env["BENCH_TOKEN"] = signer.token()
        started = time.perf_counter()
        child = subprocess.run(
            [sys.executable, "-c", _COLD_CHILD],
            check=True,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        total_ms.append((time.perf_counter() - started) * 1000)
        report = json.loads(child.stderr.strip().splitlines()[-1])
        assert report["effect"] == "Allow", report
        import_ms.append(report["import_ms"])
        decision_ms.append(report["first_decision_ms"])
        boto3_loaded = boto3_loaded or report["boto3"]
    return {
        "process_ms": statistics.median(total_ms),
        "process_min_ms": min(total_ms),
        "bare_ms": statistics.median(bare_ms),
        "bare_min_ms": min(bare_ms),
        "import_ms": statistics.median(import_ms),
        "import_min_ms": min(import_ms),
        "first_decision_ms": statistics.median(decision_ms),
        "first_decision_min_ms": min(decision_ms),
        "boto3": boto3_loaded,
    }


def import_time_ms(module: str, runs: int) -> tuple[float, float] | None:
    """Median and minimum cumulative import time of ``module`` (``-X importtime``), in ms."""
    if not (ROOT / (module.replace(".", "/") + ".py")).exists():
        return None
    samples = []
    for _ in range(runs):
        child = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            check=True,
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        for line in child.stderr.splitlines():
            fields = [f.strip() for f in line.split("|")]
            if len(fields) == 3 and fields[2] == module:
                samples.append(int(fields[1]) / 1000)
    return (statistics.median(samples), min(samples)) if samples else None


def import_time_as_packaged_ms(runs: int) -> tuple[float, float] | None:
    """Median and minimum import time of the authorizer with no bytecode for the archive, in ms.

    The Lambda archive carries no ``.pyc`` (they are interpreter-specific) and ``/var/task`` is
    read-only, so each cold start compiles ``handlers``, python-jose and cryptography's Python
    modules; the standard library comes with bytecode. This reproduces that layout (orjson and
    pybase64 are mostly compiled code, copied along so the archive's layout is complete).
    """
    import shutil
    import tempfile

    import cryptography
    import jose
    import orjson
    import pybase64

    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    samples = []
    with tempfile.TemporaryDirectory() as tmp:
        for package in (jose, cryptography, orjson, pybase64):
            source = Path(str(package.__file__)).parent
            shutil.copytree(source, Path(tmp) / source.name, ignore=skip)
        shutil.copytree(ROOT / "handlers", Path(tmp) / "handlers", ignore=skip)
        # The copies must win over the virtualenv's, or this measures the wrong thing.
        check = f"import jose; assert jose.__file__.startswith({tmp!r})"
        for _ in range(runs):
            child = subprocess.run(
                [sys.executable, "-B", "-X", "importtime", "-c", "import handlers.authorizer"],
                check=True,
                cwd=tmp,
                capture_output=True,
                text=True,
            )
            subprocess.run([sys.executable, "-B", "-c", check], check=True, cwd=tmp)
            for line in child.stderr.splitlines():
                fields = [f.strip() for f in line.split("|")]
                if len(fields) == 3 and fields[2] == "handlers.authorizer":
                    samples.append(int(fields[1]) / 1000)
    return (statistics.median(samples), min(samples)) if samples else None


def profile(signer: Signer, iterations: int) -> None:
    """Print where the handler's time goes for fresh tokens: layer by layer, then cProfile."""
    import cProfile
    import pstats
    from collections import OrderedDict

    from wsauth.handlers import authorizer, cognito_jwt
    from wsauth.handlers.cognito_jwt import b64url_decode

    verifier = authorizer._authorizer.verifier if authorizer._authorizer else None
    if verifier is None:
        raise RuntimeError("run warm_figures first: it performs the cold start")
    public_key = signer.key.public_key()
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
    original_log = authorizer._log
    layers: dict[str, list[float]] = {}
    now = time.time()

    def bare_minimum(token: str) -> dict[str, Any]:
        # What any verifier must do: split, decode two parts, parse the claims, verify.
        raw = token.encode("ascii")
        signing_input, _, signature = raw.rpartition(b".")
        payload = signing_input.partition(b".")[2]
        claims = cognito_jwt._fast_loads(b64url_decode(payload))
        public_key.verify(b64url_decode(signature), signing_input, pkcs1, sha256)
        return claims  # type: ignore[no-any-return]

    seen: OrderedDict[str, str] = OrderedDict((str(i), "") for i in range(1024))
    json_str = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]

    def straight_line(event: dict[str, Any], context: Any) -> dict[str, Any]:
        # The handler's unavoidable calls with none of its checks or branches: clocks, the
        # cache look-up and insert, decode, parse, verify, the log line and the answer.
        started = time.perf_counter()
        token = event["queryStringParameters"]["idToken"]
        time.time()
        key = token[-64:]
        seen.get(key)
        claims = bare_minimum(token)
        seen[key] = token
        seen.popitem(last=False)
        sub = claims["sub"]
        sys.stdout.write(
            f'{{"logger":"authorizer","outcome":"allow","reason":"ok","sub":{json_str(sub)},'
            f'"connectionId":{json_str(event["requestContext"]["connectionId"])},'
            f'"cached":false,"ms":{(time.perf_counter() - started) * 1000:.3f}}}\n'
        )
        return {
            "principalId": sub,
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": METHOD_ARN}
                ],
            },
            "context": {"userId": sub, "username": "", "tokenUse": "id", "groups": ""},
        }

    def fresh_events(count: int) -> list[tuple[Any, ...]]:
        return [(_event(signer.token()), None) for _ in range(count)]

    real_stdout = sys.stdout
    with open(os.devnull, "w") as devnull:
        sys.stdout = LambdaStdout(devnull)  # type: ignore[assignment]
        try:
            # Each layer peels one thing off the handler; the differences are its cost.
            for _ in range(3):
                count = max(1, iterations // 3)
                tokens = [signer.token() for _ in range(count)]
                payloads = [t.split(".")[1].encode() for t in tokens]
                signatures = [t.split(".")[2].encode() for t in tokens]
                payload_raws = [b64url_decode(p) for p in payloads]
                runs: list[tuple[str, Any, list[tuple[Any, ...]]]] = [
                    ("handler", authorizer.handler, [(_event(t), None) for t in tokens]),
                    ("handler without the log line", authorizer.handler, fresh_events(count)),
                    (
                        "verifier.verify_cached (cache miss)",
                        verifier.verify_cached,
                        [(signer.token(),) for _ in tokens],
                    ),
                    (
                        "straight line: same calls, no checks",
                        straight_line,
                        fresh_events(count),
                    ),
                    ("decode + parse + verify, no checks", bare_minimum, [(t,) for t in tokens]),
                    (
                        "floor",
                        public_key.verify,
                        [
                            (b64url_decode(sig), t.rpartition(".")[0].encode(), pkcs1, sha256)
                            for sig, t in zip(signatures, tokens, strict=True)
                        ],
                    ),
                    ("  base64url of the payload", b64url_decode, [(p,) for p in payloads]),
                    ("  base64url of the signature", b64url_decode, [(s,) for s in signatures]),
                    (
                        "  JSON of the payload (orjson)",
                        cognito_jwt._fast_loads,
                        [(raw,) for raw in payload_raws],
                    ),
                    (
                        "  claim checks",
                        verifier._check_claims,
                        [(json.loads(raw), now, KID) for raw in payload_raws],
                    ),
                ]
                for name, function, calls in runs:
                    if name == "handler without the log line":
                        authorizer._log = lambda *args: None
                    try:
                        layers.setdefault(name, []).extend(_timed(function, calls))
                    finally:
                        authorizer._log = original_log
            events = [_event(signer.token()) for _ in range(iterations)]
            profiler = cProfile.Profile()
            profiler.enable()
            for event in events:
                authorizer.handler(event, None)
            profiler.disable()
        finally:
            sys.stdout = real_stdout
    floor = statistics.median(layers["floor"])
    print("layer                                      median     over floor")
    for name, samples in layers.items():
        median = statistics.median(samples)
        above = "" if name.startswith(" ") else f"{median - floor:+6.1f} µs"
        print(f"{name:<40} {median:7.1f} µs  {above}")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(prog="python -m bench.authorizer")
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--cold-runs", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="cProfile the fresh-token path")
    args = parser.parse_args(argv)

    signer = Signer()
    server, jwks_url = serve_jwks(signer.jwk)
    try:
        warm = warm_figures(signer, jwks_url, args.iterations)
        cold = cold_start(signer, jwks_url, args.cold_runs)
        imports = {
            name: import_time_ms(name, args.cold_runs)
            for name in ("handlers.authorizer", "handlers.websocket")
        }
        packaged_ms = import_time_as_packaged_ms(args.cold_runs)
        if args.profile:
            profile(signer, args.iterations)
    finally:
        server.shutdown()

    floor = warm["floor"]
    rows = [
        ("floor: cryptography RS256 verify", f"{floor:.1f} µs", "1.00x"),
        ("handler, fresh token", f"{warm['handler']:.1f} µs", f"{warm['handler'] / floor:.2f}x"),
        ("python-jose jwt.decode", f"{warm['jose']:.1f} µs", f"{warm['jose'] / floor:.2f}x"),
        (
            "handler, repeated token (cache)",
            f"{warm['repeated']:.1f} µs",
            f"{warm['repeated'] / floor:.2f}x",
        ),
        (
            "cold start: new process -> first decision",
            f"{cold['process_ms']:.1f} ms",
            f"min {cold['process_min_ms']:.0f}",
        ),
        (
            "  bare interpreter (python -c pass)",
            f"{cold['bare_ms']:.1f} ms",
            f"min {cold['bare_min_ms']:.0f}",
        ),
        (
            "  import handlers.authorizer (in process)",
            f"{cold['import_ms']:.1f} ms",
            f"min {cold['import_min_ms']:.0f}",
        ),
        (
            "  first decision incl. JWKS fetch",
            f"{cold['first_decision_ms']:.1f} ms",
            f"min {cold['first_decision_min_ms']:.0f}",
        ),
    ]
    for name, times in imports.items():
        shown = "absent" if times is None else f"{times[0]:.1f} ms"
        least = "" if times is None else f"min {times[1]:.0f}"
        rows.append((f"import {name} (-X importtime)", shown, least))
    if packaged_ms is not None:
        rows.append(
            (
                "import handlers.authorizer, archive without .pyc",
                f"{packaged_ms[0]:.1f} ms",
                f"min {packaged_ms[1]:.0f}",
            )
        )
    rows.append(("boto3 imported by the authorizer", "yes" if cold["boto3"] else "no", ""))

    print(f"python {sys.version.split()[0]}, {args.iterations} iterations, medians")
    width = max(len(r[0]) for r in rows)
    for label, value, ratio in rows:
        print(f"{label:<{width}}  {value:>10}  {ratio:>6}")
    verdict = "met" if warm["handler"] <= 1.5 * floor else "MISSED"
    print(f"target handler <= 1.5x floor: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
