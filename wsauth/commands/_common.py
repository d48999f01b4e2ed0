"""Arguments and reading shared by the client commands (connect, notify, signout, smoke, web)."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap

from wsauth.cli import CommandError
from wsauth.outputs import OutputsError, StackOutputs, load_outputs

__all__ = [
    "add_command",
    "add_outputs_argument",
    "add_sign_in_arguments",
    "outputs_from",
    "print_status",
    "read_password",
    "read_stdin_line",
]


def add_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    *,
    summary: str,
    description: str,
    examples: str,
) -> argparse.ArgumentParser:
    """Add a client command whose help keeps its paragraphs and examples as written.

    Args:
        subparsers: `wsauth`'s subcommands.
        name: The command's name.
        summary: One line for `wsauth --help`.
        description: Paragraphs, already wrapped (dedented here).
        examples: Example invocations, one per line (dedented here).

    Returns:
        The command's parser, with `--outputs` added.
    """
    parser = subparsers.add_parser(
        name,
        help=summary,
        description=textwrap.dedent(description).strip(),
        epilog="examples:\n" + textwrap.indent(textwrap.dedent(examples).strip(), "  "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_outputs_argument(parser)
    return parser


def add_outputs_argument(parser: argparse.ArgumentParser) -> None:
    """Add the `--outputs FILE` every client command takes."""
    parser.add_argument(
        "--outputs",
        required=True,
        metavar="FILE",
        help="the stack's outputs: the file `wsauth local --outputs FILE` writes, or "
        "`pulumi stack output --json > FILE` for a deployed stack",
    )


def add_sign_in_arguments(
    parser: argparse.ArgumentParser, *, username_help: str, password_stdin_help: str
) -> None:
    """Add `--username` and `--password-stdin`, the arguments `read_password` reads.

    Args:
        parser: A command that signs in.
        username_help: What the user is, in this command.
        password_stdin_help: What `--password-stdin` reads, in this command.
    """
    parser.add_argument("--username", required=True, help=username_help)
    parser.add_argument("--password-stdin", action="store_true", help=password_stdin_help)


def outputs_from(args: argparse.Namespace) -> StackOutputs:
    """Load `--outputs`, as one readable line on failure.

    Raises:
        CommandError: The file is missing, malformed, or lacks an output.
    """
    try:
        return load_outputs(args.outputs)
    except OutputsError as error:
        raise CommandError(str(error)) from None


def read_stdin_line(fd: int = 0) -> str | None:
    """Read one line from standard input, byte by byte.

    Unbuffered on purpose: `connect` reads the password this way and then the messages from the
    same descriptor, so nothing past the first newline may be consumed here.

    Args:
        fd: The descriptor to read.

    Returns:
        The line without its line ending, or None at end of input.
    """
    line = bytearray()
    while True:
        byte = os.read(fd, 1)
        if not byte:
            if not line:
                return None
            break
        if byte == b"\n":
            break
        line += byte
    return line.decode("utf-8", errors="replace").rstrip("\r")


def read_password(args: argparse.Namespace) -> str:
    """The password: the first line of standard input with `--password-stdin`, else a prompt.

    Raises:
        CommandError: No password was given.
    """
    if args.password_stdin:
        password = read_stdin_line()
    else:
        import getpass

        try:
            password = getpass.getpass(f"Password for {args.username}: ")
        except EOFError:
            password = None
    if not password:
        source = "on standard input" if args.password_stdin else "entered"
        raise CommandError(f"no password {source}")
    return password


def print_status(line: str) -> None:
    """A line for the person (progress, hints), on stderr so stdout stays the data."""
    print(line, file=sys.stderr, flush=True)
