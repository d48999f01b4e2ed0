"""`wsauth signout`: sign a user out everywhere, as an administrator would (DESIGN.md §7)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from wsauth.cli import CommandError
from wsauth.client import ClientError, cognito_admin_client, describe_aws_error, stack_clients
from wsauth.commands._common import add_command, outputs_from, print_status
from wsauth.outputs import StackOutputs

if TYPE_CHECKING:
    from wsauth.handlers.signout import SignOutReport

__all__ = ["register", "run", "sign_out_stack_user"]

_PURPOSE = "signing out goes through the stack's user pool, table and @connections API"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `wsauth signout`."""
    parser = add_command(
        subparsers,
        "signout",
        summary="sign a user out everywhere and close all their connections",
        description="""
            Sign out the user whose Cognito id is SUB everywhere, through the function
            back-end services use (`wsauth.sign_out_everywhere`): Cognito revokes every
            refresh token of the user (AdminUserGlobalSignOut), sessions that began before
            now can no longer open a connection nor be extended, and each open connection of
            the user receives {"type": "signedOut"} and is closed. Prints how many connections
            were closed, then one line per connection; exit status 1 if any could not be
            closed.

            A deployed stack needs AWS credentials allowed to sign the pool's users out, query
            the table and use @connections; the local cloud needs none.
        """,
        examples="""
            wsauth signout --outputs .wsauth/outputs.json \\
                --user 0b6c4f5e-1111-2222-3333-444455556666
        """,
    )
    parser.add_argument(
        "--user", required=True, metavar="SUB", help="the user's Cognito id (`sub` claim)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Sign out, print the report; exit status 1 if any connection failed."""
    outputs = outputs_from(args)
    try:
        report = sign_out_stack_user(outputs, args.user)
    except ClientError as error:
        raise CommandError(str(error)) from None
    closed = len(report.closed)
    print(f"closed {closed} connection{'' if closed == 1 else 's'}")
    for connection_id in report.closed:
        print(f"  closed     {connection_id}")
    for connection_id in report.gone:
        print(f"  gone       {connection_id} (already closed; removed from the table)")
    for connection_id, reason in report.failed.items():
        print(f"  failed     {connection_id}: {reason}")
    print_status(
        f"user {args.user} signed out everywhere: their refresh tokens are revoked and "
        "sessions that began before now are refused"
    )
    return 1 if report.failed else 0


def sign_out_stack_user(outputs: StackOutputs, user_id: str) -> SignOutReport:
    """Sign a user out everywhere, with the stack's own clients.

    Args:
        outputs: The stack.
        user_id: The user's Cognito `sub`.

    Returns:
        What happened to each of the user's connections (`closed`, `gone`, `failed`).

    Raises:
        ClientError: No credentials for a deployed stack, an unknown user, or the pool or
            table refused or could not be reached (the message says which, and where).
    """
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError as BotoClientError

    from wsauth import sign_out_everywhere

    dynamodb, management = stack_clients(outputs, purpose=_PURPOSE)
    cognito = cognito_admin_client(outputs, purpose=_PURPOSE)
    try:
        return sign_out_everywhere(
            user_id,
            user_pool_id=outputs.user_pool_id,
            table_name=outputs.connection_table_name,
            endpoint_url=outputs.management_endpoint,
            region=outputs.region,
            cognito=cognito,
            dynamodb=dynamodb,
            management=management,
        )
    except (BotoCoreError, BotoClientError) as error:
        raise ClientError(_describe(error, outputs, user_id)) from None


def _describe(error: Exception, outputs: StackOutputs, user_id: str) -> str:
    from botocore.exceptions import ClientError as BotoClientError

    operation = getattr(error, "operation_name", "") or ""
    # Cognito's calls (AdminUserGlobalSignOut, ListUsers, …) fail with Cognito's codes; the
    # table's and @connections' with theirs, which `describe_aws_error` knows.
    if isinstance(error, BotoClientError) and (
        operation.startswith("Admin") or operation == "ListUsers"
    ):
        code = error.response.get("Error", {}).get("Code", "")
        pool = outputs.user_pool_id
        if code == "UserNotFoundException":
            return f"user {user_id} not found in user pool {pool}"
        if code == "ResourceNotFoundException":
            return f"user pool {pool} not found: is the outputs file from this stack?"
        message = error.response.get("Error", {}).get("Message", "")
        return f"Cognito refused {operation} in user pool {pool}: {code}: {message}"
    return describe_aws_error(error, outputs)
