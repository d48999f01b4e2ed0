"""EventBridge rules and targets (`aws.cloudwatch.EventRule`, `EventTarget`), for the scheduler.

A rule's schedule is checked as EventBridge checks it when the rule is created, so a malformed
`rate(...)` fails here rather than on `pulumi up`. Rules and targets are assembled into
`RuleSpec`s once the program ran (`rules`): a target names its rule by name and its function by
ARN, both known only then.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from wsauth.localcloud.realizers.base import (
    ACCOUNT_ID,
    Creator,
    RealizeContext,
    Realized,
    RealizeError,
    ServiceRealizer,
    auto_name,
    random_id,
)
from wsauth.localcloud.realizers.lambda_ import LambdaRealizer, function_name_of
from wsauth.localcloud.schedules import RuleSpec, RuleTarget, rate_seconds

__all__ = ["EventsRealizer"]

_DEFAULT_BUS = "default"


def _bus_name(inputs: Mapping[str, Any]) -> str:
    # The bus may be given by name or by ARN (`…:event-bus/NAME`).
    bus = str(inputs.get("eventBusName") or _DEFAULT_BUS)
    return bus.rsplit("/", 1)[-1] if bus.startswith("arn:") else bus


class EventsRealizer(ServiceRealizer):
    """Rules (with a schedule or an event pattern) and their targets."""

    service = "events"

    def __init__(self, context: RealizeContext) -> None:
        super().__init__(context)
        self._rules: dict[tuple[str, str], dict[str, Any]] = {}  # (bus, name) → outputs
        self._targets: list[dict[str, Any]] = []

    def creators(self) -> Mapping[str, Creator]:
        return {
            "aws:cloudwatch/eventRule:EventRule": self._rule,
            "aws:cloudwatch/eventTarget:EventTarget": self._target,
        }

    def _rule(self, name: str, inputs: dict[str, Any]) -> Realized:
        prefix = inputs.get("namePrefix")
        rule_name = inputs.get("name") or (
            f"{prefix}{random_id(26)}" if prefix else auto_name(name)
        )
        bus = _bus_name(inputs)
        schedule = inputs.get("scheduleExpression") or None
        if schedule is None and not inputs.get("eventPattern"):
            raise RealizeError("a rule needs a schedule_expression or an event_pattern")
        if schedule is not None:
            if bus != _DEFAULT_BUS:
                raise RealizeError(
                    f"schedule_expression on event bus {bus!r}: EventBridge runs schedules only "
                    "on the default bus"
                )
            try:
                rate_seconds(schedule)
            except ValueError as error:
                raise RealizeError(str(error)) from None
        path = rule_name if bus == _DEFAULT_BUS else f"{bus}/{rule_name}"
        outputs = {
            **inputs,
            # pulumi-aws's id: the name on the default bus, `bus/name` on another.
            "id": path,
            "name": rule_name,
            "eventBusName": bus,
            "arn": f"arn:aws:events:{self.region}:{ACCOUNT_ID}:rule/{path}",
        }
        self._rules[(bus, rule_name)] = outputs
        return path, outputs

    def _target(self, name: str, inputs: dict[str, Any]) -> Realized:
        if not inputs.get("rule") or not inputs.get("arn"):
            raise RealizeError("a target needs a rule and an arn")
        if inputs.get("input") is not None:
            try:
                json.loads(inputs["input"])
            except ValueError:
                raise RealizeError("input is not JSON text (EventBridge refuses it)") from None
        target_id = inputs.get("targetId") or auto_name(name)
        bus = _bus_name(inputs)
        outputs = {**inputs, "targetId": target_id, "eventBusName": bus}
        self._targets.append(outputs)
        # pulumi-aws's id: `rule-target` on the default bus, `bus/rule/target` on another.
        if bus == _DEFAULT_BUS:
            target_path = f"{inputs['rule']}-{target_id}"
        else:
            target_path = f"{bus}/{inputs['rule']}/{target_id}"
        return target_path, {**outputs, "id": target_path}

    # --- after the program ran --------------------------------------------------------------

    def rules(self, lambdas: LambdaRealizer) -> list[RuleSpec]:
        """Assemble each rule with its targets, ordered by rule name.

        Raises:
            RealizeError: A target names a rule the program does not declare.
        """
        targets: dict[tuple[str, str], list[RuleTarget]] = {key: [] for key in self._rules}
        for target in self._targets:
            key = (target["eventBusName"], target["rule"])
            if key not in targets:
                raise RealizeError(
                    f"event target {target['targetId']} names rule {target['rule']!r}, which "
                    "this program does not declare"
                )
            targets[key].append(
                RuleTarget(
                    target_id=target["targetId"],
                    arn=target["arn"],
                    function_name=_lambda_target(target["arn"], lambdas),
                    input=target.get("input"),
                    input_path=target.get("inputPath"),
                    input_transformer=bool(target.get("inputTransformer")),
                )
            )
        return [
            RuleSpec(
                name=rule["name"],
                arn=rule["arn"],
                schedule_expression=rule.get("scheduleExpression") or None,
                enabled=_enabled(rule),
                targets=tuple(targets[key]),
            )
            for key, rule in sorted(self._rules.items())
        ]


def _enabled(rule: Mapping[str, Any]) -> bool:
    # `state` (ENABLED, DISABLED, ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS) replaced the
    # older boolean `isEnabled`; either may be set.
    state = rule.get("state")
    if state:
        return str(state) != "DISABLED"
    return rule.get("isEnabled") is not False


def _lambda_target(arn: str, lambdas: LambdaRealizer) -> str | None:
    """The name of this program's function a target ARN names (qualified or not), if any."""
    if not arn.startswith("arn:aws:lambda:") or ":function:" not in arn:
        return None
    base = f"{arn.split(':function:', 1)[0]}:function:{function_name_of(arn)}"
    return lambdas.function_for_arn(base)
