"""`wsauth notify`: send a message to every connection of a user, as a back-end service would."""

from __future__ import annotations

import argparse

from wsauth.cli import CommandError
from wsauth.client import ClientError, send_to_stack_user
from wsauth.commands._common import add_command, outputs_from, print_status

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `wsauth notify`."""
    parser = add_command(
        subparsers,
        "notify",
        summary="send a message to every connection of a user",
        description="""
            Send MESSAGE (UTF-8 text, exactly as given) to every open connection of the user
            whose Cognito id is SUB, through the sending module back-end services use: the
            connection table's userIdIndex, then the @connections API. Connections that are
            gone are removed from the table; those whose session has expired get no message
            and are closed. Prints how many were delivered, gone, expired and failed; exit
            status 1 if any failed.

            A deployed stack needs AWS credentials allowed to query the table and to post to
            @connections; the local cloud needs none.
        """,
        examples="""
            wsauth notify --outputs .wsauth/outputs.json \\
                --user 0b6c4f5e-1111-2222-3333-444455556666 '{"message": "build finished"}'
        """,
    )
    parser.add_argument(
        "--user", required=True, metavar="SUB", help="the user's Cognito id (`sub` claim)"
    )
    parser.add_argument("message", metavar="MESSAGE", help="the text to send")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Send, print the report; exit status 1 if any connection failed."""
    outputs = outputs_from(args)
    try:
        report = send_to_stack_user(outputs, args.user, args.message)
    except ClientError as error:
        raise CommandError(str(error)) from None
    print(
        f"delivered {len(report.delivered)}, gone {len(report.gone)}, "
        f"expired {len(report.expired)}, failed {len(report.failed)}"
    )
    if not report.attempted:
        print_status(f"user {args.user} has no open connection")
    for connection_id in report.delivered:
        print(f"  delivered  {connection_id}")
    for connection_id in report.gone:
        print(f"  gone       {connection_id} (removed from the table)")
    for connection_id in report.expired:
        print(f"  expired    {connection_id} (session over: told so and closed)")
    for connection_id, reason in report.failed.items():
        print(f"  failed     {connection_id}: {reason}")
    return 1 if report.failed else 0
