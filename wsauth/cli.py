"""`wsauth` entry point: one subcommand per module in `wsauth.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys

# Each module exposes `register(subparsers)`; imported lazily so `wsauth connect` never pays
# for the local cloud's imports (Pulumi, moto).
COMMANDS = ("local", "connect", "notify", "signout", "smoke", "web")


class CommandError(Exception):
    """A failure to report as one readable line (no traceback)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsauth",
        description="Run and use a Cognito-secured WebSocket API, locally or on AWS.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"wsauth.commands.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"wsauth.commands.{name}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except CommandError as error:
        print(f"wsauth {args.command}: {error}", file=sys.stderr)
        return error.exit_code
