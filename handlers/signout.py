"""Sign out everywhere (DESIGN §7): end every session of a user, now and for their old tokens.

Three steps, in this order:

1. record `signedOutAt` on the user's item: from here on a handshake or an in-band refresh
   with a token whose `auth_time` is earlier is refused (Cognito keeps ID and access tokens
   valid to their `exp` whatever happens to the session; this record is what refuses them);
2. revoke the user's Cognito sessions (`AdminUserGlobalSignOut`: their refresh tokens stop
   working, so no new token comes from them);
3. tell each of the user's connections `{"type": "signedOut"}` and close it.

Used by the websocket function's `signOutEverywhere` route, `wsauth signout` and
`wsauth.sign_out_everywhere`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import connections, sender, users

__all__ = ["SIGNED_OUT", "SIGN_OUT_FAILED", "SignOutReport", "sign_out_everywhere"]

SIGNED_OUT = b'{"type":"signedOut"}'
"""Sent to each connection of a user who signed out everywhere, before it is closed."""
SIGN_OUT_FAILED = b'{"type":"signOutFailed"}'
"""Sent to the connection that asked, when the sign-out could not be done (it may retry)."""


@dataclass
class SignOutReport:
    """What a sign-out everywhere did."""

    signed_out_at: int
    """The recorded second: tokens whose `auth_time` is earlier are refused from now on."""
    closed: list[str] = field(default_factory=list)
    """Connections told `signedOut` and closed."""
    gone: list[str] = field(default_factory=list)
    """Connections API Gateway no longer knew (their items were deleted)."""
    failed: dict[str, str] = field(default_factory=dict)
    """Connection id → reason, for those that could not be closed."""


def sign_out_everywhere(
    user_id: str,
    *,
    user_pool_id: str,
    table_name: str,
    endpoint_url: str | None = None,
    region: str | None = None,
    cognito: Any = None,
    dynamodb: Any = None,
    management: Any = None,
    now: float | None = None,
) -> SignOutReport:
    """End every session of `user_id` (the Cognito `sub`).

    Args:
        user_id: The user's `sub`.
        user_pool_id: Their user pool (the stack's `userPoolId`).
        table_name: The connection table (`connectionTableName`).
        endpoint_url: The stack's `managementEndpoint` (unless `management` is given).
        region: The region, when the clients are made here; the pool's by default.
        cognito: A `cognito-idp` client allowed `AdminUserGlobalSignOut` on the pool.
        dynamodb: A DynamoDB client; `connections.dynamodb_client()` by default.
        management: An `apigatewaymanagementapi` client; one for `endpoint_url` by default.
        now: Epoch seconds; the current time by default.

    Returns:
        The report.

    Raises:
        botocore.exceptions.ClientError: The record could not be written, or Cognito refused
            the sign-out (the record stands: old tokens are refused already).
        botocore.exceptions.BotoCoreError: A service could not be reached.
    """
    import time

    region = region or user_pool_id.split("_", 1)[0] or None
    if cognito is None:
        import boto3

        cognito = boto3.client(
            "cognito-idp", region_name=region, config=connections.client_config()
        )
    dynamodb = dynamodb if dynamodb is not None else connections.dynamodb_client()
    if management is None:
        management = sender.management_client(endpoint_url, region)
    now = time.time() if now is None else now
    report = SignOutReport(users.record_sign_out(dynamodb, table_name, user_id, now))
    # Cognito takes the `sub` as the username of a pool's own users.
    cognito.admin_user_global_sign_out(UserPoolId=user_pool_id, Username=user_id)
    connection_ids = list(connections.connection_ids_of_user(dynamodb, table_name, user_id))
    outcomes = sender.for_each_connection(
        connection_ids,
        lambda _, connection_id: sender.close(
            management, dynamodb, table_name, connection_id, SIGNED_OUT
        ),
    )
    report.closed, report.gone, report.failed = outcomes.expired, outcomes.gone, outcomes.failed
    return report
