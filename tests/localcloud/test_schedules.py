"""The scheduler on its own: rate parsing, the Scheduled Event, permissions, timing, stopping.

A recording invoker stands in for the Lambda worker pool (the end-to-end tests in
`test_local_schedules.py` use the real one); intervals are tens of milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from wsauth.localcloud.lambdas import FunctionSpec
from wsauth.localcloud.permissions import InvokePermission
from wsauth.localcloud.runner import _point_functions_at_their_api
from wsauth.localcloud.schedules import (
    RuleSpec,
    RuleTarget,
    Scheduler,
    rate_seconds,
    scheduled_event,
)
from wsauth.localcloud.spec import ApiSpec, FunctionError, RouteSpec

RULE_ARN = "arn:aws:events:eu-west-1:123456789012:rule/sweep"
FUNCTION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:sweeper"
INTERVAL = 0.02


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(1 hour)", 3600),
        ("rate(12 hours)", 43200),
        ("rate(1 day)", 86400),
        ("rate(7 days)", 604800),
        ("cron(0 12 * * ? *)", None),
        ("cron(0/5 8-17 ? * MON-FRI *)", None),
    ],
)
def test_rate_gives_seconds_and_cron_none(expression: str, seconds: float | None) -> None:
    """A rate is its period in seconds; a cron schedule has none the local cloud runs."""
    assert rate_seconds(expression) == seconds


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("rate(5 minute)", "singular unit for 1 and the plural otherwise"),
        ("rate(1 minutes)", "singular unit for 1 and the plural otherwise"),
        ("rate(0 minutes)", "at least 1 minute"),
        ("rate(1 second)", "write rate(N minute|minutes"),
        ("rate(1.5 hours)", "write rate(N minute|minutes"),
        ("rate(-1 day)", "write rate(N minute|minutes"),
        ("rate(1  minute)", "write rate(N minute|minutes"),
        ("rate(1 minute", "write rate(N minute|minutes"),
        ("every minute", "write rate(N minute|minutes"),
        ("", "write rate(N minute|minutes"),
    ],
)
def test_rate_refuses_what_eventbridge_refuses(expression: str, message: str) -> None:
    """A malformed rate is an error that says what to write."""
    with pytest.raises(ValueError, match=re.escape(message)):
        rate_seconds(expression)


def test_scheduled_event_has_eventbridges_shape() -> None:
    """Account and region come from the rule's ARN; time is ISO 8601 in UTC to the second."""
    moment = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
    event = scheduled_event(RULE_ARN, moment)
    assert re.fullmatch(r"[0-9a-f-]{36}", event.pop("id"))
    assert event == {
        "version": "0",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-03-04T05:06:07Z",
        "region": "eu-west-1",
        "resources": [RULE_ARN],
        "detail": {},
    }
    assert scheduled_event(RULE_ARN)["id"] != scheduled_event(RULE_ARN)["id"]


class RecordingInvoker:
    """Records invocations; `behaviour` decides what each one does (awaited)."""

    def __init__(self, behaviour: Callable[[], Awaitable[Any]] | None = None) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.running = 0
        self.most_running = 0
        self.cancelled = 0
        self._behaviour = behaviour
        self._changed = asyncio.Event()

    async def invoke(self, function_name: str, event: dict[str, Any]) -> Any:
        self.events.append((function_name, event))
        self._changed.set()
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            if self._behaviour is not None:
                return await self._behaviour()
            return None
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.running -= 1

    async def wait_for(self, count: int, timeout: float = 5) -> None:
        async with asyncio.timeout(timeout):
            while len(self.events) < count:
                self._changed.clear()
                await self._changed.wait()


def _rule(
    expression: str | None = "rate(1 minute)", *targets: RuleTarget, enabled: bool = True
) -> RuleSpec:
    return RuleSpec(
        name="sweep",
        arn=RULE_ARN,
        schedule_expression=expression,
        enabled=enabled,
        targets=targets or (RuleTarget("t1", FUNCTION_ARN, "sweeper"),),
    )


def _permission(
    source_arn: str | None = RULE_ARN,
    principal: str = "events.amazonaws.com",
    action: str = "lambda:InvokeFunction",
) -> InvokePermission:
    return InvokePermission("sweeper", action, principal, source_arn)


async def _run_for(scheduler: Scheduler, invoker: RecordingInvoker, count: int) -> None:
    scheduler.start()
    try:
        await invoker.wait_for(count)
    finally:
        await scheduler.close()


@pytest.mark.parametrize(
    "permission",
    [_permission(), _permission(None), _permission("arn:aws:events:eu-west-1:123456789012:*")],
    ids=["the rule's ARN", "any source", "a wildcard"],
)
def test_permitted_target_runs_repeatedly_with_the_scheduled_event(
    permission: InvokePermission,
) -> None:
    """Each tick invokes the target with a Scheduled Event from its rule, a new id each time."""
    invoker = RecordingInvoker()
    scheduler = Scheduler([_rule()], invoker, [permission], interval_seconds=INTERVAL)
    asyncio.run(_run_for(scheduler, invoker, 3))
    assert {name for name, _ in invoker.events} == {"sweeper"}
    assert all(event["resources"] == [RULE_ARN] for _, event in invoker.events)
    assert len({event["id"] for _, event in invoker.events}) == len(invoker.events)


@pytest.mark.parametrize(
    "permission",
    [
        _permission("arn:aws:events:eu-west-1:123456789012:rule/other"),
        _permission(principal="apigateway.amazonaws.com"),
        _permission(action="lambda:GetFunction"),
    ],
    ids=["another rule", "another principal", "another action"],
)
def test_unpermitted_target_never_runs_and_is_warned_about_once(
    permission: InvokePermission, caplog: pytest.LogCaptureFixture
) -> None:
    """Without a permission for events.amazonaws.com from the rule, the target never runs."""
    invoker = RecordingInvoker()
    permitted = RuleSpec(
        "other",
        "arn:aws:events:eu-west-1:123456789012:rule/other",
        "rate(1 minute)",
        targets=(RuleTarget("t2", FUNCTION_ARN, "other"),),
    )
    others = InvokePermission("other", "lambda:InvokeFunction", "events.amazonaws.com", None)
    scheduler = Scheduler(
        [_rule(), permitted], invoker, [permission, others], interval_seconds=INTERVAL
    )
    with caplog.at_level(logging.INFO, "wsauth.localcloud.schedules"):
        # GIVEN a permitted rule on the same interval, whose runs show time has passed
        asyncio.run(_run_for(scheduler, invoker, 4))
    assert {name for name, _ in invoker.events} == {"other"}
    warnings = [r.getMessage() for r in caplog.records if "no permission lets" in r.getMessage()]
    assert warnings == [
        f"no permission lets events.amazonaws.com invoke sweeper from {RULE_ARN}: add an "
        "aws.lambda_.Permission (principal events.amazonaws.com, source_arn the rule's arn); "
        "EventBridge would not run it, and neither does the local cloud"
    ]


@pytest.mark.parametrize(
    ("rule", "logged"),
    [
        (
            _rule("cron(0 12 * * ? *)"),
            "schedule sweep (cron(0 12 * * ? *)) is recorded but not run locally: only rate() "
            "schedules run (sweeper will not run)",
        ),
        (_rule(enabled=False), "schedule sweep (rate(1 minute)) is disabled: not run"),
        (
            _rule(None),
            "rule sweep matches events (event_pattern), which the local cloud does not emit: "
            "its targets (sweeper) do not run",
        ),
        (
            _rule("rate(1 minute)", RuleTarget("q", "arn:aws:sqs:eu-west-1:1:q", None)),
            "rule sweep: target q (arn:aws:sqs:eu-west-1:1:q) is not a Lambda function of this "
            "program: not run locally",
        ),
        (
            _rule(
                "rate(1 minute)", RuleTarget("t", FUNCTION_ARN, "sweeper", input_transformer=True)
            ),
            "rule sweep: target sweeper uses an input transformer, which the local cloud does "
            "not apply: not run locally",
        ),
    ],
    ids=["cron", "disabled", "event pattern", "not a function", "input transformer"],
)
def test_what_does_not_run_locally_is_named_and_not_started(
    rule: RuleSpec, logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A schedule or target the local cloud does not run is logged once; no timer starts."""
    invoker = RecordingInvoker()
    scheduler = Scheduler([rule], invoker, [_permission(None)], interval_seconds=INTERVAL)

    async def scenario() -> int:
        scheduler.start()
        started = len(scheduler._tasks)
        await scheduler.close()
        return started

    with caplog.at_level(logging.INFO, "wsauth.localcloud.schedules"):
        assert asyncio.run(scenario()) == 0
    assert [record.getMessage() for record in caplog.records] == [logged]
    assert invoker.events == []


def test_runs_of_one_rule_never_overlap() -> None:
    """A tick that finds the previous run still going is skipped."""

    async def slow() -> None:
        await asyncio.sleep(INTERVAL * 5)

    invoker = RecordingInvoker(slow)
    scheduler = Scheduler([_rule()], invoker, [_permission()], interval_seconds=INTERVAL)
    asyncio.run(_run_for(scheduler, invoker, 3))
    assert invoker.most_running == 1


def test_a_failing_run_is_logged_and_the_schedule_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A function error is one INFO line with the error; the next tick runs again."""

    async def fail() -> None:
        raise FunctionError("Unhandled", "KeyError: 'CONNECTION_TABLE_NAME'")

    invoker = RecordingInvoker(fail)
    scheduler = Scheduler([_rule()], invoker, [_permission()], interval_seconds=INTERVAL)
    with caplog.at_level(logging.INFO, "wsauth.localcloud.schedules"):
        asyncio.run(_run_for(scheduler, invoker, 3))
    failures = [r for r in caplog.records if "failed in" in r.getMessage()]
    assert len(failures) >= 2
    assert all(r.levelno == logging.INFO for r in failures)
    assert re.fullmatch(
        r"scheduled sweeper \(sweep\) failed in \d+ ms: "
        r"Unhandled: KeyError: 'CONNECTION_TABLE_NAME'",
        failures[0].getMessage(),
    )


def test_close_cancels_the_run_in_flight() -> None:
    """Stopping does not wait for a run that would never end; nothing runs afterwards."""

    async def forever() -> None:
        await asyncio.Event().wait()

    invoker = RecordingInvoker(forever)
    scheduler = Scheduler([_rule()], invoker, [_permission()], interval_seconds=INTERVAL)

    async def scenario() -> None:
        scheduler.start()
        await invoker.wait_for(1)
        async with asyncio.timeout(2):
            await scheduler.close()
        await asyncio.sleep(INTERVAL * 3)

    asyncio.run(scenario())
    assert (len(invoker.events), invoker.cancelled, invoker.running) == (1, 1, 0)


@pytest.mark.parametrize(
    ("target", "delivered"),
    [
        (RuleTarget("t", FUNCTION_ARN, "sweeper", input='{"mode": "full"}'), {"mode": "full"}),
        (RuleTarget("t", FUNCTION_ARN, "sweeper", input_path="$.detail"), {}),
        (RuleTarget("t", FUNCTION_ARN, "sweeper", input_path="$.source"), "aws.events"),
    ],
    ids=["constant input", "input path to an object", "input path to a string"],
)
def test_target_input_replaces_the_event(target: RuleTarget, delivered: Any) -> None:
    """A target's constant input, or the part of the event its input path selects, is sent."""
    invoker = RecordingInvoker()
    scheduler = Scheduler(
        [_rule("rate(1 day)", target)], invoker, [_permission()], interval_seconds=INTERVAL
    )
    asyncio.run(_run_for(scheduler, invoker, 1))
    assert invoker.events[0] == ("sweeper", delivered)


def test_interval_must_be_positive() -> None:
    """A zero interval would spin; it is refused."""
    with pytest.raises(ValueError, match="> 0"):
        Scheduler([], RecordingInvoker(), [], interval_seconds=0)


def _gateway(api_id: str, stage: str, port: int, *functions: str) -> Any:
    routes = {f"r{index}": RouteSpec(f"r{index}", name) for index, name in enumerate(functions)}
    api = ApiSpec(api_id, api_id, stage, "$request.body.action", routes)
    return SimpleNamespace(api=api, management_url=lambda: f"http://127.0.0.1:{port}/{stage}")


def _function(name: str, **environment: str) -> FunctionSpec:
    return FunctionSpec(name=name, handler="h.handler", code_dir=Path("."), environment=environment)


def test_a_scheduled_function_gets_the_management_endpoint_of_the_api_it_names() -> None:
    """MANAGEMENT_ENDPOINT naming an API's execute-api URL points boto3 at that API's gateway,
    also when another API is the first; a route's function keeps its own API's."""
    region = "eu-west-1"
    second_url = "https://bbb222.execute-api.eu-west-1.amazonaws.com/live"
    lambdas = SimpleNamespace(
        runtime_environment={},
        functions={
            "ws-a": _function("ws-a"),
            "ws-b": _function("ws-b"),
            "sweeper-b": _function("sweeper-b", MANAGEMENT_ENDPOINT=second_url),
            "other": _function("other", MANAGEMENT_ENDPOINT="https://example.com/prod"),
        },
    )
    gateways = [_gateway("aaa111", "prod", 9000, "ws-a"), _gateway("bbb222", "live", 9003, "ws-b")]
    _point_functions_at_their_api(lambdas, gateways, region)
    variable = "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI"
    given = {
        name: spec.runtime_environment.get(variable, lambdas.runtime_environment[variable])
        for name, spec in lambdas.functions.items()
    }
    assert given == {
        "ws-a": "http://127.0.0.1:9000/prod",
        "ws-b": "http://127.0.0.1:9003/live",
        "sweeper-b": "http://127.0.0.1:9003/live",
        "other": "http://127.0.0.1:9000/prod",
    }
    # The program's own variable stays as declared: the handler prefers the endpoint variable.
    assert lambdas.functions["sweeper-b"].environment["MANAGEMENT_ENDPOINT"] == second_url
