"""`wsauth connect`: sign in and talk to the API from a terminal.

Received messages go to stdout, one per line, exactly as they came; everything else (progress,
errors) goes to stderr, so the output can be piped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import threading
from typing import TYPE_CHECKING

from wsauth.cli import CommandError
from wsauth.client import ClientError, open_socket, sign_in
from wsauth.commands._common import (
    add_command,
    add_sign_in_arguments,
    outputs_from,
    print_status,
    read_password,
)

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

__all__ = ["register", "run"]


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
        return await _relay(socket)

    try:
        return asyncio.run(talk())
    except KeyboardInterrupt:
        # Ctrl-C is how a person leaves; asyncio.run has already closed the socket.
        print_status("closed")
        return 0


async def _relay(socket: ClientConnection) -> int:
    async with socket:
        receiving = asyncio.create_task(_print_messages(socket))
        sending = asyncio.create_task(_send_lines(socket, _stdin_lines()))
        done, _ = await asyncio.wait({receiving, sending}, return_when=asyncio.FIRST_COMPLETED)
        if sending in done and sending.result():
            await socket.close()
            receiving.cancel()
            print_status("closed")
            return 0
        sending.cancel()
    reason = f": {socket.close_reason}" if socket.close_reason else ""
    raise CommandError(f"the server closed the connection (code {socket.close_code}{reason})")


async def _print_messages(socket: ClientConnection) -> None:
    from websockets.exceptions import ConnectionClosed

    try:
        async for message in socket:
            text = message if isinstance(message, str) else message.decode("utf-8", "replace")
            print(text, flush=True)
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
