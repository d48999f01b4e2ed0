"""`wsauth connect`: sign in and talk to the API from a terminal.

Received messages go to stdout, one per line, exactly as they came; everything else (progress,
errors, the server's session messages in words) goes to stderr, so the output can be piped.

The connection lives only as long as its token (DESIGN.md §7): before the token expires, the
command gets a fresh one from Cognito (the refresh token; the password again if the app client
issues none) and hands it to the server in-band, on the same connection. When the session ends on
the server's side (`sessionExpired`, or `signedOut` after a sign-out everywhere), the command
says so in one line and exits with status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wsauth.cli import CommandError
from wsauth.client import (
    ClientError,
    RefreshRefused,
    Tokens,
    open_socket,
    refresh_tokens,
    sign_in,
    unverified_claims,
)
from wsauth.client_session import (
    REFRESH_RETRY_SECONDS,
    clock_time,
    control_message,
    describe_control,
    is_echoed_refresh,
    refresh_delay,
    refresh_request,
)
from wsauth.commands._common import (
    add_command,
    add_sign_in_arguments,
    outputs_from,
    print_status,
    read_password,
)

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

__all__ = ["converse", "register", "run"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `wsauth connect`."""
    parser = add_command(
        subparsers,
        "connect",
        summary="sign in and talk to the WebSocket API from a terminal",
        description="""
            Sign in to the stack's Cognito user pool, open the API's WebSocket with the ID
            token, print each message received (on stdout, one per line, as it came) and
            send each line you type. Ctrl-D or Ctrl-C closes the connection.

            The connection lives as long as its token: before the token expires, a fresh one
            (from Cognito's refresh token) is sent to the server on the same connection. The
            server's answers are printed on stderr in words ("session refreshed until
            15:04:05"). If the session expires, or the user signs out everywhere (from the web
            page, or an administrator's `wsauth signout`), the command says so and exits with
            status 1.
        """,
        examples="""
            wsauth connect --outputs .wsauth/outputs.json --username ada@example.com
            printf '%s\\nhello\\n' "$PASSWORD" | wsauth connect --outputs outputs.json \\
                --username ada@example.com --password-stdin
        """,
    )
    add_sign_in_arguments(
        parser,
        username_help="the user to sign in as (their email address)",
        password_stdin_help="read the password from the first line of standard input instead "
        "of prompting; the lines after it are sent as messages",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Sign in, connect, relay lines both ways until end of input or Ctrl-C."""
    outputs = outputs_from(args)
    password = read_password(args)
    try:
        tokens = sign_in(outputs, args.username, password)
    except ClientError as error:
        raise CommandError(str(error)) from None

    def renew(current: Tokens) -> Tokens:
        # An app client that issues no refresh token: the password (still in memory) signs in
        # again. A refresh token Cognito refuses (revoked by a sign-out) is never bypassed so.
        if current.refresh_token is None:
            return sign_in(outputs, args.username, password)
        return refresh_tokens(outputs, current)

    async def talk() -> int:
        try:
            socket, token_source = await open_socket(outputs, tokens.id_token)
        except ClientError as error:
            raise CommandError(str(error)) from None
        where = " (token in Sec-WebSocket-Protocol)" if token_source == "protocol" else ""
        print_status(
            f"connected to {outputs.websocket_endpoint} as {args.username}{where}; "
            "each line you type is sent, Ctrl-D quits"
        )
        return await converse(socket, tokens, renew, _stdin_lines())

    try:
        return asyncio.run(talk())
    except KeyboardInterrupt:
        # Ctrl-C is how a person leaves; asyncio.run has already closed the socket.
        print_status("closed")
        return 0


_SESSION_ENDS = frozenset({"sessionExpired", "signedOut"})
"""Control messages after which the server closes the connection, for good."""


@dataclass
class _Session:
    """What the tasks of one connection share about its session."""

    ended: str | None = None
    """Why the server ended the session (its last control message, in words), if it did."""
    refresh_unsupported: bool = False


async def converse(
    socket: ClientConnection,
    tokens: Tokens,
    renew: Callable[[Tokens], Tokens],
    lines: asyncio.Queue[str | None],
) -> int:
    """Relay messages both ways and keep the session alive until the input ends.

    Args:
        socket: The open connection (closed on return).
        tokens: The tokens the connection was opened with (its ID token).
        renew: Fresh tokens from the current ones (blocking; run in a thread).
        lines: The lines to send; None marks the end of input.

    Returns:
        0 once the input ended and the connection was closed.

    Raises:
        CommandError: The server closed the connection, or ended the session (it expired,
            or the user signed out everywhere).
    """
    session = _Session()
    async with socket:
        receiving = asyncio.create_task(_print_messages(socket, session))
        sending = asyncio.create_task(_send_lines(socket, lines))
        refreshing = asyncio.create_task(_keep_session(socket, tokens, renew, session))
        done, _ = await asyncio.wait({receiving, sending}, return_when=asyncio.FIRST_COMPLETED)
        refreshing.cancel()
        if sending in done and sending.result():
            await socket.close()
            receiving.cancel()
            print_status("closed")
            return 0
        sending.cancel()
    if session.ended is not None:
        raise CommandError(session.ended)
    reason = f": {socket.close_reason}" if socket.close_reason else ""
    raise CommandError(f"the server closed the connection (code {socket.close_code}{reason})")


async def _print_messages(socket: ClientConnection, session: _Session) -> None:
    """Data to stdout as it came; control messages to stderr in words. Returns at the end."""
    from websockets.exceptions import ConnectionClosed

    try:
        async for message in socket:
            text = message if isinstance(message, str) else message.decode("utf-8", "replace")
            control = control_message(text)
            if control is None:
                if is_echoed_refresh(text):
                    _refresh_unsupported(session)
                else:
                    print(text, flush=True)
                continue
            if control["type"] in _SESSION_ENDS:
                # The server closes the connection next; the command's last line says why.
                session.ended = describe_control(control)
                return
            print_status(describe_control(control))
    except ConnectionClosed:
        return


def _refresh_unsupported(session: _Session) -> None:
    if not session.refresh_unsupported:
        session.refresh_unsupported = True
        print_status(
            "this stack does not refresh sessions in-band (it echoed the request); "
            "no further refreshes are sent"
        )


async def _keep_session(
    socket: ClientConnection,
    tokens: Tokens,
    renew: Callable[[Tokens], Tokens],
    session: _Session,
) -> None:
    """Before the connection's token expires, send a fresh one; again for each new token."""
    from websockets.exceptions import ConnectionClosed

    loop = asyncio.get_running_loop()
    current, received_at = tokens, loop.time()
    while not session.refresh_unsupported:
        await asyncio.sleep(refresh_delay(current.id_token, elapsed=loop.time() - received_at))
        if session.refresh_unsupported:
            return
        try:
            fresh = await asyncio.to_thread(renew, current)
        except RefreshRefused as error:
            expires = unverified_claims(current.id_token).get("exp")
            ends = f" at {clock_time(expires)}" if isinstance(expires, int | float) else ""
            print_status(f"token refresh failed: {error}; the connection ends{ends}")
            return
        except ClientError as error:
            print_status(f"token refresh failed: {error}; trying again")
            await asyncio.sleep(REFRESH_RETRY_SECONDS)
            continue
        current, received_at = fresh, loop.time()
        try:
            await socket.send(refresh_request(current.id_token))
        except ConnectionClosed:
            return


async def _send_lines(socket: ClientConnection, lines: asyncio.Queue[str | None]) -> bool:
    """Send each line; True at end of input, False if the connection closed first."""
    from websockets.exceptions import ConnectionClosed

    while (line := await lines.get()) is not None:
        if not line:
            continue  # API Gateway has nothing to route in an empty frame
        try:
            await socket.send(line)
        except ConnectionClosed:
            return False
    return True


def _stdin_lines() -> asyncio.Queue[str | None]:
    """Lines of standard input, delivered to the running loop; None marks the end.

    A daemon thread blocked in `os.read` (not `sys.stdin`, whose buffer lock a daemon thread must
    not hold at interpreter exit) lets Ctrl-C end the program at once.
    """
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def deliver(line: str | None) -> bool:
        try:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        except RuntimeError:  # the loop is closed: the command is over
            return False
        return True

    def read() -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(0, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                if pending:
                    deliver(pending.decode("utf-8", "replace").rstrip("\r"))
                deliver(None)
                return
            *complete, pending = (pending + chunk).split(b"\n")
            for raw in complete:
                if not deliver(raw.decode("utf-8", "replace").rstrip("\r")):
                    return

    threading.Thread(target=read, name="wsauth-stdin", daemon=True).start()
    return lines
