"""Who may open one more connection: revoked sessions stay out, and each user has a limit.

Run by `$connect` after the authorizer allowed the token, because the authorizer stays free of
boto3 (its cold start is paid by every new connection) while `$connect` already writes the
table. One read or one conditional write per handshake, none per message:

* with a limit (`MAX_CONNECTIONS_PER_USER` > 0), one conditional `UpdateItem` both counts the
  connection (refused at the limit, atomically, so simultaneous handshakes cannot all pass) and
  returns the user's item, whose `signedOutAt` decides revocation;
* without a limit, one `GetItem` of the user's item, for revocation only.

A count can drift up when a `$disconnect` never ran. At the limit, the user's stored
connections older than `HEAL_AFTER_SECONDS` are checked with `GET @connections`: those API
Gateway no longer knows are forgotten (and counted out), and the handshake is tried once more.
Younger ones are left alone: they may be handshakes still in `$connect`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from . import connections, sender, users

__all__ = ["HEAL_AFTER_SECONDS", "admit", "is_revoked"]

HEAL_AFTER_SECONDS = 30
"""A stored connection younger than this is never taken for a lost one (API Gateway's
integration timeout is 29 s, so no `$connect` runs longer)."""

logger = logging.getLogger(__name__)


def is_revoked(user_item: dict[str, Any], auth_time: float) -> bool:
    """Whether a token signed in at `auth_time` began before the user's last sign-out.

    `auth_time` has one-second granularity: a sign-in in the very second of the sign-out is
    taken as after it, so that signing in again works at once.
    """
    signed_out = users.signed_out_at(user_item)
    return signed_out is not None and auth_time < signed_out


def admit(
    dynamodb: Any,
    table_name: str,
    management: Any,
    *,
    user_id: str,
    auth_time: float,
    limit: int,
    check_revocation: bool,
    now: float,
) -> str | None:
    """Decide one handshake of `user_id`.

    Returns:
        None to admit (with a limit, the connection is now counted: store it with
        `counted=True`, or count it out if it cannot be stored), else the reason:
        `session_revoked` or `connection_limit`.

    Raises:
        botocore.exceptions.ClientError: DynamoDB refused a call.
        botocore.exceptions.BotoCoreError: DynamoDB could not be reached.
    """
    if limit > 0:
        user_item = users.count_connection(dynamodb, table_name, user_id, limit=limit, now=now)
        if user_item is None and _heal(dynamodb, table_name, management, user_id, now):
            user_item = users.count_connection(dynamodb, table_name, user_id, limit=limit, now=now)
        if user_item is None:
            return "connection_limit"
    elif check_revocation:
        user_item = users.user_state(dynamodb, table_name, user_id)
    else:
        return None
    if check_revocation and is_revoked(user_item, auth_time):
        if limit > 0:
            users.uncount_connections(dynamodb, table_name, user_id)
        return "session_revoked"
    return None


def _heal(dynamodb: Any, table_name: str, management: Any, user_id: str, now: float) -> int:
    """Forget the user's stored connections that API Gateway no longer knows; return how many."""
    from botocore.exceptions import ClientError

    healed = 0
    for stored in connections.connections_of_user(dynamodb, table_name, user_id):
        age = now - (stored.connected_at_ms or 0) / 1000
        if age < HEAL_AFTER_SECONDS:
            continue
        try:
            management.get_connection(ConnectionId=stored.connection_id)
        except ClientError as error:
            if sender.is_gone(error):
                connections.forget_connection(dynamodb, table_name, stored.connection_id)
                healed += 1
    if healed:
        logger.warning(json.dumps({"outcome": "connection_count_healed", "forgotten": healed}))
    return healed
