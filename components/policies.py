"""The functions' IAM policies: each names exact ARNs and only the actions its code calls."""

from __future__ import annotations

import json
from typing import Any

import pulumi

from wsauth.handlers.connections import COUNT_KEY

__all__ = [
    "assumable_by",
    "authorizer_policy",
    "counter_policy",
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

    With sessions (`user_pool_arn` given) the function also moves an item's expiry and keeps
    each user's item (`UpdateItem`), closes expired and signed-out connections (`DELETE`) and
    signs a user out everywhere in this pool; with a limit per user it may ask whether a stored
    connection still exists (`GET`), to heal a count a lost `$disconnect` left too high.
    Without either it only answers (`POST`).
    """

    def document(args: list[str | None]) -> str:
        log_arn, table, index, execution, stage, pool = (str(a) for a in args)
        sessions = args[5] is not None
        item_actions = ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem"]
        methods = ["POST"]
        if sessions or heal_connection_count:
            item_actions.append("dynamodb:UpdateItem")
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
    """Read the live count's item; with sessions (`expiry_index_arn` given), find expired
    sessions in their index only, tell and close them, and forget gone ones."""

    def document(args: list[str | None]) -> str:
        log_arn, table, execution, stage, index = (str(a) for a in args)
        statements: list[dict[str, Any]] = [
            {
                "Sid": "ReadTheConnectionCount",
                "Effect": "Allow",
                "Action": ["dynamodb:GetItem"],
                "Resource": [table],
                **_count_item_only(),
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
                    # out of its user's open connections (UpdateItem).
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


def counter_policy(
    log_group_arn: pulumi.Input[str],
    table_arn: pulumi.Input[str],
    stream_arn: pulumi.Input[str],
) -> pulumi.Output[str]:
    """Read this table's stream (Lambda polls it with the function's role); add to the live
    count's one item; its own logs."""

    def document(args: list[str]) -> str:
        log_arn, table, stream = args
        return _document(
            [
                {
                    "Sid": "ReadThisTablesStream",
                    "Effect": "Allow",
                    "Action": [
                        "dynamodb:DescribeStream",
                        "dynamodb:GetRecords",
                        "dynamodb:GetShardIterator",
                    ],
                    "Resource": [stream],
                },
                {
                    # As AWS's own example for a stream-reading function scopes it (the table's
                    # streams, whose labels change when one is replaced); Lambda's polling
                    # itself uses the three actions above.
                    "Sid": "ListThisTablesStreams",
                    "Effect": "Allow",
                    "Action": ["dynamodb:ListStreams"],
                    "Resource": [f"{table}/stream/*"],
                },
                {
                    "Sid": "KeepTheConnectionCount",
                    "Effect": "Allow",
                    "Action": ["dynamodb:UpdateItem"],
                    "Resource": [table],
                    **_count_item_only(),
                },
                _log_statement(log_arn),
            ]
        )

    return pulumi.Output.all(log_group_arn, table_arn, stream_arn).apply(document)


def _count_item_only() -> dict[str, Any]:
    # The live count's item only (`handlers.connections.COUNT_KEY`), never a connection's or a
    # user's: a condition on the partition key of every item the request touches.
    return {"Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [COUNT_KEY]}}}
