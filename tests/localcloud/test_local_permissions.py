"""Invoke permissions: API Gateway may invoke a function only from a permitted source ARN."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from wsauth.localcloud.permissions import InvokePermission, PermissionCheckingInvoker
from wsauth.localcloud.spec import FunctionError

EXECUTION_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123"


class RecordingInvoker:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def invoke(self, function_name: str, event: dict[str, Any]) -> Any:
        self.calls.append(function_name)
        return {"statusCode": 200}


def _permission(source_arn: str | None, **overrides: str) -> InvokePermission:
    values = {
        "function_name": "ws",
        "action": "lambda:InvokeFunction",
        "principal": "apigateway.amazonaws.com",
        "source_arn": source_arn,
    }
    values.update(overrides)
    return InvokePermission(**values)  # type: ignore[arg-type]


ROUTE_EVENT = {"requestContext": {"routeKey": "$default"}}
AUTHORIZER_EVENT = {"type": "REQUEST", "methodArn": f"{EXECUTION_ARN}/prod/$connect"}


@pytest.mark.parametrize(
    ("permission", "event", "allowed"),
    [
        (_permission(f"{EXECUTION_ARN}/prod/$default"), ROUTE_EVENT, True),
        (_permission(f"{EXECUTION_ARN}/*/*"), ROUTE_EVENT, True),
        (_permission(None), ROUTE_EVENT, True),
        (_permission(f"{EXECUTION_ARN}/authorizers/auth1"), AUTHORIZER_EVENT, True),
        (_permission(f"{EXECUTION_ARN}/prod/$connect"), ROUTE_EVENT, False),
        (_permission(f"{EXECUTION_ARN}/beta/$default"), ROUTE_EVENT, False),
        (_permission(f"{EXECUTION_ARN}/prod/$default"), AUTHORIZER_EVENT, False),
        (_permission(f"{EXECUTION_ARN}/*", function_name="other"), ROUTE_EVENT, False),
        (_permission(f"{EXECUTION_ARN}/*", principal="lambda.amazonaws.com"), ROUTE_EVENT, False),
        (_permission(f"{EXECUTION_ARN}/*", action="lambda:GetFunction"), ROUTE_EVENT, False),
    ],
)
def test_invocation_needs_a_matching_permission(
    permission: InvokePermission, event: dict[str, Any], allowed: bool
) -> None:
    """Function, principal, action and source ARN (with IAM wildcards) must all match."""
    runner = RecordingInvoker()
    invoker = PermissionCheckingInvoker(
        runner, [permission], execution_arn=EXECUTION_ARN, stage="prod", authorizer_id="auth1"
    )

    async def invoke() -> Any:
        return await invoker.invoke("ws", event)

    if allowed:
        assert asyncio.run(invoke()) == {"statusCode": 200}
        assert runner.calls == ["ws"]
    else:
        with pytest.raises(FunctionError) as refused:
            asyncio.run(invoke())
        assert refused.value.kind == "AccessDenied"
        assert runner.calls == []
