"""SNS topics and subscriptions: recorded (nothing is published or delivered locally)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wsauth.localcloud.realizers.base import (
    ACCOUNT_ID,
    Creator,
    Realized,
    ServiceRealizer,
    stable_id,
    stable_uuid,
)

__all__ = ["SnsRealizer"]

_TOPIC = "aws:sns/topic:Topic"
_SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"

# Protocols whose subscriptions wait for the endpoint's owner to confirm them.
_CONFIRMED_BY_OWNER = frozenset({"email", "email-json", "http", "https"})


class SnsRealizer(ServiceRealizer):
    """`aws.sns.Topic` and `TopicSubscription`, recorded with their ARNs."""

    service = "sns"

    def creators(self) -> Mapping[str, Creator]:
        return {_TOPIC: self._topic, _SUBSCRIPTION: self._subscription}

    def _topic(self, name: str, inputs: dict[str, Any]) -> Realized:
        topic_name = inputs.get("name")
        if not topic_name:
            prefix = inputs.get("namePrefix") or f"{name}-"
            topic_name = prefix + stable_id(_TOPIC + name, 7)
            if inputs.get("fifoTopic"):
                topic_name += ".fifo"
        arn = f"arn:aws:sns:{self.region}:{ACCOUNT_ID}:{topic_name}"
        self.note_recorded(_TOPIC, "SNS topic", "SNS topics")
        # pulumi-aws's id for a topic is its ARN.
        return arn, {**inputs, "id": arn, "arn": arn, "name": topic_name, "owner": ACCOUNT_ID}

    def _subscription(self, name: str, inputs: dict[str, Any]) -> Realized:
        topic_arn = str(inputs.get("topic") or "")
        protocol = str(inputs.get("protocol") or "")
        arn = f"{topic_arn}:{stable_uuid(_SUBSCRIPTION + name)}"
        pending = protocol in _CONFIRMED_BY_OWNER and not inputs.get("endpointAutoConfirms")
        self.note_recorded(
            _SUBSCRIPTION,
            f"{protocol} subscription" if protocol else "SNS subscription",
            f"{protocol} subscriptions" if protocol else "SNS subscriptions",
        )
        return arn, {
            **inputs,
            "id": arn,
            "arn": arn,
            "ownerId": ACCOUNT_ID,
            "pendingConfirmation": pending,
            "confirmationWasAuthenticated": False,
        }
