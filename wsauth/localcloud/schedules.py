"""EventBridge schedules run locally: each rule's Lambda targets, on the rule's `rate(...)`.

The realizer (`realizers/events.py`) turns the program's `aws.cloudwatch.EventRule`s and
`EventTarget`s into `RuleSpec`s; the `Scheduler` runs them while the local cloud serves. As in
AWS, a target runs only if one of the function's `aws.lambda_.Permission`s lets
`events.amazonaws.com` invoke it from the rule's ARN, and it gets a "Scheduled Event". A run of
a rule never overlaps the previous one (a tick that finds it still going is skipped); stopping
cancels what is in flight. `cron(...)` schedules are kept but not run: only the interval of a
`rate(...)` is known without a cron engine, and tests want `--sweep-interval` anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from wsauth.localcloud.permissions import EVENTS_PRINCIPAL, InvokePermission
from wsauth.localcloud.spec import FunctionError, Invoker

__all__ = [
    "RuleSpec",
    "RuleTarget",
    "Scheduler",
    "rate_seconds",
    "scheduled_event",
]

log = logging.getLogger("wsauth.localcloud.schedules")

_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_UNIT_SECONDS = {"minute": 60, "hour": 60 * 60, "day": 24 * 60 * 60}


def rate_seconds(expression: str) -> float | None:
    """Return the period of a `rate(...)` schedule in seconds, or None for a `cron(...)` one.

    Args:
        expression: A rule's schedule expression, e.g. `rate(1 minute)`, `rate(5 minutes)`.

    Returns:
        Seconds between runs; None for `cron(...)`, which the local cloud does not run.

    Raises:
        ValueError: Neither form, or a rate EventBridge refuses: the value must be a whole
            number ≥ 1, with the singular unit for 1 and the plural otherwise.
    """
    if expression.startswith("cron(") and expression.endswith(")"):
        return None
    match = _RATE.fullmatch(expression)
    if match is None:
        raise ValueError(
            f"schedule {expression!r}: write rate(N minute|minutes|hour|hours|day|days) or "
            "cron(...)"
        )
    value, unit = int(match[1]), match[2]
    singular = unit.removesuffix("s")
    if value < 1:
        raise ValueError(f"schedule {expression!r}: the rate must be at least 1 {singular}")
    if (value == 1) != (unit == singular):
        raise ValueError(
            f"schedule {expression!r}: EventBridge wants the singular unit for 1 and the plural "
            f"otherwise, e.g. rate(1 {singular}) or rate({max(value, 2)} {singular}s)"
        )
    return float(value * _UNIT_SECONDS[singular])


@dataclass(frozen=True)
class RuleTarget:
    """One `aws.cloudwatch.EventTarget` of a rule."""

    target_id: str
    arn: str
    function_name: str | None
    """The program's Lambda function the ARN names; None for any other target."""
    input: str | None = None
    """Constant JSON text delivered instead of the event."""
    input_path: str | None = None
    """A JSONPath (`$` or `$.a.b`) selecting what of the event is delivered."""
    input_transformer: bool = False
    """Whether the target reshapes the event with an input transformer (not run locally)."""


@dataclass(frozen=True)
class RuleSpec:
    """One `aws.cloudwatch.EventRule` with its targets."""

    name: str
    arn: str
    schedule_expression: str | None
    """`rate(...)` or `cron(...)`; None for a rule that matches events (`event_pattern`)."""
    enabled: bool = True
    targets: tuple[RuleTarget, ...] = ()


def scheduled_event(rule_arn: str, now: datetime | None = None) -> dict[str, Any]:
    """Return the event EventBridge sends a scheduled rule's targets.

    Account and region are the rule's (taken from its ARN, `arn:aws:events:REGION:ACCOUNT:…`).
    """
    _, _, _, region, account, _ = rule_arn.split(":", 5)
    moment = now or datetime.now(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


def _target_input(target: RuleTarget, event: dict[str, Any]) -> Any:
    if target.input is not None:
        return json.loads(target.input)
    if target.input_path is not None:
        selected: Any = event
        for key in target.input_path.removeprefix("$").split(".")[1:]:
            selected = selected.get(key) if isinstance(selected, dict) else None
        return selected
    return event


@dataclass(frozen=True)
class _Plan:
    rule: RuleSpec
    interval: float
    targets: tuple[RuleTarget, ...]
    """The rule's targets that run: functions of this program an events permission allows."""


class Scheduler:
    """Runs the rules' Lambda targets on their `rate(...)` schedules while the cloud serves.

    Args:
        rules: The program's EventBridge rules.
        invoker: Runs the functions (the Lambda worker pool).
        permissions: The program's Lambda invoke permissions.
        interval_seconds: When given, every `rate(...)` rule runs this often instead (tests).
    """

    def __init__(
        self,
        rules: Iterable[RuleSpec],
        invoker: Invoker,
        permissions: Iterable[InvokePermission],
        *,
        interval_seconds: float | None = None,
    ) -> None:
        if interval_seconds is not None and not interval_seconds > 0:
            raise ValueError(f"interval_seconds must be > 0, not {interval_seconds}")
        self._rules = tuple(rules)
        self._invoker = invoker
        self._permissions = tuple(permissions)
        self._interval = interval_seconds
        self._tasks: list[asyncio.Task[None]] = []

    def _plans(self) -> list[_Plan]:
        """Decide what runs, logging once why anything declared does not."""
        plans = []
        for rule in self._rules:
            expression = rule.schedule_expression
            declared = ", ".join(target.function_name or target.arn for target in rule.targets)
            if expression is None:
                if declared:
                    log.warning(
                        "rule %s matches events (event_pattern), which the local cloud does not "
                        "emit: its targets (%s) do not run",
                        rule.name,
                        declared,
                    )
                continue
            period = rate_seconds(expression)
            if period is None:
                log.warning(
                    "schedule %s (%s) is recorded but not run locally: only rate() schedules run%s",
                    rule.name,
                    expression,
                    f" ({declared} will not run)" if declared else "",
                )
                continue
            if not rule.enabled:
                log.info("schedule %s (%s) is disabled: not run", rule.name, expression)
                continue
            targets = tuple(self._runnable_targets(rule))
            if not targets:
                continue
            interval = self._interval if self._interval is not None else period
            log.info(
                "schedule %s (%s) runs %s every %g s%s",
                rule.name,
                expression,
                ", ".join(dict.fromkeys(str(target.function_name) for target in targets)),
                interval,
                " (--sweep-interval)" if self._interval is not None else "",
            )
            plans.append(_Plan(rule, interval, targets))
        return plans

    def _runnable_targets(self, rule: RuleSpec) -> list[RuleTarget]:
        runnable = []
        for target in rule.targets:
            if target.function_name is None:
                log.warning(
                    "rule %s: target %s (%s) is not a Lambda function of this program: not run "
                    "locally",
                    rule.name,
                    target.target_id,
                    target.arn,
                )
            elif target.input_transformer:
                log.warning(
                    "rule %s: target %s uses an input transformer, which the local cloud does "
                    "not apply: not run locally",
                    rule.name,
                    target.function_name,
                )
            elif not any(
                permission.allows(target.function_name, rule.arn, EVENTS_PRINCIPAL)
                for permission in self._permissions
            ):
                log.warning(
                    "no permission lets %s invoke %s from %s: add an aws.lambda_.Permission "
                    "(principal %s, source_arn the rule's arn); EventBridge would not run it, "
                    "and neither does the local cloud",
                    EVENTS_PRINCIPAL,
                    target.function_name,
                    rule.arn,
                    EVENTS_PRINCIPAL,
                )
            else:
                runnable.append(target)
        return runnable

    def start(self) -> None:
        """Start a timer per rule that has something to run (call from the event loop)."""
        self._tasks = [asyncio.create_task(self._every(plan)) for plan in self._plans()]

    async def close(self) -> None:
        """Stop the timers and cancel the runs in flight; return once all have ended."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _every(self, plan: _Plan) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + plan.interval
        running: asyncio.Task[None] | None = None
        try:
            while True:
                await asyncio.sleep(max(0.0, due - loop.time()))
                # Missed ticks (a slow run, a busy loop) are dropped, not run in a burst.
                due = max(due + plan.interval, loop.time())
                if running is not None and not running.done():
                    log.debug("schedule %s: previous run still going, tick skipped", plan.rule.name)
                    continue
                running = asyncio.create_task(self._run(plan))
        finally:
            if running is not None and not running.done():
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running

    async def _run(self, plan: _Plan) -> None:
        # One event per firing, the same for every target (as EventBridge delivers it).
        event = scheduled_event(plan.rule.arn)
        await asyncio.gather(*(self._invoke(plan.rule, target, event) for target in plan.targets))

    async def _invoke(self, rule: RuleSpec, target: RuleTarget, event: dict[str, Any]) -> None:
        assert target.function_name is not None
        began = time.perf_counter()
        error: str | None = None
        try:
            await self._invoker.invoke(target.function_name, _target_input(target, event))
        except FunctionError as failure:
            error = str(failure)
        except Exception as failure:  # a timer must outlive any one run
            error = f"{type(failure).__name__}: {failure}"
        elapsed_ms = (time.perf_counter() - began) * 1000
        if error is None:
            log.info(
                "scheduled %s (%s) ran in %.0f ms", target.function_name, rule.name, elapsed_ms
            )
        else:
            log.info(
                "scheduled %s (%s) failed in %.0f ms: %s",
                target.function_name,
                rule.name,
                elapsed_ms,
                error,
            )
