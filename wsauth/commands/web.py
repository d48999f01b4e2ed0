"""`wsauth web`: serve the demo page for any stack, deployed ones included."""

from __future__ import annotations

import argparse
import signal
import threading

from wsauth.cli import CommandError
from wsauth.commands._common import add_command, outputs_from, print_status

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `wsauth web`."""
    parser = add_command(
        subparsers,
        "web",
        summary="serve the demo web page for a stack",
        description="""
            Serve the demo web page (sign up, sign in, send and receive messages) for a
            stack, configured from its outputs. The browser talks to the stack's Cognito and
            WebSocket API directly; this server only hands out the page and its settings, and
            holds no secret. Prints the page's URL; Ctrl-C stops it.
        """,
        examples="""
            pulumi stack output --json > outputs.json && wsauth web --outputs outputs.json
            wsauth web --outputs .wsauth/outputs.json --port 0
        """,
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8000,
        help="port to listen on; 0 picks a free one (default: %(default)s)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C."""
    from wsauth.webpage import serve

    outputs = outputs_from(args)
    try:
        server = serve(outputs.as_mapping(), host=args.host, port=args.port)
    except OSError as error:
        raise CommandError(
            f"cannot listen on {args.host}:{args.port} ({error.strerror}); try another --port"
        ) from None
    print(server.url, flush=True)
    print_status(f"serving the page for {outputs.websocket_endpoint}; Ctrl-C stops")
    # SIGTERM (a service manager, `kill`) stops as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print_status("stopped")
    finally:
        server.close()
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
