"""One realizer per AWS service, and the registry that maps Pulumi type tokens to them.

Each module holds one service's realizer (a `ServiceRealizer`: `creators()` maps the type
tokens it realizes to a function that makes the resource locally, `read()` answers
`Resource.get`), as moto keeps one folder per service. Supporting a new resource type is a
creator in its service's module; a new service is a module and a line in `SERVICES`. A type
with nothing to run locally (an alarm, a DNS record) is still realized: *recorded*, answering
with the outputs AWS would give it, and counted for the start-up summary (`note_recorded`).
"""

from __future__ import annotations

from typing import TypeVar

from wsauth.localcloud.realizers.acm import AcmRealizer
from wsauth.localcloud.realizers.apigateway import ApiGatewayRealizer
from wsauth.localcloud.realizers.base import (
    Creator,
    RealizeContext,
    RealizeError,
    Recorded,
    ServiceRealizer,
)
from wsauth.localcloud.realizers.cloudwatch import CloudWatchRealizer
from wsauth.localcloud.realizers.cognito import CognitoRealizer
from wsauth.localcloud.realizers.dynamodb import DynamoDbRealizer
from wsauth.localcloud.realizers.events import EventsRealizer
from wsauth.localcloud.realizers.iam import IamRealizer
from wsauth.localcloud.realizers.lambda_ import LambdaRealizer
from wsauth.localcloud.realizers.logs import LogsRealizer
from wsauth.localcloud.realizers.route53 import Route53Realizer
from wsauth.localcloud.realizers.sns import SnsRealizer

__all__ = [
    "SERVICES",
    "AcmRealizer",
    "ApiGatewayRealizer",
    "CloudWatchRealizer",
    "CognitoRealizer",
    "DynamoDbRealizer",
    "EventsRealizer",
    "IamRealizer",
    "LambdaRealizer",
    "LogsRealizer",
    "Registry",
    "Route53Realizer",
    "ServiceRealizer",
    "SnsRealizer",
]

SERVICES: tuple[type[ServiceRealizer], ...] = (
    CloudWatchRealizer,
    LogsRealizer,
    SnsRealizer,
    ApiGatewayRealizer,
    AcmRealizer,
    Route53Realizer,
    CognitoRealizer,
    DynamoDbRealizer,
    LambdaRealizer,
    EventsRealizer,
    IamRealizer,
)
"""Every service the local cloud realizes, in the order the start-up summary names what they
only record (monitoring first, IAM last)."""

S = TypeVar("S", bound=ServiceRealizer)


class Registry:
    """The service realizers of one realization, by the resource types they realize.

    Args:
        context: What the realizers share (moto, the program's directory).
        services: The realizer classes (`SERVICES` by default), each instantiated once.

    Raises:
        RealizeError: Two services claim the same type.
    """

    def __init__(
        self, context: RealizeContext, services: tuple[type[ServiceRealizer], ...] = SERVICES
    ) -> None:
        self._services: dict[type[ServiceRealizer], ServiceRealizer] = {
            cls: cls(context) for cls in services
        }
        self._by_type: dict[str, tuple[ServiceRealizer, Creator]] = {}
        for realizer in self._services.values():
            for typ, creator in realizer.creators().items():
                if typ in self._by_type:
                    raise RealizeError(f"{typ} is claimed by two services")
                self._by_type[typ] = (realizer, creator)

    def creator(self, typ: str) -> Creator | None:
        """Return the function that realizes resources of type `typ`; None if unsupported."""
        found = self._by_type.get(typ)
        return found[1] if found else None

    def realizer(self, typ: str) -> ServiceRealizer | None:
        """Return the service realizer of type `typ`; None if unsupported."""
        found = self._by_type.get(typ)
        return found[0] if found else None

    def service(self, cls: type[S]) -> S:
        """Return this realization's instance of a service realizer class."""
        realizer = self._services[cls]
        assert isinstance(realizer, cls)
        return realizer

    def types(self) -> frozenset[str]:
        """Every type token some service realizes."""
        return frozenset(self._by_type)

    def recorded(self) -> list[Recorded]:
        """What the services only recorded, one entry per kind, in a stable order (services as
        in `SERVICES`, then each service's types as its `creators()` lists them): resources
        register from a thread pool, so arrival order varies."""
        position = {typ: index for index, typ in enumerate(self._by_type)}
        found: list[Recorded] = []
        for realizer in self._services.values():
            found.extend(
                sorted(
                    realizer.recorded.values(),
                    key=lambda kind: (position.get(kind.typ, len(position)), kind.one),
                )
            )
        return found
