"""The authorizer's answer as API Gateway reads it, and route selection, without sockets."""

from __future__ import annotations

from typing import Any

import pytest

from wsauth.localcloud.gateway.events import parse_authorizer_result
from wsauth.localcloud.gateway.routing import RouteSelector

ARN = "arn:aws:execute-api:us-east-1:000000000000:abc123/prod/$connect"


def answer(*statements: dict[str, Any], context: Any = None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "principalId": "user-1",
        "policyDocument": {"Version": "2012-10-17", "Statement": list(statements)},
    }
    if context is not None:
        result["context"] = context
    return result


def statement(effect: str, resource: Any = ARN, action: Any = "execute-api:Invoke") -> dict:
    return {"Effect": effect, "Action": action, "Resource": resource}


@pytest.mark.parametrize(
    ("result", "allowed"),
    [
        (answer(statement("Allow")), True),
        (answer(statement("Allow", resource="arn:aws:execute-api:us-east-1:*:abc123/*")), True),
        (answer(statement("Allow", action="execute-api:*")), True),
        (answer(statement("Allow", action=["s3:GetObject", "execute-api:invoke"])), True),
        (answer(statement("Allow", resource=[ARN])), True),
        (answer(statement("Allow"), statement("Deny", resource="*")), False),
        (answer(statement("Allow", resource=ARN.replace("prod", "dev"))), False),
        (answer(statement("Allow", action="s3:*")), False),
        (answer(), False),
    ],
    ids=[
        "exact",
        "wildcard-resource",
        "wildcard-action",
        "action-list-any-case",
        "resource-list",
        "deny-wins",
        "other-stage",
        "other-action",
        "no-statement",
    ],
)
def test_policy_decision(result: dict[str, Any], allowed: bool) -> None:
    """An Allow covering methodArn allows, unless a matching Deny is present."""
    assert parse_authorizer_result(result, ARN, 3).allowed is allowed


def test_allowed_context_is_flattened_with_principal_id() -> None:
    """requestContext.authorizer is the context's keys plus principalId and latency."""
    decision = parse_authorizer_result(
        answer(statement("Allow"), context={"userId": "u", "n": 1, "ok": True}), ARN, 7
    )
    assert decision.authorizer_context == {
        "userId": "u",
        "n": 1,
        "ok": True,
        "principalId": "user-1",
        "integrationLatency": 7,
    }


@pytest.mark.parametrize(
    "result",
    [
        None,
        [],
        {"policyDocument": {"Statement": []}},
        {"principalId": 5, "policyDocument": {"Statement": []}},
        {"principalId": "p"},
        {"principalId": "p", "policyDocument": {"Statement": "x"}},
        {"principalId": "p", "policyDocument": {"Statement": [{"Action": 1, "Effect": "Allow"}]}},
        answer(statement("Allow"), context={"groups": ["a"]}),
    ],
)
def test_malformed_answers_raise(result: Any) -> None:
    """A malformed answer is an error (API Gateway's 500), never an Allow."""
    with pytest.raises(ValueError):
        parse_authorizer_result(result, ARN, 0)


@pytest.mark.parametrize("expression", ["$request.header.x", "action", "$request.body."])
def test_unsupported_selection_expressions_are_refused(expression: str) -> None:
    """Expressions other than $request.body.<path> are named, not silently ignored."""
    with pytest.raises(ValueError, match="not supported"):
        RouteSelector(expression, ["$default"])


def test_braced_expression_and_missing_default() -> None:
    """`${request.body.action}` works; with no $default an unmatched body selects nothing."""
    selector = RouteSelector("${request.body.action}", ["send"])
    assert selector.select('{"action": "send"}') == "send"
    assert selector.select('{"action": "other"}') is None
    assert selector.select(None) is None
