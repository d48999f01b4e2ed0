"""The alarms `ApiMonitoring` declares: what each watches, its default rule, and overrides.

Most alarms count events (a Sum) over a period and fire when the count reaches its threshold
in enough periods; for them missing data is "not breaching": a quiet API emits no datapoints,
and no traffic is not an incident. The heartbeat (`count_missing`) is the other way round: a
count the minute job stopped publishing is what it watches for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, TypedDict

from wsauth.handlers.metrics import CONNECTION_COUNT, FAILED_PUSHES, NAMESPACE

from ._validation import require_int_range, require_number_range

__all__ = ["ALARMS", "AlarmKind", "AlarmOverride", "AlarmRule", "resolve_alarm_rules"]

# CloudWatch evaluates at most one day of periods per alarm (periods x evaluations <= 86400 s).
_MAX_EVALUATED_SECONDS = 24 * 60 * 60


@dataclass(frozen=True)
class AlarmRule:
    """When an alarm fires: a count of at least `threshold` in `datapoints_to_alarm` of the
    last `evaluation_periods` periods of `period_seconds`."""

    threshold: float
    period_seconds: int = 300
    evaluation_periods: int = 1
    datapoints_to_alarm: int = 1
    enabled: bool = True


class AlarmOverride(TypedDict, total=False):
    """Changes to one alarm's default rule; absent keys keep the default."""

    threshold: float
    """The count that fires the alarm, >= 0."""
    period_seconds: int
    """Length of one period: 60 to 86400 seconds, a multiple of 60."""
    evaluation_periods: int
    """How many recent periods are looked at, >= 1."""
    datapoints_to_alarm: int
    """How many of them must reach the threshold, 1 to evaluation_periods."""
    enabled: bool
    """False: the alarm is not declared."""


@dataclass(frozen=True)
class AlarmKind:
    """One alarm of the catalog."""

    title: str
    """What is counted, as the alarm's description starts."""
    meaning: str
    """What firing means for the users."""
    action: str
    """What to do first."""
    default: AlarmRule
    subject: str
    """Whose metric: a function of the API (`authorizer`, `websocket`, `sweeper`, `counter`:
    dimension FunctionName), the API's `stage` (ApiId, Stage), or the connection `table` and
    its indexes (a sum of their throttle metrics)."""
    metric: str = ""
    """The metric's name (not for `table`)."""
    namespace: str = "AWS/Lambda"
    statistic: str = "Sum"
    comparison: str = "GreaterThanOrEqualToThreshold"
    missing_data: str = "notBreaching"


ALARMS: dict[str, AlarmKind] = {
    "authorizer_errors": AlarmKind(
        "Authorizer function errors (AWS/Lambda Errors)",
        "handshakes fail with 500: nobody can connect",
        "read the authorizer's log group for outcome=error; jwks_unavailable means Cognito's "
        "keys could not be fetched (network, VPC egress, the pool deleted)",
        AlarmRule(threshold=5),
        subject="authorizer",
        metric="Errors",
    ),
    "authorizer_throttles": AlarmKind(
        "Authorizer function throttles (AWS/Lambda Throttles)",
        "handshakes fail: Lambda refused to run the authorizer",
        "raise the account's concurrency quota or its reserved concurrency; look for a "
        "connection storm in ConnectCount",
        AlarmRule(threshold=1),
        subject="authorizer",
        metric="Throttles",
    ),
    "websocket_errors": AlarmKind(
        "Websocket function errors (AWS/Lambda Errors)",
        "connects, disconnects or messages failed; clients saw 'Internal server error'",
        "read the websocket function's log group for its JSON error lines",
        AlarmRule(threshold=5),
        subject="websocket",
        metric="Errors",
    ),
    "websocket_throttles": AlarmKind(
        "Websocket function throttles (AWS/Lambda Throttles)",
        "connects or messages were refused before any code ran",
        "raise the account's concurrency quota or the function's reserved concurrency",
        AlarmRule(threshold=1),
        subject="websocket",
        metric="Throttles",
    ),
    "sweeper_errors": AlarmKind(
        "Minute job errors (AWS/Lambda Errors), 15 minutes in a row",
        "the live count is not published and expired idle sessions stay open",
        "read the sweeper function's log group (count_failed: it could not read the count; "
        "else the table or its expiryIndex)",
        AlarmRule(threshold=1, evaluation_periods=3, datapoints_to_alarm=3),
        subject="sweeper",
        metric="Errors",
    ),
    "counter_errors": AlarmKind(
        "Counter function errors (AWS/Lambda Errors), 15 minutes in a row",
        "the live count stands still: Lambda retries the same stream batch until it succeeds",
        "read the counter function's log group; its only write is the count's item",
        AlarmRule(threshold=1, evaluation_periods=3, datapoints_to_alarm=3),
        subject="counter",
        metric="Errors",
    ),
    "counter_lag": AlarmKind(
        "Counter lag (AWS/Lambda IteratorAge, the oldest stream record's age in ms)",
        "the live count is more than 5 minutes behind the table",
        "look at counter_errors and the counter's throttles; the stream keeps 24 hours",
        AlarmRule(threshold=300_000),
        subject="counter",
        metric="IteratorAge",
        statistic="Maximum",
    ),
    "count_missing": AlarmKind(
        "No live count published (WsAuth ConnectionCount samples), 15 minutes in a row",
        "the minute job is not running: no count, and with sessions no sweep",
        "check the schedule rule (enabled?), the sweeper function's throttles and errors",
        AlarmRule(threshold=1, evaluation_periods=3, datapoints_to_alarm=3),
        subject="stage",
        metric=CONNECTION_COUNT,
        namespace=NAMESPACE,
        statistic="SampleCount",
        comparison="LessThanThreshold",
        missing_data="breaching",
    ),
    "integration_errors": AlarmKind(
        "API Gateway IntegrationError for the stage",
        "the websocket function could not be invoked or answered an error status",
        "read the stage's access log (integrationError) and the function's log group",
        AlarmRule(threshold=5),
        subject="stage",
        metric="IntegrationError",
        namespace="AWS/ApiGateway",
    ),
    "execution_errors": AlarmKind(
        "API Gateway ExecutionError for the stage",
        "API Gateway itself failed to run requests (often the authorizer failing or timing out)",
        "read the stage's access log (errorMessage, authorizerError)",
        AlarmRule(threshold=5),
        subject="stage",
        metric="ExecutionError",
        namespace="AWS/ApiGateway",
    ),
    "client_errors": AlarmKind(
        "API Gateway ClientError for the stage (a spike)",
        "many requests refused before any function ran: stage throttling (429), expired or "
        "forged tokens (403), missing tokens (401)",
        "read the stage's access log by status; 429s mean the stage's throttling limits",
        AlarmRule(threshold=100),
        subject="stage",
        metric="ClientError",
        namespace="AWS/ApiGateway",
    ),
    "table_throttles": AlarmKind(
        "DynamoDB throttled reads and writes on the connection table and its indexes",
        "connects, sweeps or pushes slow down or fail",
        "look for a burst beyond twice the table's previous peak (on-demand) or raise its "
        "capacity; retries hide a few",
        AlarmRule(threshold=10),
        subject="table",
    ),
    "failed_pushes": AlarmKind(
        "Failed pushes (WsAuth FailedPushes: @connections calls refused, 429 or 5xx)",
        "messages to clients were lost: echo, pushes from senders, session notices",
        "429 means the account's @connections rate; read the senders' logs for the codes",
        AlarmRule(threshold=10),
        subject="stage",
        metric=FAILED_PUSHES,
        namespace=NAMESPACE,
    ),
}
"""Every alarm, by the key callers use to override it."""


def resolve_alarm_rules(overrides: Mapping[str, Any] | None) -> dict[str, AlarmRule]:
    """Return each alarm's rule, overrides applied; the disabled ones left out.

    Args:
        overrides: Alarm key → `AlarmOverride`.

    Raises:
        ValueError: An unknown alarm or key, or a value out of range; the message says which.
    """
    overrides = overrides or {}
    if not isinstance(overrides, Mapping):
        raise ValueError(f"alarms must map alarm names to overrides; got {overrides!r}")
    unknown = sorted(set(overrides) - set(ALARMS))
    if unknown:
        raise ValueError(f"alarms: unknown alarm {unknown[0]!r}; known: {', '.join(ALARMS)}")
    rules: dict[str, AlarmRule] = {}
    for key, kind in ALARMS.items():
        rule = _override(key, kind.default, overrides.get(key) or {})
        if rule.enabled:
            rules[key] = rule
    return rules


def _override(key: str, rule: AlarmRule, change: Any) -> AlarmRule:
    where = f"alarms.{key}"
    if not isinstance(change, Mapping):
        raise ValueError(f"{where} must be a mapping of rule keys; got {change!r}")
    known = set(AlarmOverride.__annotations__)
    unknown = sorted(set(change) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}; known: {', '.join(sorted(known))}")
    enabled = change.get("enabled", rule.enabled)
    if not isinstance(enabled, bool):
        raise ValueError(f"{where}.enabled must be true or false; got {enabled!r}")
    period = require_int_range(
        f"{where}.period_seconds", change.get("period_seconds", rule.period_seconds), 60, 86400
    )
    if period % 60:
        raise ValueError(f"{where}.period_seconds must be a multiple of 60; got {period}")
    evaluations = require_int_range(
        f"{where}.evaluation_periods",
        change.get("evaluation_periods", rule.evaluation_periods),
        1,
        _MAX_EVALUATED_SECONDS // period,
    )
    datapoints = require_int_range(
        f"{where}.datapoints_to_alarm",
        change.get("datapoints_to_alarm", min(rule.datapoints_to_alarm, evaluations)),
        1,
        evaluations,
    )
    threshold = require_number_range(
        f"{where}.threshold", change.get("threshold", rule.threshold), 0, 1e12
    )
    return replace(
        rule,
        threshold=threshold,
        period_seconds=period,
        evaluation_periods=evaluations,
        datapoints_to_alarm=datapoints,
        enabled=enabled,
    )
