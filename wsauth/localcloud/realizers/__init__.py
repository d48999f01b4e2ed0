"""One realizer per AWS service, and the registry that maps Pulumi type tokens to them.

Each module holds one service's realizer (a `ServiceRealizer`: `creators()` maps the type
tokens it realizes to a function that makes the resource locally, `read()` answers
`Resource.get`), as moto keeps one folder per service. Supporting a new resource type is a
creator in its service's module; a new service is a module and a line in `SERVICES`.
"""

from __future__ import annotations

from typing import TypeVar

from wsauth.localcloud.realizers.apigateway import ApiGatewayRealizer
from wsauth.localcloud.realizers.base import (
    Creator,
    RealizeContext,
    RealizeError,
    ServiceRealizer,
)
from wsauth.localcloud.realizers.cognito import CognitoRealizer
from wsauth.localcloud.realizers.dynamodb import DynamoDbRealizer
from wsauth.localcloud.realizers.events import EventsRealizer
from wsauth.localcloud.realizers.iam import IamRealizer
from wsauth.localcloud.realizers.lambda_ import LambdaRealizer
from wsauth.localcloud.realizers.logs import LogsRealizer

__all__ = [
    "SERVICES",
    "ApiGatewayRealizer",
    "CognitoRealizer",
    "DynamoDbRealizer",
    "EventsRealizer",
    "IamRealizer",
    "LambdaRealizer",
    "LogsRealizer",
    "Registry",
    "ServiceRealizer",
]

SERVICES: tuple[type[ServiceRealizer], ...] = (
    CognitoRealizer,
    DynamoDbRealizer,
    IamRealizer,
    LogsRealizer,
    LambdaRealizer,
    ApiGatewayRealizer,
    EventsRealizer,
)
"""Every service the local cloud realizes."""

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
