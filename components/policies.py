"""The functions' IAM policies: each names exact ARNs and only the actions its code calls."""

from __future__ import annotations

import json
from typing import Any

import pulumi

# The keys of the live connection count's counter items (`handlers.connections`).
COUNTER_KEY_PATTERN = "stats#connections#*"

__all__ = [
    "COUNTER_KEY_PATTERN",
    "assumable_by",
    "authorizer_policy",
    "sweeper_policy",
    "websocket_policy",
]


def assumable_by(service: str) -> str:
    """A role's trust policy: only `service` (e.g. `lambda.amazonaws.com`) may assume it."""
    return _document(
        [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]
    )


def _log_statement(log_group_arn: str) -> dict[str, Any]:
    # Lambda creates one stream per execution environment, with names nobody can know in advance:
    # the streams of this one log group are the narrowest resource there is.
    return {
        "Sid": "OwnLogGroupOnly",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": [log_group_arn, f"{log_group_arn}:log-stream:*"],
    }


def _connections(execution_arn: str, stage: str, *methods: str) -> list[str]:
    # Connection ids are random: `*` after `@connections/` is the narrowest pattern for them.
    return [f"{execution_arn}/{stage}/{method}/@connections/*" for method in methods]


def _document(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def authorizer_policy(log_group_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """The authorizer only verifies tokens (JWKS over HTTPS): it needs nothing but its logs."""
    return pulumi.Output.from_input(log_group_arn).apply(
        lambda arn: _document([_log_statement(arn)])
    )


def websocket_policy(
    log_group_arn: pulumi.Input[str],
    table_arn: pulumi.Input[str],
    index_arn: pulumi.Input[str],
    execution_arn: pulumi.Input[str],
    stage_name: pulumi.Input[str],
    *,
    user_pool_arn: pulumi.Input[str] | None,
    heal_connection_count: bool,
) -> pulumi.Output[str]:
    """Items of this table and its index, this stage's connections, its own logs.

    `UpdateItem` keeps the live connection count (the table's counter shards) and, with
    sessions, moves an item's expiry and keeps each user's item. With sessions (`user_pool_arn`
    given) the function also closes expired and signed-out connections (`DELETE`) and signs a
    user out everywhere in this pool; with a limit per user it may ask whether a stored
    connection still exists (`GET`), to heal a count a lost `$disconnect` left too high.
    Without either it only answers (`POST`).
    """

    def document(args: list[str | None]) -> str:
        log_arn, table, index, execution, stage, pool = (str(a) for a in args)
        sessions = args[5] is not None
        item_actions = [
            "dynamodb:PutItem",
            "dynamodb:GetItem",
            "dynamodb:DeleteItem",
            "dynamodb:UpdateItem",
        ]
        methods = ["POST"]
        if sessions:
            methods.append("DELETE")
        if heal_connection_count:
            methods.append("GET")
        statements = [
            {
                "Sid": "ConnectionItems",
                "Effect": "Allow",
                "Action": item_actions,
                "Resource": [table],
            },
            {
                "Sid": "ConnectionsOfAUser",
                "Effect": "Allow",
                "Action": ["dynamodb:Query"],
                "Resource": [index],
            },
            {
                "Sid": "ThisStagesConnections",
                "Effect": "Allow",
                "Action": ["execute-api:ManageConnections"],
                "Resource": _connections(execution, stage, *methods),
            },
        ]
        if sessions:
            statements.append(
                {
                    "Sid": "SignOutEverywhereInThisPool",
                    "Effect": "Allow",
                    "Action": ["cognito-idp:AdminUserGlobalSignOut"],
                    "Resource": [pool],
                }
            )
        return _document([*statements, _log_statement(log_arn)])

    return pulumi.Output.all(
        log_group_arn, table_arn, index_arn, execution_arn, stage_name, user_pool_arn
    ).apply(document)


def sweeper_policy(
    log_group_arn: pulumi.Input[str],
    table_arn: pulumi.Input[str],
    execution_arn: pulumi.Input[str],
    stage_name: pulumi.Input[str],
    *,
    expiry_index_arn: pulumi.Input[str] | None,
) -> pulumi.Output[str]:
    """Read the live count's counter items; with sessions (`expiry_index_arn` given), find
    expired sessions in their index only, tell and close them, and forget gone ones."""

    def document(args: list[str | None]) -> str:
        log_arn, table, execution, stage, index = (str(a) for a in args)
        statements: list[dict[str, Any]] = [
            {
                "Sid": "ReadTheConnectionCount",
                "Effect": "Allow",
                "Action": ["dynamodb:BatchGetItem"],
                "Resource": [table],
                # The counter shards only, never a connection or a user.
                "Condition": {
                    "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [COUNTER_KEY_PATTERN]}
                },
            }
        ]
        if args[4] is not None:
            statements += [
                {
                    "Sid": "FindExpiredSessions",
                    "Effect": "Allow",
                    "Action": ["dynamodb:Query"],
                    "Resource": [index],
                },
                {
                    # Only for a connection API Gateway no longer knows (410): its
                    # `$disconnect` was lost, so nothing else deletes the item, nor counts it
                    # out of its user's open connections and the live count (UpdateItem).
                    "Sid": "ForgetGoneConnections",
                    "Effect": "Allow",
                    "Action": ["dynamodb:DeleteItem", "dynamodb:UpdateItem"],
                    "Resource": [table],
                },
                {
                    "Sid": "TellAndCloseExpired",
                    "Effect": "Allow",
                    "Action": ["execute-api:ManageConnections"],
                    "Resource": _connections(execution, stage, "POST", "DELETE"),
                },
            ]
        return _document([*statements, _log_statement(log_arn)])

    return pulumi.Output.all(
        log_group_arn, table_arn, execution_arn, stage_name, expiry_index_arn
    ).apply(document)
