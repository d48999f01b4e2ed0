"""What the gateway emulator needs to know about a WebSocket API, and how it invokes Lambda.

The realizer (Pulumi mocks → resources) builds these from the program's declared resources;
the gateway serves them. Keeping the contract here lets each side be tested alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "ApiSpec",
    "AuthorizerSpec",
    "CustomDomainSpec",
    "FunctionError",
    "Invoker",
    "Limits",
    "RouteSpec",
]


@dataclass(frozen=True)
class RouteSpec:
    """A route whose integration is an AWS_PROXY Lambda function."""

    route_key: str
    """`$connect`, `$disconnect`, `$default` or a custom key such as `sendmessage`."""
    function_name: str
    """Name of the Lambda function the integration invokes."""


@dataclass(frozen=True)
class AuthorizerSpec:
    """A REQUEST Lambda authorizer, attached to `$connect`."""

    name: str
    function_name: str
    identity_sources: tuple[str, ...]
    """As declared, e.g. `route.request.querystring.idToken` or
    `route.request.header.Sec-WebSocket-Protocol`."""


@dataclass(frozen=True)
class Limits:
    """API Gateway's WebSocket quotas (defaults are AWS's); tests shorten them."""

    max_message_bytes: int = 128 * 1024
    max_frame_bytes: int = 32 * 1024
    idle_timeout_seconds: float = 10 * 60
    max_connection_seconds: float = 2 * 60 * 60
    integration_timeout_seconds: float = 29
    request_timeout_seconds: float = 30
    """Seconds a client has to send a whole HTTP request (a handshake's head, a `@connections`
    head and body), and that a kept-alive connection may sit idle between requests; then the
    gateway closes it, as API Gateway times slow requests out."""


@dataclass(frozen=True)
class CustomDomainSpec:
    """A custom domain name's mapping to an API's stage (recorded: the gateway does not serve
    host names, so locally the API stays at `ws://HOST:PORT/{stage}`)."""

    domain_name: str
    api_id: str
    stage: str
    mapping_key: str = ""
    """The path under the domain (`""`: the stage is mapped at the domain's root)."""

    @property
    def websocket_url(self) -> str:
        """`wss://{domain}` or `wss://{domain}/{key}`: what clients of the deployed API open."""
        key = f"/{self.mapping_key}" if self.mapping_key else ""
        return f"wss://{self.domain_name}{key}"


@dataclass(frozen=True)
class ApiSpec:
    """One WebSocket API with one deployed stage."""

    api_id: str
    name: str
    stage: str
    route_selection_expression: str
    routes: dict[str, RouteSpec]
    connect_authorizer: AuthorizerSpec | None = None
    limits: Limits = field(default_factory=Limits)
    execution_arn: str = ""
    """`arn:aws:execute-api:{region}:{account}:{api_id}`: the prefix of the source ARN of every
    invocation, which the functions' invoke permissions are checked against."""
    authorizer_id: str | None = None
    """The `$connect` authorizer's id (its invocations come from `…/authorizers/{id}`)."""


class FunctionError(Exception):
    """The function failed: it raised, timed out, or its worker died.

    Attributes:
        kind: `Unhandled`, `TimeoutError` or `WorkerDied`, for logs and for API Gateway's 500.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


class Invoker(Protocol):
    """Invokes a Lambda function by name, as API Gateway's AWS_PROXY integration does."""

    async def invoke(self, function_name: str, event: dict[str, Any]) -> Any:
        """Return the function's result (JSON-decoded), or raise `FunctionError`."""
        ...
