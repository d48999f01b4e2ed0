"""SecuredWebSocketApi: the WebSocket API, its Cognito authorizer, and the two Lambda functions."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Required, TypedDict

import pulumi
import pulumi_aws as aws

from . import packaging
from ._validation import (
    require_choice,
    require_int_range,
    require_log_retention,
    require_non_empty_list,
    require_number_range,
    require_pattern,
)
from .region_logging import region_logging_role, require_cloudwatch_role

__all__ = ["SecuredWebSocketApi", "SecuredWebSocketApiArgs", "SecuredWebSocketApiSettings"]

AUTHORIZER_HANDLER = "handlers.authorizer.handler"
WEBSOCKET_HANDLER = "handlers.websocket.handler"
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

_LAMBDA_ASSUME_ROLE_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)

# One JSON object per line, so CloudWatch Logs Insights can query fields directly. The query
# string is deliberately absent: with tokenSource=query it carries the JWT.
_ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "extendedRequestId": "$context.extendedRequestId",
        "requestTime": "$context.requestTime",
        "eventType": "$context.eventType",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "connectionId": "$context.connectionId",
        "messageId": "$context.messageId",
        "sourceIp": "$context.identity.sourceIp",
        "userAgent": "$context.identity.userAgent",
        "principalId": "$context.authorizer.principalId",
        "authorizerStatus": "$context.authorizer.status",
        "authorizerLatency": "$context.authorizer.latency",
        "authorizerError": "$context.authorizer.error",
        "integrationStatus": "$context.integration.status",
        "integrationLatency": "$context.integration.latency",
        "integrationError": "$context.integration.error",
        "errorMessage": "$context.error.message",
    },
    separators=(",", ":"),
)


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


@dataclass(frozen=True)
class _Settings:
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
    route_keys: tuple[str, ...]
    authorizer_memory_mb: int
    authorizer_timeout_seconds: int
    websocket_memory_mb: int
    websocket_timeout_seconds: int


def _require_route_key(key: str, value: Any) -> str:
    return require_pattern(
        key,
        value,
        _ROUTE_KEY_PATTERN,
        "1 to 128 letters, digits, '_', '.', ':' or '-' ($-routes are built in)",
    )


def _validate(settings: SecuredWebSocketApiSettings) -> _Settings:
    """Check every plain setting and fill in the defaults; raise ValueError on the first bad one."""
    name_rule = "1 to 128 letters, digits, '-' or '_'"
    route_keys = tuple(
        _require_route_key("route_keys", key) for key in settings.get("route_keys", ())
    )
    if len(set(route_keys)) != len(route_keys):
        raise ValueError(f"route_keys must not repeat a key; got {list(route_keys)!r}")
    return _Settings(
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


def _physical_name(name: str, role: str, max_length: int = 64) -> str:
    """A name unique per project, stack and component, within Lambda's 64-character limit.

    Functions get fixed names (not Pulumi's random suffix) so that their log groups, which must
    be called `/aws/lambda/<function name>` and exist before the function, can be named first.
    """
    raw = f"{pulumi.get_project()}-{pulumi.get_stack()}-{name}"
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", raw)
    if len(base) + 1 + len(role) <= max_length:
        return f"{base}-{role}"
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    return f"{base[: max_length - len(role) - len(digest) - 2]}-{digest}-{role}"


def _resource_suffix(route_key: str) -> str:
    """A route key as it may appear in a Pulumi resource name, distinct for distinct keys.

    `$connect` → `connect`; `sendmessage` → `action-sendmessage`; `chat.send` →
    `action-chat-send-<hash>` (so that `chat.send` and `chat:send` stay apart).
    """
    if route_key in RESERVED_ROUTE_KEYS:
        return route_key[1:]
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", route_key)
    if cleaned != route_key:
        cleaned = f"{cleaned}-{hashlib.sha256(route_key.encode()).hexdigest()[:8]}"
    return f"action-{cleaned}"


def _log_statement(log_group_arn: str) -> dict[str, Any]:
    # Lambda creates one stream per execution environment, with names nobody can know in advance:
    # the streams of this one log group are the narrowest resource there is.
    return {
        "Sid": "OwnLogGroupOnly",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": [log_group_arn, f"{log_group_arn}:log-stream:*"],
    }


def _authorizer_policy(log_group_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """The authorizer only verifies tokens (JWKS over HTTPS): it needs nothing but its logs."""
    return pulumi.Output.from_input(log_group_arn).apply(
        lambda arn: json.dumps({"Version": "2012-10-17", "Statement": [_log_statement(arn)]})
    )


def _websocket_policy(
    log_group_arn: pulumi.Input[str],
    table_arn: pulumi.Input[str],
    index_arn: pulumi.Input[str],
    execution_arn: pulumi.Input[str],
    stage_name: pulumi.Input[str],
) -> pulumi.Output[str]:
    """Items of this table and its index, posting to this stage's connections, its own logs."""

    def document(args: list[str]) -> str:
        log_arn, table, index, execution, stage = args
        return json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "ConnectionItems",
                        "Effect": "Allow",
                        "Action": ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem"],
                        "Resource": [table],
                    },
                    {
                        "Sid": "ConnectionsOfAUser",
                        "Effect": "Allow",
                        "Action": ["dynamodb:Query"],
                        "Resource": [index],
                    },
                    {
                        # The function only answers the sender (POST); it never lists (GET) or
                        # closes (DELETE) connections. Connection ids are random: `*` is the
                        # narrowest pattern for them.
                        "Sid": "PostToConnections",
                        "Effect": "Allow",
                        "Action": ["execute-api:ManageConnections"],
                        "Resource": [f"{execution}/{stage}/POST/@connections/*"],
                    },
                    _log_statement(log_arn),
                ],
            }
        )

    return pulumi.Output.all(log_group_arn, table_arn, index_arn, execution_arn, stage_name).apply(
        document
    )


class SecuredWebSocketApi(pulumi.ComponentResource):
    """An API Gateway WebSocket API whose `$connect` requires a valid Cognito token.

    A REQUEST Lambda authorizer guards `$connect` (and only it: API Gateway authorizes a
    WebSocket once, at the handshake). The websocket function serves `$connect` (stores the
    connection), `$disconnect` (deletes it), `$default` (echoes) and any `route_keys`; other
    functions can serve more routes through `add_route`. Each function has its own role, scoped to
    exact ARNs, and its own log group.
    """

    api_id: pulumi.Output[str]
    """The API's id."""
    execution_arn: pulumi.Output[str]
    """`arn:aws:execute-api:{region}:{account}:{api_id}`, for IAM policies of other senders."""
    stage_name: pulumi.Output[str]
    """The stage's name."""
    websocket_url: pulumi.Output[str]
    """Where clients connect: `wss://{api_id}.execute-api.{region}.amazonaws.com/{stage}`."""
    management_endpoint: pulumi.Output[str]
    """The `@connections` API's endpoint: `https://{api_id}.execute-api.{region}.amazonaws.com/{stage}`."""
    authorizer_function_name: pulumi.Output[str]
    """Name of the authorizer Lambda function."""
    websocket_function_name: pulumi.Output[str]
    """Name of the websocket Lambda function."""

    @staticmethod
    def validate(settings: SecuredWebSocketApiSettings) -> None:
        """Check the plain settings, so a program can refuse bad config before it creates any
        resource (the constructor checks them again, as it must for other callers).

        Args:
            settings: The settings to check; absent keys take their defaults.

        Raises:
            ValueError: A setting is invalid; the message names it and what it accepts.
        """
        _validate(settings)

    def __init__(
        self, name: str, args: SecuredWebSocketApiArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        for key in (
            "user_pool_id",
            "app_client_ids",
            "connection_table_name",
            "connection_table_arn",
            "user_id_index_arn",
        ):
            if args.get(key) is None:
                raise ValueError(f"{key} is required")
        app_client_ids = require_non_empty_list("app_client_ids", args["app_client_ids"])
        settings = _validate(args)
        stage_name = settings.stage_name
        architecture, runtime = settings.lambda_architecture, settings.lambda_runtime
        retention = settings.log_retention_days

        super().__init__("wsauth:index:SecuredWebSocketApi", name, None, opts)
        self._name = name
        self._child = pulumi.ResourceOptions(parent=self)
        self._stage_name = stage_name
        self._route_keys: set[str] = set()

        # One archive serves both functions; only the handler string differs.
        code = pulumi.FileArchive(str(packaging.build_lambda_archive(architecture, runtime)))

        self._api = aws.apigatewayv2.Api(
            f"{name}-api",
            name=_physical_name(name, "api"),
            protocol_type="WEBSOCKET",
            route_selection_expression="$request.body.action",
            opts=self._child,
        )

        authorizer_fn = self._function(
            "authorizer",
            code=code,
            handler=AUTHORIZER_HANDLER,
            settings=settings,
            memory_mb=settings.authorizer_memory_mb,
            timeout_seconds=settings.authorizer_timeout_seconds,
            environment={
                "USER_POOL_ID": args["user_pool_id"],
                "APP_CLIENT_ID": pulumi.Output.all(*app_client_ids).apply(",".join),
                "TOKEN_USE": settings.token_use,
                "TOKEN_QUERY_KEY": settings.token_query_key,
                "TOKEN_SOURCE": settings.token_source,
                "CLOCK_LEEWAY_SECONDS": str(settings.clock_leeway_seconds),
            },
            policy=_authorizer_policy,
        )
        websocket_fn = self._function(
            "websocket",
            code=code,
            handler=WEBSOCKET_HANDLER,
            settings=settings,
            memory_mb=settings.websocket_memory_mb,
            timeout_seconds=settings.websocket_timeout_seconds,
            environment={
                "CONNECTION_TABLE_NAME": args["connection_table_name"],
                "CONNECTION_TTL_SECONDS": str(settings.connection_ttl_seconds),
            },
            policy=lambda log_group_arn: _websocket_policy(
                log_group_arn,
                args["connection_table_arn"],
                args["user_id_index_arn"],
                self._api.execution_arn,
                stage_name,
            ),
        )

        identity_source = (
            f"route.request.querystring.{settings.token_query_key}"
            if settings.token_source == "query"
            else "route.request.header.Sec-WebSocket-Protocol"
        )
        authorizer = aws.apigatewayv2.Authorizer(
            f"{name}-authorizer",
            api_id=self._api.id,
            name="cognito-jwt",
            authorizer_type="REQUEST",
            authorizer_uri=authorizer_fn.invoke_arn,
            # API Gateway answers 401 without calling the function when this is missing.
            identity_sources=[identity_source],
            opts=self._child,
        )
        self._allow_invoke(
            "authorizer",
            authorizer_fn,
            pulumi.Output.concat(self._api.execution_arn, "/authorizers/", authorizer.id),
        )

        websocket_integration = self._integration("websocket", websocket_fn)
        routes = [
            self._route(
                "$connect",
                websocket_integration,
                websocket_fn,
                authorizer_id=authorizer.id,
            ),
            self._route("$disconnect", websocket_integration, websocket_fn),
            self._route("$default", websocket_integration, websocket_fn),
            *(self._route(key, websocket_integration, websocket_fn) for key in settings.route_keys),
        ]

        access_log_settings = None
        logging_ready: list[pulumi.Resource] = []
        if settings.access_logging:
            logging_ready = region_logging_role(name, settings.cloudwatch_role, self)
            access_log_group = aws.cloudwatch.LogGroup(
                f"{name}-access-logs",
                name=self._api.id.apply(lambda api_id: f"/aws/apigateway/{api_id}/{stage_name}"),
                retention_in_days=retention,
                opts=self._child,
            )
            access_log_settings = aws.apigatewayv2.StageAccessLogSettingsArgs(
                destination_arn=access_log_group.arn, format=_ACCESS_LOG_FORMAT
            )
        stage = aws.apigatewayv2.Stage(
            f"{name}-stage",
            api_id=self._api.id,
            name=stage_name,
            # Every change to routes or integrations goes live without a Deployment resource.
            auto_deploy=True,
            default_route_settings=aws.apigatewayv2.StageDefaultRouteSettingsArgs(
                throttling_burst_limit=settings.throttling_burst_limit,
                throttling_rate_limit=settings.throttling_rate_limit,
                # Execution logs go to a log group API Gateway creates without retention, and
                # at INFO they record the request, query string (the token) included.
                logging_level="OFF",
                data_trace_enabled=False,
                detailed_metrics_enabled=False,
            ),
            access_log_settings=access_log_settings,
            # The first automatic deployment needs the routes to exist; access logs need the
            # region's CloudWatch role.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*routes, *logging_ready]),
        )

        self.api_id = self._api.id
        self.execution_arn = self._api.execution_arn
        self.stage_name = stage.name
        self.websocket_url = pulumi.Output.concat(self._api.api_endpoint, "/", stage.name)
        self.management_endpoint = pulumi.Output.concat(
            self._api.api_endpoint.apply(lambda url: re.sub(r"^wss://", "https://", url)),
            "/",
            stage.name,
        )
        self.authorizer_function_name = authorizer_fn.name
        self.websocket_function_name = websocket_fn.name
        self.register_outputs(
            {
                "api_id": self.api_id,
                "execution_arn": self.execution_arn,
                "stage_name": self.stage_name,
                "websocket_url": self.websocket_url,
                "management_endpoint": self.management_endpoint,
                "authorizer_function_name": self.authorizer_function_name,
                "websocket_function_name": self.websocket_function_name,
            }
        )

    def add_route(self, route_key: str, function: aws.lambda_.Function) -> aws.apigatewayv2.Route:
        """Route messages whose `action` is `route_key` to another Lambda function.

        The route gets its own AWS_PROXY integration and an invoke permission scoped to this
        API, stage and route. The function's own role is the caller's to scope.

        Args:
            route_key: The `action` value to route, e.g. `sendmessage`.
            function: The Lambda function serving the route.

        Returns:
            The route.

        Raises:
            ValueError: The key is malformed, built in, or already routed.
        """
        _require_route_key("route_key", route_key)
        if route_key in self._route_keys:
            raise ValueError(f"route_key {route_key!r} is already routed")
        integration = self._integration(_resource_suffix(route_key), function)
        return self._route(route_key, integration, function)

    # --- building blocks -------------------------------------------------------------------

    def _function(
        self,
        role_name: str,
        *,
        code: pulumi.Archive,
        handler: str,
        settings: _Settings,
        memory_mb: int,
        timeout_seconds: int,
        environment: dict[str, pulumi.Input[str]],
        policy: Callable[[pulumi.Output[str]], pulumi.Output[str]],
    ) -> aws.lambda_.Function:
        """A function with its own role and its own log group, created before the function.

        Architecture, runtime and log retention come from `settings`, the same for every
        function, as `code` is the one archive built for that architecture and runtime.
        """
        name = self._name
        function_name = _physical_name(name, role_name)
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-{role_name}-logs",
            # Lambda's default group name, so the console and `sam logs` find it.
            name=f"/aws/lambda/{function_name}",
            retention_in_days=settings.log_retention_days,
            opts=self._child,
        )
        role = aws.iam.Role(
            f"{name}-{role_name}-role",
            assume_role_policy=_LAMBDA_ASSUME_ROLE_POLICY,
            description=f"Runs the {role_name} function of {function_name}",
            opts=self._child,
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-{role_name}-policy",
            role=role.id,
            policy=policy(log_group.arn),
            opts=self._child,
        )
        return aws.lambda_.Function(
            f"{name}-{role_name}",
            name=function_name,
            role=role.arn,
            code=code,
            handler=handler,
            runtime=settings.lambda_runtime,
            architectures=[settings.lambda_architecture],
            memory_size=memory_mb,
            timeout=timeout_seconds,
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=environment),
            # Text: the handlers write their own JSON lines, which Lambda's JSON format would
            # wrap a second time.
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="Text", log_group=log_group.name
            ),
            # Without its policy, the first invocations could fail to write their logs.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy, log_group]),
        )

    def _integration(
        self, role_name: str, function: aws.lambda_.Function
    ) -> aws.apigatewayv2.Integration:
        return aws.apigatewayv2.Integration(
            f"{self._name}-{role_name}-integration",
            api_id=self._api.id,
            integration_type="AWS_PROXY",
            # Lambda is always invoked with POST, whatever the client sent.
            integration_method="POST",
            integration_uri=function.invoke_arn,
            opts=self._child,
        )

    def _route(
        self,
        route_key: str,
        integration: aws.apigatewayv2.Integration,
        function: aws.lambda_.Function,
        *,
        authorizer_id: pulumi.Input[str] | None = None,
    ) -> aws.apigatewayv2.Route:
        self._route_keys.add(route_key)
        suffix = _resource_suffix(route_key)
        route = aws.apigatewayv2.Route(
            f"{self._name}-{suffix}-route",
            api_id=self._api.id,
            route_key=route_key,
            target=pulumi.Output.concat("integrations/", integration.id),
            authorization_type="CUSTOM" if authorizer_id is not None else "NONE",
            authorizer_id=authorizer_id,
            opts=self._child,
        )
        self._allow_invoke(
            suffix,
            function,
            pulumi.Output.concat(self._api.execution_arn, "/", self._stage_name, "/", route_key),
        )
        return route

    def _allow_invoke(
        self, role_name: str, function: aws.lambda_.Function, source_arn: pulumi.Input[str]
    ) -> aws.lambda_.Permission:
        """Let API Gateway invoke `function`, only on behalf of `source_arn` (this API's)."""
        return aws.lambda_.Permission(
            f"{self._name}-{role_name}-invoke",
            action="lambda:InvokeFunction",
            function=function.name,
            principal="apigateway.amazonaws.com",
            source_arn=source_arn,
            opts=self._child,
        )
