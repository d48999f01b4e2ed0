"""The events API Gateway hands to Lambda for WebSocket APIs, and the authorizer's answer.

Shapes follow what API Gateway sends (as logged by deployed APIs and as typed by
aws-lambda-powertools / aws-lambda-go): `requestContext` carries the route, the connection and
the `authorizer` context on every event after `$connect`.
"""

from __future__ import annotations

import base64
import fnmatch
import os
import random
import time
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ACCOUNT_ID",
    "AuthorizerDecision",
    "ConnectionInfo",
    "authorizer_event",
    "connect_event",
    "disconnect_event",
    "message_event",
    "new_id",
    "parse_authorizer_result",
]

ACCOUNT_ID = "000000000000"
"""The account id used in ARNs locally (moto's default account)."""

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_request_time_cache: tuple[int, str] = (-1, "")


def new_id(*, unguessable: bool = False) -> str:
    """Return an id shaped like API Gateway's (`JC1dgf9yoAMCK-g=`: 11 random bytes, URL-safe
    base64, so a connection id needs no escaping beyond `=` in `@connections/{id}`).

    Args:
        unguessable: Draw from the OS's CSPRNG (connection ids); request and message ids
            only need to be unique, and the fast PRNG saves a system call per event.
    """
    raw = os.urandom(11) if unguessable else random.randbytes(11)
    return base64.urlsafe_b64encode(raw).decode()


def _request_time(epoch_seconds: int) -> str:
    """Format `requestTime` as API Gateway does (`09/Feb/2024:18:11:43 +0000`), cached."""
    global _request_time_cache
    cached_second, cached_text = _request_time_cache
    if cached_second == epoch_seconds:
        return cached_text
    t = time.gmtime(epoch_seconds)
    text = (
        f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )
    _request_time_cache = (epoch_seconds, text)
    return text


@dataclass(slots=True)
class ConnectionInfo:
    """What every event of one connection repeats."""

    api_id: str
    stage: str
    domain_name: str
    connection_id: str
    connected_at_ms: int
    source_ip: str
    user_agent: str
    authorizer: dict[str, Any] | None = None
    """`requestContext.authorizer` from the `$connect` authorizer, repeated on later events."""


def _request_context(
    info: ConnectionInfo, route_key: str, event_type: str, now_ms: int
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": new_id(),
        "requestTime": _request_time(now_ms // 1000),
        "messageDirection": "IN",
        "stage": info.stage,
        "connectedAt": info.connected_at_ms,
        "requestTimeEpoch": now_ms,
        "identity": {"sourceIp": info.source_ip, "userAgent": info.user_agent},
        "requestId": new_id(),
        "domainName": info.domain_name,
        "connectionId": info.connection_id,
        "apiId": info.api_id,
    }
    if info.authorizer is not None:
        context["authorizer"] = info.authorizer
    return context


def _value_maps(
    pairs: list[tuple[str, str]],
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """AWS's two views of headers or query parameters: last value wins, and every value."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value
        multi.setdefault(name, []).append(value)
    return single, multi


def authorizer_event(
    info: ConnectionInfo,
    *,
    region: str,
    headers: list[tuple[str, str]],
    query: list[tuple[str, str]],
    now_ms: int,
) -> dict[str, Any]:
    """Build the WebSocket REQUEST authorizer event for a `$connect`.

    Args:
        info: The connection being opened.
        region: The API's region (for `methodArn`).
        headers: The handshake's headers as sent.
        query: The handshake's decoded query pairs.
        now_ms: Request time, epoch milliseconds.

    Returns:
        The event.
    """
    single_headers, multi_headers = _value_maps(headers)
    single_query, multi_query = _value_maps(query)
    method_arn = f"arn:aws:execute-api:{region}:{ACCOUNT_ID}:{info.api_id}/{info.stage}/$connect"
    return {
        "type": "REQUEST",
        "methodArn": method_arn,
        "headers": single_headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": single_query,
        "multiValueQueryStringParameters": multi_query,
        "stageVariables": {},
        "requestContext": _request_context(info, "$connect", "CONNECT", now_ms),
    }


def connect_event(
    info: ConnectionInfo,
    *,
    headers: list[tuple[str, str]],
    query: list[tuple[str, str]],
    now_ms: int,
) -> dict[str, Any]:
    """Build the `$connect` route's event (query maps only when the URL has a query).

    Args:
        info: The connection being opened (with its authorizer context, if any).
        headers: The handshake's headers as sent.
        query: The handshake's decoded query pairs.
        now_ms: Request time, epoch milliseconds.

    Returns:
        The event.
    """
    single_headers, multi_headers = _value_maps(headers)
    event: dict[str, Any] = {
        "headers": single_headers,
        "multiValueHeaders": multi_headers,
    }
    if query:
        single_query, multi_query = _value_maps(query)
        event["queryStringParameters"] = single_query
        event["multiValueQueryStringParameters"] = multi_query
    event["requestContext"] = _request_context(info, "$connect", "CONNECT", now_ms)
    event["isBase64Encoded"] = False
    return event


def message_event(
    info: ConnectionInfo, route_key: str, body: str, *, is_base64: bool, now_ms: int
) -> dict[str, Any]:
    """Build a MESSAGE event.

    Args:
        info: The connection the message came on.
        route_key: The selected route.
        body: The text message, or the base64 of a binary message.
        is_base64: True for a binary message.
        now_ms: Request time, epoch milliseconds.

    Returns:
        The event.
    """
    context = _request_context(info, route_key, "MESSAGE", now_ms)
    context["messageId"] = new_id()
    return {"requestContext": context, "body": body, "isBase64Encoded": is_base64}


def disconnect_event(
    info: ConnectionInfo, *, status_code: int, reason: str, now_ms: int
) -> dict[str, Any]:
    """Build the `$disconnect` event.

    Args:
        info: The connection that closed.
        status_code: WebSocket close code (the client's, the server's, or 1006 for a drop).
        reason: Close reason.
        now_ms: Request time, epoch milliseconds.

    Returns:
        The event.
    """
    context = _request_context(info, "$disconnect", "DISCONNECT", now_ms)
    context["disconnectStatusCode"] = status_code
    context["disconnectReason"] = reason
    host = info.domain_name
    return {
        "headers": {"Host": host, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""},
        "multiValueHeaders": {
            "Host": [host],
            "x-api-key": [""],
            "X-Forwarded-For": [""],
            "x-restapi": [""],
        },
        "requestContext": context,
        "isBase64Encoded": False,
    }


@dataclass(frozen=True, slots=True)
class AuthorizerDecision:
    """What API Gateway makes of a REQUEST authorizer's answer."""

    allowed: bool
    authorizer_context: dict[str, Any] | None = None
    """`requestContext.authorizer` for later events: the context's keys plus `principalId`."""


def _statements(policy: Any) -> list[dict[str, Any]]:
    if not isinstance(policy, dict):
        raise ValueError("policyDocument is not an object")
    statements = policy.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not all(isinstance(s, dict) for s in statements):
        raise ValueError("policyDocument.Statement is not a list of objects")
    return statements


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise ValueError("Action/Resource must be a string or a list of strings")


def _statement_matches(statement: dict[str, Any], method_arn: str) -> bool:
    actions = _as_list(statement.get("Action", []))
    resources = _as_list(statement.get("Resource", []))
    # IAM matching is case-insensitive for actions, case-sensitive with globs for resources.
    action_ok = any(fnmatch.fnmatchcase("execute-api:invoke", action.lower()) for action in actions)
    return action_ok and any(fnmatch.fnmatchcase(method_arn, res) for res in resources)


def parse_authorizer_result(
    result: Any, method_arn: str, integration_latency_ms: int
) -> AuthorizerDecision:
    """Decide as API Gateway does from an authorizer's return value.

    An explicit Deny wins; otherwise an Allow statement on `execute-api:Invoke` matching
    `methodArn` allows. Never allow on doubt.

    Args:
        result: The function's JSON-decoded return value.
        method_arn: The event's `methodArn`.
        integration_latency_ms: How long the authorizer took (API Gateway reports it in the
            `authorizer` context as `integrationLatency`).

    Returns:
        The decision.

    Raises:
        ValueError: When the answer is malformed (API Gateway answers 500 to the client).
    """
    if not isinstance(result, dict):
        raise ValueError("authorizer result is not an object")
    principal_id = result.get("principalId")
    if not isinstance(principal_id, str):
        raise ValueError("authorizer result has no string principalId")
    context = result.get("context") or {}
    if not isinstance(context, dict) or not all(
        isinstance(v, str | int | float | bool) for v in context.values()
    ):
        raise ValueError("authorizer context values must be strings, numbers or booleans")
    matching = [
        s for s in _statements(result.get("policyDocument")) if _statement_matches(s, method_arn)
    ]
    effects = {str(s.get("Effect", "")).lower() for s in matching}
    if "deny" in effects or "allow" not in effects:
        return AuthorizerDecision(allowed=False)
    authorizer = dict(context)
    authorizer["principalId"] = principal_id
    authorizer["integrationLatency"] = integration_latency_ms
    return AuthorizerDecision(allowed=True, authorizer_context=authorizer)
