"""`wsauth local`: run the Pulumi program's whole stack on this machine (no AWS account)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the `local` subcommand."""
    parser = subparsers.add_parser(
        "local",
        help="run the stack locally: Cognito and DynamoDB (moto), Lambda workers, the gateway",
        description=(
            "Run the Pulumi program (__main__.py) under Pulumi's mock runtime with a 'local' "
            "stack and realize what it declares: user pool, client and table in an embedded "
            "moto server, each Lambda function in worker processes, the WebSocket API in the "
            "gateway emulator, each EventBridge rate() schedule on a timer. Prints the outputs "
            "and stops on Ctrl-C or SIGTERM."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=8080,
        help="gateway port (8080); the web page uses PORT+1, the AWS endpoint PORT+2, a "
        "program's further APIs PORT+3, PORT+4, ...; 0 picks free ports for all",
    )
    parser.add_argument(
        "--outputs", type=Path, metavar="FILE", help="write the outputs here as JSON once ready"
    )
    parser.add_argument(
        "--program",
        type=Path,
        default=Path.cwd(),
        metavar="DIR",
        help="the Pulumi project (where Pulumi.yaml is; default: the current directory)",
    )
    parser.add_argument("--no-web", action="store_true", help="do not serve the demo web page")
    parser.add_argument(
        "--max-workers",
        type=int,
        metavar="N",
        help="worker processes (concurrent executions) per function (twice the CPUs, 2 to 10)",
    )
    parser.add_argument(
        "--sweep-interval",
        type=_positive_seconds,
        metavar="SECONDS",
        help="run every rate() schedule (the session sweeper's) this often instead of as "
        "declared, e.g. 0.5 in tests",
    )
    limits = parser.add_argument_group(
        "limits", "API Gateway's quotas; the defaults are AWS's, tests shorten them"
    )
    limits.add_argument(
        "--idle-timeout", type=float, metavar="SECONDS", help="close idle connections (600)"
    )
    limits.add_argument(
        "--max-connection-seconds",
        type=float,
        metavar="SECONDS",
        help="close every connection after this long (7200)",
    )
    limits.add_argument(
        "--integration-timeout",
        type=float,
        metavar="SECONDS",
        help="give up on a route's function after this long (29)",
    )
    limits.add_argument(
        "--max-message-bytes", type=int, metavar="BYTES", help="largest message (131072)"
    )
    limits.add_argument(
        "--max-frame-bytes", type=int, metavar="BYTES", help="largest frame (32768)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs")
    parser.set_defaults(run=run)


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, not {text!r}")
    return seconds


def run(args: argparse.Namespace) -> int:
    """Run the local cloud until interrupted."""
    from wsauth.cli import CommandError
    from wsauth.localcloud.runner import LocalCloudError, LocalOptions, run_local
    from wsauth.localcloud.spec import Limits

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    overrides = {
        "idle_timeout_seconds": args.idle_timeout,
        "max_connection_seconds": args.max_connection_seconds,
        "integration_timeout_seconds": args.integration_timeout,
        "max_message_bytes": args.max_message_bytes,
        "max_frame_bytes": args.max_frame_bytes,
    }
    limits = Limits(**{key: value for key, value in overrides.items() if value is not None})
    options = LocalOptions(
        program_dir=args.program,
        host=args.host,
        port=args.port,
        outputs_file=args.outputs,
        limits=limits,
        max_workers=args.max_workers,
        web_page=not args.no_web,
        sweep_interval_seconds=args.sweep_interval,
    )
    try:
        return run_local(options)
    except LocalCloudError as error:
        raise CommandError(str(error)) from None
