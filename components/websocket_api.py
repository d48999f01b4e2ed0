"""SecuredWebSocketApi: the WebSocket API, its Cognito authorizer, and its Lambda functions.

Its settings, their defaults and validation live in `websocket_settings`; how each function is
built (role, policy, log group) in `functions`, and the two that no route invokes (the minute
job, the connection counter) in `background_jobs`; its IAM policies in `policies`; the region's
logging role in `region_logging`.
"""

from __future__ import annotations

import hashlib
import json
import re

import pulumi
import pulumi_aws as aws

from . import packaging
from ._validation import require_non_empty_list
from .background_jobs import connection_counter, minute_job
from .functions import FunctionFactory
from .naming import physical_name
from .policies import authorizer_policy, websocket_policy
from .region_logging import region_logging_role
from .websocket_settings import (
    REFRESH_ROUTE_KEY,
    RESERVED_ROUTE_KEYS,
    SIGN_OUT_ROUTE_KEY,
    SecuredWebSocketApiArgs,
    SecuredWebSocketApiSettings,
    require_route_key,
    validate,
)

__all__ = ["SecuredWebSocketApi", "SecuredWebSocketApiArgs", "SecuredWebSocketApiSettings"]

AUTHORIZER_HANDLER = "handlers.authorizer.handler"
WEBSOCKET_HANDLER = "handlers.websocket.handler"

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
    region: pulumi.Output[str]
    """The AWS region the API lives in."""
    authorizer_function_name: pulumi.Output[str]
    """Name of the authorizer Lambda function."""
    authorizer_log_group_name: pulumi.Output[str]
    """The authorizer's log group: one JSON line per decision (see `ApiMonitoring`)."""
    websocket_function_name: pulumi.Output[str]
    """Name of the websocket Lambda function."""
    sweeper_function_name: pulumi.Output[str]
    """Name of the function that runs every minute: it publishes the live connection count
    and, with `session_expiry` `enforce`, closes expired sessions."""
    counter_function_name: pulumi.Output[str]
    """Name of the function that keeps the live connection count from the table's stream."""

    @staticmethod
    def validate(settings: SecuredWebSocketApiSettings) -> None:
        """Check the plain settings, so a program can refuse bad config before it creates any
        resource (the constructor checks them again, as it must for other callers).

        Args:
            settings: The settings to check; absent keys take their defaults.

        Raises:
            ValueError: A setting is invalid; the message names it and what it accepts.
        """
        validate(settings)

    def __init__(
        self, name: str, args: SecuredWebSocketApiArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        for key in (
            "user_pool_id",
            "app_client_ids",
            "connection_table_name",
            "connection_table_arn",
            "user_id_index_arn",
            "connection_table_stream_arn",
        ):
            if args.get(key) is None:
                raise ValueError(f"{key} is required")
        app_client_ids = require_non_empty_list("app_client_ids", args["app_client_ids"])
        settings = validate(args)
        sessions = settings.session_expiry == "enforce"
        for key, source in (
            ("expiry_index_arn", "ConnectionStore's expiry_index_arn"),
            ("user_pool_arn", "AuthPool's user_pool_arn"),
        ):
            if sessions and args.get(key) is None:
                raise ValueError(
                    f"{key} is required with session_expiry 'enforce' ({source}), "
                    "or set session_expiry to 'off'"
                )
        stage_name = settings.stage_name
        architecture, runtime = settings.lambda_architecture, settings.lambda_runtime
        retention = settings.log_retention_days

        super().__init__("wsauth:index:SecuredWebSocketApi", name, None, opts)
        self._name = name
        self._child = pulumi.ResourceOptions(parent=self)
        self._stage_name = stage_name
        self._route_keys: set[str] = set()

        # One archive serves every function; only the handler string differs.
        code = pulumi.FileArchive(str(packaging.build_lambda_archive(architecture, runtime)))
        functions = FunctionFactory(name, self, code, settings)

        self._api = aws.apigatewayv2.Api(
            f"{name}-api",
            name=physical_name(name, "api"),
            protocol_type="WEBSOCKET",
            route_selection_expression="$request.body.action",
            opts=self._child,
        )

        # What verifies a token, on `$connect` (authorizer) and on refresh (websocket function).
        token_rules: dict[str, pulumi.Input[str]] = {
            "USER_POOL_ID": args["user_pool_id"],
            "APP_CLIENT_ID": pulumi.Output.all(*app_client_ids).apply(",".join),
            "TOKEN_USE": settings.token_use,
            "CLOCK_LEEWAY_SECONDS": str(settings.clock_leeway_seconds),
        }
        authorizer_fn = functions.create(
            "authorizer",
            handler=AUTHORIZER_HANDLER,
            memory_mb=settings.authorizer_memory_mb,
            timeout_seconds=settings.authorizer_timeout_seconds,
            environment={
                **token_rules,
                "TOKEN_QUERY_KEY": settings.token_query_key,
                "TOKEN_SOURCE": settings.token_source,
            },
            policy=authorizer_policy,
        )
        # The `@connections` endpoint on execute-api, where calls must be signed: with a custom
        # domain, the event's own domain would name the wrong host (403) and the wrong path.
        management_endpoint = pulumi.Output.concat(
            self._api.api_endpoint.apply(lambda url: re.sub(r"^wss://", "https://", url)),
            "/",
            stage_name,
        )
        websocket_fn = functions.create(
            "websocket",
            handler=WEBSOCKET_HANDLER,
            memory_mb=settings.websocket_memory_mb,
            timeout_seconds=settings.websocket_timeout_seconds,
            environment={
                "CONNECTION_TABLE_NAME": args["connection_table_name"],
                "CONNECTION_TTL_SECONDS": str(settings.connection_ttl_seconds),
                "SESSION_EXPIRY": settings.session_expiry,
                "MAX_CONNECTIONS_PER_USER": str(settings.max_connections_per_user),
                "MANAGEMENT_ENDPOINT": management_endpoint,
                **(token_rules if sessions else {}),
            },
            policy=lambda log_group_arn: websocket_policy(
                log_group_arn,
                args["connection_table_arn"],
                args["user_id_index_arn"],
                self._api.execution_arn,
                stage_name,
                user_pool_arn=args.get("user_pool_arn") if sessions else None,
                heal_connection_count=settings.max_connections_per_user > 0,
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
        if sessions:
            routes += [
                self._route(key, websocket_integration, websocket_fn)
                for key in (REFRESH_ROUTE_KEY, SIGN_OUT_ROUTE_KEY)
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
        # Through the stage's name, so that users of the endpoint wait for the stage.
        self.management_endpoint = pulumi.Output.all(management_endpoint, stage.name).apply(
            lambda parts: parts[0]
        )
        self.region = self._api.execution_arn.apply(lambda arn: arn.split(":")[3])
        self.authorizer_function_name = authorizer_fn.name
        self.authorizer_log_group_name = functions.log_groups["authorizer"].name
        self.websocket_function_name = websocket_fn.name
        self.sweeper_function_name = minute_job(
            functions,
            settings,
            args,
            api=self._api,
            management_endpoint=self.management_endpoint,
        ).name
        self.counter_function_name = connection_counter(functions, args).name
        self.register_outputs(
            {
                "api_id": self.api_id,
                "execution_arn": self.execution_arn,
                "stage_name": self.stage_name,
                "websocket_url": self.websocket_url,
                "management_endpoint": self.management_endpoint,
                "region": self.region,
                "authorizer_function_name": self.authorizer_function_name,
                "authorizer_log_group_name": self.authorizer_log_group_name,
                "websocket_function_name": self.websocket_function_name,
                "sweeper_function_name": self.sweeper_function_name,
                "counter_function_name": self.counter_function_name,
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
        require_route_key("route_key", route_key)
        if route_key in self._route_keys:
            raise ValueError(f"route_key {route_key!r} is already routed")
        integration = self._integration(_resource_suffix(route_key), function)
        return self._route(route_key, integration, function)

    # --- building blocks -------------------------------------------------------------------

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
