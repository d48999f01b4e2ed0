"""The settings of `SecuredWebSocketApi`: what each means, its default, and its validation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Required, TypedDict

import pulumi

from . import packaging
from ._validation import (
    require_choice,
    require_int_range,
    require_log_retention,
    require_number_range,
    require_pattern,
)
from .region_logging import require_cloudwatch_role

__all__ = [
    "REFRESH_ROUTE_KEY",
    "SIGN_OUT_ROUTE_KEY",
    "RESERVED_ROUTE_KEYS",
    "SESSION_EXPIRY_MODES",
    "TOKEN_SOURCES",
    "TOKEN_USES",
    "SecuredWebSocketApiArgs",
    "SecuredWebSocketApiSettings",
    "Settings",
    "require_route_key",
    "validate",
]

REFRESH_ROUTE_KEY = "refreshToken"
SIGN_OUT_ROUTE_KEY = "signOutEverywhere"
SESSION_EXPIRY_MODES = ("enforce", "off")
TOKEN_USES = ("id", "access")
TOKEN_SOURCES = ("query", "protocol")
RESERVED_ROUTE_KEYS = ("$connect", "$disconnect", "$default")

# API Gateway gives up on an integration (and on a Lambda authorizer) after 29 seconds, so a
# longer function timeout would only keep paying for work nobody waits for.
_MAX_TIMEOUT_SECONDS = 29
# API Gateway closes every WebSocket connection after 2 hours; an item must outlive that, or a
# live connection would vanish from the table and stop receiving messages.
_MIN_CONNECTION_TTL_SECONDS = 2 * 60 * 60
_MAX_CONNECTION_TTL_SECONDS = 7 * 24 * 60 * 60
_NAME_PATTERN = r"[A-Za-z0-9_-]{1,128}"
_ROUTE_KEY_PATTERN = r"[A-Za-z0-9_.:-]{1,128}"


class SecuredWebSocketApiSettings(TypedDict, total=False):
    """The plain-valued part of `SecuredWebSocketApiArgs`: every key optional, each validated
    (by `SecuredWebSocketApi.validate`) before anything is created."""

    stage_name: str
    """Stage name: letters, digits, `-`, `_`, 1 to 128 characters (default `prod`)."""
    token_use: str
    """`id` (default) or `access`: which Cognito token opens a connection."""
    token_source: str
    """`query` (default: `?{token_query_key}=<JWT>`) or `protocol` (`Sec-WebSocket-Protocol`)."""
    token_query_key: str
    """Query string key of the token when token_source is `query` (default `idToken`)."""
    clock_leeway_seconds: int
    """Clock skew tolerated on `exp`/`nbf`, 0 to 300 seconds (default 0)."""
    connection_ttl_seconds: int
    """How long a connection item lives if `$disconnect` never runs, 7200 s (API Gateway's
    maximum connection duration) to 7 days (default 10800)."""
    lambda_architecture: str
    """`arm64` (default: cheaper per millisecond) or `x86_64`."""
    lambda_runtime: str
    """`python3.13` (default), `python3.12`, or `python3.11` (kept for the local cloud)."""
    log_retention_days: int
    """Retention of every log group, one of CloudWatch's allowed values (default 30)."""
    throttling_burst_limit: int
    """Stage-wide burst of requests API Gateway admits, an integer >= 0 (default 200)."""
    throttling_rate_limit: float
    """Stage-wide steady requests per second API Gateway admits, >= 0 (default 100)."""
    access_logging: bool
    """JSON access logs to a log group of the stage's own (default True). Needs the region's
    API Gateway CloudWatch role: see cloudwatch_role."""
    cloudwatch_role: str
    """With access logs, how the region's API Gateway CloudWatch role is set before the stage:
    `auto` (default: keep the one there, else set one this stack creates), an IAM role ARN to
    set, or `external` (already set by the account's owner). Kept on destroy."""
    session_expiry: str
    """`enforce` (default): a connection lives only as long as its token (closed on the next
    message, push or sweep after `exp`; refreshed in-band); `off`: until API Gateway's 2 hours."""
    max_connections_per_user: int
    """Most connections one user may have open, 0 to 10000; 0 for no limit (default 10)."""
    route_keys: Sequence[str]
    """Extra routes (values of the message's `action`) handled by the websocket function."""
    authorizer_memory_mb: int
    """Memory of the authorizer function, 128 to 10240 MB (default 512)."""
    authorizer_timeout_seconds: int
    """Timeout of the authorizer function, 1 to 29 seconds (default 5)."""
    websocket_memory_mb: int
    """Memory of the websocket function, 128 to 10240 MB (default 256)."""
    websocket_timeout_seconds: int
    """Timeout of the websocket function, 1 to 29 seconds (default 10)."""


class SecuredWebSocketApiArgs(SecuredWebSocketApiSettings, total=False):
    """Arguments of `SecuredWebSocketApi`: the settings, plus outputs of `AuthPool` and
    `ConnectionStore` wired in as inputs."""

    user_pool_id: Required[pulumi.Input[str]]
    """The Cognito user pool whose tokens open connections."""
    app_client_ids: Required[Sequence[pulumi.Input[str]]]
    """The app clients whose tokens are accepted (at least one)."""
    connection_table_name: Required[pulumi.Input[str]]
    """The connection table the websocket function writes."""
    connection_table_arn: Required[pulumi.Input[str]]
    """That table's ARN (the websocket function's permissions name it exactly)."""
    user_id_index_arn: Required[pulumi.Input[str]]
    """The ARN of the table's `userIdIndex`."""
    connection_table_stream_arn: Required[pulumi.Input[str]]
    """The table's stream (`ConnectionStore.stream_arn`, old images): the live connection count
    follows it."""
    user_pool_arn: pulumi.Input[str]
    """The pool's ARN: the websocket function may sign its users out everywhere there
    (required unless `session_expiry` is `off`)."""
    expiry_index_arn: pulumi.Input[str]
    """The ARN of the table's `expiryIndex`, which the sweeper queries (required unless
    `session_expiry` is `off`)."""


@dataclass(frozen=True)
class Settings:
    """Validated settings, defaults filled in."""

    stage_name: str
    token_use: str
    token_source: str
    token_query_key: str
    clock_leeway_seconds: int
    connection_ttl_seconds: int
    lambda_architecture: str
    lambda_runtime: str
    log_retention_days: int
    throttling_burst_limit: int
    throttling_rate_limit: float
    access_logging: bool
    cloudwatch_role: str
    session_expiry: str
    max_connections_per_user: int
    route_keys: tuple[str, ...]
    authorizer_memory_mb: int
    authorizer_timeout_seconds: int
    websocket_memory_mb: int
    websocket_timeout_seconds: int


def require_route_key(key: str, value: Any) -> str:
    return require_pattern(
        key,
        value,
        _ROUTE_KEY_PATTERN,
        "1 to 128 letters, digits, '_', '.', ':' or '-' ($-routes are built in)",
    )


def validate(settings: SecuredWebSocketApiSettings) -> Settings:
    """Check every plain setting and fill in the defaults; raise ValueError on the first bad one."""
    name_rule = "1 to 128 letters, digits, '-' or '_'"
    route_keys = tuple(
        require_route_key("route_keys", key) for key in settings.get("route_keys", ())
    )
    for taken in (REFRESH_ROUTE_KEY, SIGN_OUT_ROUTE_KEY):
        if taken in route_keys:
            raise ValueError(f"route_keys must not name {taken!r}: sessions route it")
    if len(set(route_keys)) != len(route_keys):
        raise ValueError(f"route_keys must not repeat a key; got {list(route_keys)!r}")
    return Settings(
        stage_name=require_pattern(
            "stage_name", settings.get("stage_name", "prod"), _NAME_PATTERN, name_rule
        ),
        token_use=require_choice("token_use", settings.get("token_use", "id"), TOKEN_USES),
        token_source=require_choice(
            "token_source", settings.get("token_source", "query"), TOKEN_SOURCES
        ),
        token_query_key=require_pattern(
            "token_query_key", settings.get("token_query_key", "idToken"), _NAME_PATTERN, name_rule
        ),
        clock_leeway_seconds=require_int_range(
            "clock_leeway_seconds", settings.get("clock_leeway_seconds", 0), 0, 300
        ),
        connection_ttl_seconds=require_int_range(
            "connection_ttl_seconds",
            settings.get("connection_ttl_seconds", 3 * 60 * 60),
            _MIN_CONNECTION_TTL_SECONDS,
            _MAX_CONNECTION_TTL_SECONDS,
        ),
        lambda_architecture=require_choice(
            "lambda_architecture",
            settings.get("lambda_architecture", "arm64"),
            packaging.ARCHITECTURES,
        ),
        lambda_runtime=require_choice(
            "lambda_runtime", settings.get("lambda_runtime", "python3.13"), packaging.RUNTIMES
        ),
        log_retention_days=require_log_retention(
            "log_retention_days", settings.get("log_retention_days", 30)
        ),
        throttling_burst_limit=require_int_range(
            "throttling_burst_limit", settings.get("throttling_burst_limit", 200), 0, 2**31 - 1
        ),
        throttling_rate_limit=require_number_range(
            "throttling_rate_limit", settings.get("throttling_rate_limit", 100.0), 0, 1e9
        ),
        access_logging=bool(settings.get("access_logging", True)),
        cloudwatch_role=require_cloudwatch_role(settings.get("cloudwatch_role", "auto")),
        session_expiry=require_choice(
            "session_expiry", settings.get("session_expiry", "enforce"), SESSION_EXPIRY_MODES
        ),
        max_connections_per_user=require_int_range(
            "max_connections_per_user", settings.get("max_connections_per_user", 10), 0, 10000
        ),
        route_keys=route_keys,
        # Memory buys CPU in Lambda (one full vCPU at 1769 MB). The authorizer's cold start is
        # CPU-bound (importing cryptography, parsing the JWKS) and sits in front of every new
        # connection, so it gets 512 MB; its 5 s allow one JWKS fetch (capped at 1.5 s in the
        # handler) plus verification on a cold start. The websocket function mostly waits on
        # DynamoDB and the management API: 256 MB and 10 s are plenty and cost little.
        authorizer_memory_mb=require_int_range(
            "authorizer_memory_mb", settings.get("authorizer_memory_mb", 512), 128, 10240
        ),
        authorizer_timeout_seconds=require_int_range(
            "authorizer_timeout_seconds",
            settings.get("authorizer_timeout_seconds", 5),
            1,
            _MAX_TIMEOUT_SECONDS,
        ),
        websocket_memory_mb=require_int_range(
            "websocket_memory_mb", settings.get("websocket_memory_mb", 256), 128, 10240
        ),
        websocket_timeout_seconds=require_int_range(
            "websocket_timeout_seconds",
            settings.get("websocket_timeout_seconds", 10),
            1,
            _MAX_TIMEOUT_SECONDS,
        ),
    )
