"""`wsauth smoke`: the end-to-end check of a stack, local or deployed, from its outputs.

Each step prints one line (status, name, time in ms, detail) as soon as it ends; a step whose
prerequisite failed is reported as skipped. The exit status is 0 only if every step passed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from wsauth.client import (
    ClientError,
    TokenSource,
    forge_signature,
    handshake_status,
    open_socket,
    send_to_stack_user,
    sign_in,
)
from wsauth.commands._common import (
    add_command,
    add_sign_in_arguments,
    outputs_from,
    read_password,
)

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

    from wsauth.outputs import StackOutputs

__all__ = ["STEPS", "register", "run"]

STEPS = (
    "sign in",
    "connect",
    "echo round trip",
    "refused without a token (401)",
    "refused with a forged token (403)",
    "@connections push",
)

T = TypeVar("T")

_WHERE = {"query": "query string", "protocol": "Sec-WebSocket-Protocol header"}


class StepFailed(Exception):
    """A step's check did not hold; the message says what was seen instead."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `wsauth smoke`."""
    parser = add_command(
        subparsers,
        "smoke",
        summary="check a stack end to end (sign in, connect, echo, refusals, push)",
        description="""
            Check a stack end to end, as its user and as a forger would see it:
              sign in                            Cognito USER_PASSWORD_AUTH
              connect                            the WebSocket handshake with the ID token
              echo round trip                    send a unique message, wait for its echo
              refused without a token (401)      the handshake with no token
              refused with a forged token (403)  the real token, signature altered
              @connections push                  send to the user's connections (found in
                                                 the table's userIdIndex, as `wsauth notify`
                                                 does) and wait for it on the socket
            One line per step with its time in ms; exit status 0 only if every step passed.
            The push needs AWS credentials for a deployed stack (none for the local cloud).
        """,
        examples="""
            pulumi stack output --json --show-secrets > outputs.json
            printf '%s\\n' "$PASSWORD" | wsauth smoke --outputs outputs.json \\
                --username ada@example.com --password-stdin
        """,
    )
    add_sign_in_arguments(
        parser,
        username_help="a confirmed user of the stack's pool",
        password_stdin_help="read the password from standard input's first line instead of "
        "prompting",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long each step may take (default: %(default)s)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run every step; 0 if all passed, else 1."""
    outputs = outputs_from(args)
    password = read_password(args)
    print(f"smoke test of {outputs.websocket_endpoint} as {args.username}", flush=True)
    report = asyncio.run(_smoke(outputs, args.username, password, args.timeout))
    failed = sum(1 for passed in report.values() if not passed)
    if failed:
        print(f"{failed} of {len(STEPS)} steps did not pass", flush=True)
        return 1
    print(f"all {len(STEPS)} steps passed", flush=True)
    return 0


class _Report:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.passed: dict[str, bool] = {}

    async def step(
        self,
        name: str,
        action: Callable[[], Awaitable[T]],
        describe: Callable[[T], str] | None = None,
    ) -> T | None:
        """Run one step under the timeout, print its line; its value, or None if it failed.

        `describe` turns the value into the line's detail (none by default).
        """
        from websockets.exceptions import WebSocketException

        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                value = await action()
        except (StepFailed, ClientError) as error:
            self._line(name, False, started, str(error))
            return None
        except TimeoutError:  # before OSError, its base class
            self._line(name, False, started, f"no answer within {self.timeout:g} s")
            return None
        except (WebSocketException, OSError) as error:
            # The connection broke mid-step (closed by the gateway, network gone).
            self._line(name, False, started, f"{type(error).__name__}: {error}")
            return None
        self._line(name, True, started, describe(value) if describe is not None else "")
        return value

    def skip(self, name: str, because: str) -> None:
        self.passed[name] = False
        print(f"{'skip':<5} {name:<36} {'-':>6}    not run: {because}", flush=True)

    def _line(self, name: str, passed: bool, started: float, detail: str) -> None:
        self.passed[name] = passed
        elapsed_ms = round((time.perf_counter() - started) * 1000)
        status = "ok" if passed else "FAIL"
        line = f"{status:<5} {name:<36} {elapsed_ms:>6} ms"
        print(f"{line}  {detail}" if detail else line, flush=True)


async def _smoke(
    outputs: StackOutputs, username: str, password: str, timeout: float
) -> dict[str, bool]:
    report = _Report(timeout)
    tokens = await report.step(
        "sign in", lambda: asyncio.to_thread(sign_in, outputs, username, password)
    )
    socket: ClientConnection | None = None
    token_source: TokenSource = "query"
    if tokens is None:
        report.skip("connect", "sign in failed")
    else:
        opened = await report.step(
            "connect",
            lambda: open_socket(outputs, tokens.id_token),
            lambda opened: f"token in the {_WHERE[opened[1]]}",
        )
        if opened is not None:
            socket, token_source = opened
    try:
        if socket is None:
            report.skip("echo round trip", "no connection")
        else:
            await report.step("echo round trip", lambda: _echo(socket))
        await report.step(
            "refused without a token (401)", lambda: _expect_refusal(outputs, None, 401)
        )
        if tokens is None:
            report.skip("refused with a forged token (403)", "sign in failed")
        else:
            # Where the real token was accepted, so the refusal is the authorizer's verdict on
            # the signature, not a token looked for elsewhere.
            forged = forge_signature(tokens.id_token)
            await report.step(
                "refused with a forged token (403)",
                lambda: _expect_refusal(outputs, forged, 403, token_source),
            )
        if socket is None or tokens is None:
            report.skip("@connections push", "no connection")
        else:
            user_id = str(tokens.claims.get("sub", ""))
            await report.step("@connections push", lambda: _push(outputs, socket, user_id), str)
    finally:
        if socket is not None:
            await socket.close()
    return report.passed


async def _echo(socket: ClientConnection) -> None:
    message = f"wsauth smoke echo {uuid.uuid4()}"
    await socket.send(message)
    await _receive(socket, lambda text: _json(text) == {"message": message}, "the echo")


async def _expect_refusal(
    outputs: StackOutputs,
    token: str | None,
    expected: int,
    token_source: TokenSource = "query",
) -> None:
    status = await handshake_status(outputs, token, token_source=token_source)
    if status == 101:
        raise StepFailed("the API ACCEPTED the connection")
    if status != expected:
        raise StepFailed(f"expected {expected}, the API answered {status}")


async def _push(outputs: StackOutputs, socket: ClientConnection, user_id: str) -> str:
    if not user_id:
        raise StepFailed("the ID token has no sub claim")
    marker = f"wsauth smoke push {uuid.uuid4()}"
    # A ClientError (no credentials, table unreachable) fails the step with its message.
    delivery = await asyncio.to_thread(send_to_stack_user, outputs, user_id, marker)
    if not delivery.delivered:
        failures = ", ".join(f"{cid}: {why}" for cid, why in delivery.failed.items())
        raise StepFailed(
            f"delivered to none of the user's {delivery.attempted} connections in the table"
            + (f" ({failures})" if failures else "")
        )
    await _receive(socket, lambda text: text == marker, "the pushed message")
    return f"delivered to {len(delivery.delivered)} of {delivery.attempted} connection(s)"


async def _receive(socket: ClientConnection, wanted: Callable[[str], bool], what: str) -> None:
    """Read until a message satisfies `wanted`; others (a push meant for someone) are skipped."""
    from websockets.exceptions import ConnectionClosed

    while True:
        try:
            raw = await socket.recv()
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd is not None else "none"
            raise StepFailed(f"the connection closed (code {code}) before {what}") from None
        text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        if wanted(text):
            return
        received = _json(text)
        if isinstance(received, dict) and received.get("message") == "Internal server error":
            raise StepFailed("the API answered 'Internal server error' (see the handler's logs)")


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None
