"""The abusive clients of `bench.abuse`, each run as its own process.

    python -m bench.abusers    # reads its settings as one JSON line on stdin

The process prints `ready` once it is abusing, and one JSON line, its report, when it ends:
at its deadline, or on SIGTERM. `Abuser` starts one from the bench and stops it.

- `pongs`: an authenticated client (raw socket, real handshake) flooding masked empty pongs.
- `fragments`: an authenticated client sending a text frame with fin=0, then empty
  continuation frames without end. With `reconnect`, when the gateway closes it, it connects
  again after 0.1 s and starts over (one persistent abuser, not a handshake flood).
- `idle`: 200 TCP connections, half sending nothing, half a partial HTTP head, all idling.
- `slow`: 16 senders of a 14 KB `@connections` request head, one byte every 4 ms, plus 10
  unsigned `@connections` requests declaring `Content-Length: 4194304` and no body. A
  connection the gateway answers or closes is opened again after 0.2 s, so the 26 stay.

Only the standard library, so that an abuser starts in a few tens of milliseconds.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["KINDS", "Abuser"]

KINDS = ("pongs", "fragments", "idle", "slow")
_PROJECT = Path(__file__).resolve().parents[1]

_stopping = False


class _Stopped(Exception):
    """SIGTERM in a blocking flood: out of a `sendall` the gateway is not draining."""


def _stop(*_: Any) -> None:
    global _stopping
    _stopping = True


def _stop_now(*_: Any) -> None:
    _stop()
    raise _Stopped


def _frame(opcode: int, fin: bool, payload: bytes = b"") -> bytes:
    """One masked client frame with a payload under 126 bytes."""
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return bytes([(0x80 if fin else 0) | opcode, 0x80 | len(payload)]) + mask + masked


def _open_websocket(url: str) -> socket.socket:
    """A real upgrade on a raw socket; returns it once the gateway answered 101."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise RuntimeError("the gateway closed during the handshake")
        head += chunk
    status_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
    if not status_line.startswith("HTTP/1.1 101"):
        raise RuntimeError(f"handshake refused: {status_line}")
    return sock


@dataclass
class _Flooded:
    sent_bytes: int = 0
    connections: int = 0
    endings: Counter[str] = field(default_factory=Counter)


def _server_close(sock: socket.socket) -> str:
    """What the gateway said as it closed: its close code, if that is still readable."""
    try:
        sock.settimeout(0.5)
        answer = sock.recv(65536)
    except OSError:
        return "server reset TCP"
    if len(answer) >= 4 and answer[0] & 0x0F == 0x8:
        return f"server closed ({int.from_bytes(answer[2:4])})"
    return "server closed TCP"


def _flood_connection(
    sock: socket.socket, first: bytes, chunk: bytes, limit: int, deadline: float, done: _Flooded
) -> str:
    """Send `first`, then `chunk` after `chunk`; returns why it stopped."""
    try:
        sock.sendall(first)
        done.sent_bytes += len(first)
        while True:
            now = time.monotonic()
            if now >= deadline:
                return "deadline"
            if limit and done.sent_bytes >= limit:
                return "byte limit"
            if select.select([sock], [], [], 0)[0]:
                return _server_close(sock)
            sock.settimeout(deadline - now)
            sock.sendall(chunk)
            done.sent_bytes += len(chunk)
    except TimeoutError:
        return "server stopped reading"
    except (BrokenPipeError, ConnectionResetError):
        return _server_close(sock)


def _flood(settings: dict[str, Any], deadline: float) -> dict[str, Any]:
    """Pongs or continuation frames as fast as the socket takes them.

    With `reconnect`, a new connection each time the gateway closes one (after a pause, so
    that this stays one abusive client rather than a handshake flood), until the deadline.
    """
    if settings["kind"] == "pongs":
        first, frame = b"", _frame(0xA, True)
    else:
        first, frame = _frame(0x1, False, b"x"), _frame(0x0, False)
    chunk = frame * 10_000  # 60 KB per send: the kernel copies, this process hardly works
    done = _Flooded()
    started = time.monotonic()
    try:
        while time.monotonic() < deadline:
            try:
                sock = _open_websocket(settings["url"])
            except (OSError, RuntimeError) as error:
                if not done.connections:
                    raise
                reason = str(error) if isinstance(error, RuntimeError) else type(error).__name__
                done.endings[f"reconnect failed: {reason}"] += 1
                time.sleep(0.2)
                continue
            if not done.connections:
                print("ready", flush=True)
            done.connections += 1
            try:
                ended = _flood_connection(sock, first, chunk, settings["max_bytes"], deadline, done)
            finally:
                sock.close()
            done.endings[ended] += 1
            if not settings["reconnect"] or ended in ("deadline", "byte limit"):
                break
            time.sleep(0.1)
    except _Stopped:
        done.endings["stopped"] += 1
    finally:
        signal.signal(signal.SIGTERM, _stop)  # nothing raises from here on
    return {
        "sent_bytes": done.sent_bytes,
        "connections": done.connections,
        "ended": dict(done.endings),
        "seconds": time.monotonic() - started,
    }


@dataclass
class _Held:
    """What the gateway did with connections that never complete a request."""

    opened: int = 0
    connect_errors: int = 0
    answers: Counter[str] = field(default_factory=Counter)


async def _hold(
    host: str, port: int, payload: bytes, byte_interval: float | None, held: _Held
) -> None:
    """Keep one such connection open; when the gateway answers or closes, open another."""
    while not _stopping:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            held.connect_errors += 1
            await asyncio.sleep(0.2)
            continue
        held.opened += 1
        reading: asyncio.Future[bytes] | None = None
        try:
            if byte_interval is None:
                writer.write(payload)
                answer = await reader.read(4096)
            else:
                reading = asyncio.ensure_future(reader.read(4096))
                for index in range(len(payload)):
                    if reading.done():
                        break
                    writer.write(payload[index : index + 1])
                    await asyncio.sleep(byte_interval)
                answer = await reading
            status = answer.split(b"\r\n", 1)[0].decode(errors="replace")
            held.answers[status or "closed without an answer"] += 1
        except OSError:
            held.answers["reset"] += 1
        finally:
            if reading is not None:
                reading.cancel()
            writer.close()
        await asyncio.sleep(0.2)  # a refused request is retried, not hammered


async def _hold_many(settings: dict[str, Any], deadline: float) -> dict[str, Any]:
    parts = urlsplit(settings["url"])
    host, port, stage = parts.hostname, parts.port, parts.path.rstrip("/")
    assert host is not None and port is not None
    netloc = parts.netloc
    jobs: list[tuple[bytes, float | None]] = []
    if settings["kind"] == "idle":
        partial = f"GET {stage}?idToken= HTTP/1.1\r\nHost: {netloc}\r\nUpgrade: websocket\r\n"
        jobs += [(b"", None)] * 100 + [(partial.encode(), None)] * 100
    else:
        start = f"POST {stage}/@connections/AbCdEf0123456= HTTP/1.1\r\nHost: {netloc}\r\n"
        end = "Content-Length: 0\r\n\r\n"
        padding = 14 * 1024 - len(start) - len(end) - len("X-Padding: \r\n")
        slow_head = f"{start}X-Padding: {'a' * padding}\r\n{end}".encode()
        no_body = f"{start}Content-Length: {4 * 1024 * 1024}\r\n\r\n".encode()
        jobs += [(slow_head, 0.004)] * 16 + [(no_body, None)] * 10
    held = _Held()
    tasks = [asyncio.create_task(_hold(host, port, *job, held)) for job in jobs]
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, _stop)
    while held.opened + held.connect_errors < len(jobs) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    print("ready", flush=True)
    while not _stopping and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "opened": held.opened,
        "connect_errors": held.connect_errors,
        "answers": dict(held.answers),
    }


def run_abuser() -> None:
    """An abuser process: settings on stdin, `ready` when abusing, a JSON report at the end."""
    settings = json.loads(sys.stdin.readline())
    deadline = time.monotonic() + settings["seconds"]
    if settings["kind"] in ("pongs", "fragments"):
        signal.signal(signal.SIGTERM, _stop_now)
        report = _flood(settings, deadline)
    else:
        report = asyncio.run(_hold_many(settings, deadline))
    print(json.dumps(report), flush=True)


class Abuser:
    """One abuser process, started from the bench; `stop` ends it and returns its report."""

    def __init__(
        self, kind: str, url: str, seconds: float, max_bytes: int = 0, reconnect: bool = True
    ) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.abusers"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=_PROJECT,
        )
        self.seconds = seconds
        assert self.process.stdin is not None and self.process.stdout is not None
        settings = {
            "kind": kind,
            "url": url,
            "seconds": seconds,
            "max_bytes": max_bytes,
            "reconnect": reconnect,
        }
        self.process.stdin.write(json.dumps(settings) + "\n")
        self.process.stdin.close()
        if not select.select([self.process.stdout], [], [], 20)[0]:
            self.stop()
            raise RuntimeError(f"abuser {kind} not ready in 20 s")
        ready = self.process.stdout.readline().strip()
        if ready != "ready":
            self.stop()
            raise RuntimeError(f"abuser {kind} failed to start ({ready!r})")

    def wait(self) -> dict[str, Any]:
        """Wait for the abuser to end by itself (its deadline, plus a margin)."""
        try:
            self.process.wait(self.seconds + 15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        return self._report()

    def stop(self) -> dict[str, Any]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self._report()

    def _report(self) -> dict[str, Any]:
        self.process.wait()
        assert self.process.stdout is not None
        lines = self.process.stdout.read().strip().splitlines()
        self.process.stdout.close()
        report: dict[str, Any] = {}
        if lines and lines[-1].startswith("{"):
            report = json.loads(lines[-1])
        report["exit"] = self.process.returncode
        return report


if __name__ == "__main__":
    run_abuser()
