"""What every service realizer shares: the interface, the realization's context, small helpers.

A service realizer turns the resources of one AWS service that a Pulumi program declares into
something local (moto state, a `FunctionSpec`, an `ApiSpec`, …) and answers Pulumi with the
resource's id and outputs, under the names and in the shapes pulumi-aws gives them.
"""

from __future__ import annotations

import hashlib
import platform
import random
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

__all__ = [
    "ACCOUNT_ID",
    "Creator",
    "RealizeContext",
    "RealizeError",
    "Realized",
    "Recorded",
    "ServiceRealizer",
    "api_domain",
    "auto_name",
    "describe_recorded",
    "drop_none",
    "machine_architecture",
    "random_id",
    "record",
    "stable_id",
    "stable_uuid",
]

ACCOUNT_ID = "123456789012"
"""moto's default account, so ARNs we compute match the ones moto returns."""

Realized = tuple[str, dict[str, Any]]
"""A resource's id and its output properties (Pulumi's wire names)."""

Creator = Callable[[str, dict[str, Any]], Realized]
"""Realize one resource from its logical name and inputs (whole floats already ints)."""


class RealizeError(Exception):
    """The program cannot run locally (unsupported resource, bad input, program failure)."""


def api_domain(api_id: str, region: str) -> str:
    """The host name AWS gives a WebSocket API (its `wss://` and `https://` endpoints)."""
    return f"{api_id}.execute-api.{region}.amazonaws.com"


def machine_architecture() -> str:
    """Return this machine's Lambda architecture name (`x86_64` or `arm64`)."""
    machine = platform.machine().lower()
    return "arm64" if machine in ("aarch64", "arm64") else "x86_64"


_ID_ALPHABET = string.ascii_lowercase + string.digits


def random_id(length: int = 10) -> str:
    """Return an id of lowercase letters and digits, as AWS's generated ids look."""
    return "".join(random.choices(_ID_ALPHABET, k=length))


def stable_id(seed: str, length: int = 10, alphabet: str = _ID_ALPHABET) -> str:
    """Return an AWS-looking id derived from `seed` (the same program gets the same ids on
    every start, where nothing would ever look the id up)."""
    number = int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big")
    characters = []
    for _ in range(length):
        number, index = divmod(number, len(alphabet))
        characters.append(alphabet[index])
    return "".join(characters)


def stable_uuid(seed: str) -> str:
    """Return a UUID-shaped id derived from `seed` (ACM certificates', SNS subscriptions')."""
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def auto_name(name: str) -> str:
    """Pulumi's auto-naming: the logical name plus a random suffix."""
    return f"{name}-{random_id(7)}"


def drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    """Return `values` without its None entries (boto3 refuses None parameters)."""
    return {key: value for key, value in values.items() if value is not None}


def record(name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Outputs of a resource that is only recorded: its inputs, with its name as name and id."""
    resource_name = inputs.get("name") or auto_name(name)
    return {**inputs, "id": resource_name, "name": resource_name}


@dataclass
class Recorded:
    """Resources of one kind that are only recorded (nothing runs locally), as the start-up
    summary names them: `1 SNS topic`, `9 CloudWatch alarms`, `1 custom domain (chat.example.com)`.
    """

    typ: str
    """The Pulumi type token (the summary orders kinds by it within a service)."""
    one: str
    many: str
    count: int = 0
    details: list[str] = field(default_factory=list)
    """What the summary shows in parentheses (a custom domain's name)."""

    def describe(self) -> str:
        """`3 log metric filters`, `1 custom domain (chat.example.com)`."""
        text = f"{self.count} {self.one if self.count == 1 else self.many}"
        if self.details:
            text += f" ({', '.join(sorted(self.details))})"
        return text


def describe_recorded(kinds: list[Recorded]) -> str:
    """The summary's list of recorded resources, e.g. `9 CloudWatch alarms, 1 SNS topic`."""
    return ", ".join(kind.describe() for kind in kinds)


@dataclass
class RealizeContext:
    """What every service realizer of one realization shares.

    Args:
        aws: The started `EmbeddedAws` (moto).
        program_dir: The Pulumi project directory (archive paths are relative to it).
        unpack_dir: Where Lambda archives are unpacked.
    """

    aws: Any
    program_dir: Path
    unpack_dir: Path
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def region(self) -> str:
        """The stack's region (`aws:region`)."""
        region: str = self.aws.region
        return region

    def client(self, service: str) -> Any:
        """Return a boto3 client for the embedded moto server (one per service)."""
        if service not in self._clients:
            self._clients[service] = self.aws.client(service)
        return self._clients[service]


class ServiceRealizer:
    """The resource types of one AWS service, realized locally (one module per service).

    A subclass maps each type token it realizes to a `Creator` in `creators()`, keeps what it
    realized as its own state, and offers that state to the `Realizer` once the program ran.
    Creators run one at a time (the `Realizer` holds a lock), after the resources they depend
    on, as Pulumi orders them.

    Args:
        context: The realization's shared context.
    """

    service: ClassVar[str] = ""
    """The AWS service's name, as boto3 spells it (`lambda`, `cognito-idp`, …)."""

    def __init__(self, context: RealizeContext) -> None:
        self.context = context
        self.recorded: dict[tuple[str, str], Recorded] = {}
        """What this service only recorded, by (type, singular name), for the summary."""

    @property
    def region(self) -> str:
        """The stack's region."""
        return self.context.region

    def note_recorded(self, typ: str, one: str, many: str, detail: str | None = None) -> None:
        """Count a resource that is only recorded under the name the summary gives its kind.

        Args:
            typ: Its type token.
            one: The kind's name for one (`CloudWatch alarm`).
            many: For several (`CloudWatch alarms`).
            detail: Shown after the count in parentheses (a custom domain's name).
        """
        kind = self.recorded.setdefault((typ, one), Recorded(typ, one, many))
        kind.count += 1
        if detail:
            kind.details.append(detail)

    def creators(self) -> Mapping[str, Creator]:
        """Return the Pulumi type tokens this service realizes, each with its creator."""
        raise NotImplementedError

    def read(self, typ: str, name: str, resource_id: str) -> Realized | None:
        """Answer a `Resource.get` of an existing resource; None when it cannot be read."""
        return None
