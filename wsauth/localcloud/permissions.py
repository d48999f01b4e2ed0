"""Lambda invoke permissions, enforced as AWS does when a service calls a function.

In AWS, API Gateway may invoke a function only if the function's resource policy (the program's
`aws.lambda_.Permission`s) allows `apigateway.amazonaws.com` from the calling route's or
authorizer's source ARN; otherwise the route fails with a 500 and a "configuration error". A
permission with a wrong source ARN is a classic bug that only shows after `pulumi up`; checking
it locally shows it first. EventBridge is held to the same rule (`schedules.py`): a rule's
target runs only if a permission lets `events.amazonaws.com` invoke it from the rule's ARN.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from wsauth.localcloud.spec import FunctionError, Invoker

__all__ = [
    "API_GATEWAY_PRINCIPAL",
    "EVENTS_PRINCIPAL",
    "InvokePermission",
    "PermissionCheckingInvoker",
]

log = logging.getLogger("wsauth.localcloud.permissions")

API_GATEWAY_PRINCIPAL = "apigateway.amazonaws.com"
EVENTS_PRINCIPAL = "events.amazonaws.com"
"""EventBridge: a rule's Lambda target runs only if a permission lets this principal invoke it."""
_PRINCIPAL = API_GATEWAY_PRINCIPAL
_ACTIONS = frozenset({"lambda:InvokeFunction", "lambda:*"})


@dataclass(frozen=True)
class InvokePermission:
    """One `aws.lambda_.Permission`, resolved to the function's name."""

    function_name: str
    action: str
    principal: str
    source_arn: str | None
    """ARN pattern (`*` and `?` match any characters, as in IAM); None allows any source."""

    def allows(
        self, function_name: str, source_arn: str, principal: str = API_GATEWAY_PRINCIPAL
    ) -> bool:
        """Whether this permission lets `principal` (API Gateway unless told) invoke
        `function_name` from `source_arn`."""
        if function_name != self.function_name or self.principal != principal:
            return False
        if self.action not in _ACTIONS:
            return False
        return self.source_arn is None or fnmatch.fnmatchcase(source_arn, self.source_arn)


class PermissionCheckingInvoker:
    """An `Invoker` that refuses invocations no permission allows, then delegates.

    Args:
        invoker: What runs the functions.
        permissions: The program's invoke permissions.
        execution_arn: The API's `arn:aws:execute-api:{region}:{account}:{api_id}`.
        stage: The stage's name (routes are invoked from `{execution_arn}/{stage}/{route}`).
        authorizer_id: The `$connect` authorizer's id (invoked from
            `{execution_arn}/authorizers/{id}`), if any.
    """

    def __init__(
        self,
        invoker: Invoker,
        permissions: Iterable[InvokePermission],
        *,
        execution_arn: str,
        stage: str,
        authorizer_id: str | None,
    ) -> None:
        self._invoker = invoker
        self._permissions = tuple(permissions)
        self._execution_arn = execution_arn
        self._stage = stage
        self._authorizer_id = authorizer_id
        self._decisions: dict[tuple[str, str], bool] = {}

    def source_arn(self, event: dict[str, Any]) -> str:
        """Return the ARN API Gateway invokes from for this event."""
        if event.get("type") == "REQUEST" and self._authorizer_id is not None:
            return f"{self._execution_arn}/authorizers/{self._authorizer_id}"
        route_key = (event.get("requestContext") or {}).get("routeKey", "")
        return f"{self._execution_arn}/{self._stage}/{route_key}"

    def allowed(self, function_name: str, source_arn: str) -> bool:
        """Whether any permission allows the invocation (decisions are cached)."""
        key = (function_name, source_arn)
        decision = self._decisions.get(key)
        if decision is None:
            decision = any(p.allows(function_name, source_arn) for p in self._permissions)
            self._decisions[key] = decision
            if not decision:
                log.error(
                    "no permission lets %s invoke %s from %s: add an aws.lambda_.Permission "
                    "(AWS would fail this route with a configuration error)",
                    _PRINCIPAL,
                    function_name,
                    source_arn,
                )
        return decision

    async def invoke(self, function_name: str, event: dict[str, Any]) -> Any:
        """Invoke if a permission allows it; raise `FunctionError("AccessDenied")` otherwise."""
        source_arn = self.source_arn(event)
        if not self.allowed(function_name, source_arn):
            raise FunctionError(
                "AccessDenied", f"{_PRINCIPAL} may not invoke {function_name} from {source_arn}"
            )
        return await self._invoker.invoke(function_name, event)
