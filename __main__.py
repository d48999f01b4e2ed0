"""The wsauth stack: a Cognito user pool, a connection table and a secured WebSocket API.

Reads the stack's config (`wsauth:*`, every key optional: the components hold the defaults and
validate the values), composes the three components and exports the stack outputs.
"""

from __future__ import annotations

import pulumi

from pulumi_wsauth import (
    AuthPool,
    AuthPoolArgs,
    ConnectionStore,
    ConnectionStoreArgs,
    SecuredWebSocketApi,
    SecuredWebSocketApiArgs,
    SecuredWebSocketApiSettings,
)

config = pulumi.Config("wsauth")
protection = config.get_bool("deletionProtection")
self_sign_up = config.get_bool("selfSignUp")
api_config = {
    "stage_name": config.get("stageName"),
    "token_use": config.get("tokenUse"),
    "token_source": config.get("tokenSource"),
    "token_query_key": config.get("tokenQueryKey"),
    "clock_leeway_seconds": config.get_int("clockLeewaySeconds"),
    "lambda_architecture": config.get("lambdaArchitecture"),
    "lambda_runtime": config.get("lambdaRuntime"),
    "log_retention_days": config.get_int("logRetentionDays"),
    "throttling_burst_limit": config.get_int("throttlingBurstLimit"),
    "throttling_rate_limit": config.get_float("throttlingRateLimit"),
    "access_logging": config.get_bool("accessLogging"),
    "cloudwatch_role": config.get("cloudWatchRole"),
    "session_expiry": config.get("sessionExpiry"),
    "max_connections_per_user": config.get_int("maxConnectionsPerUser"),
}
api_settings = SecuredWebSocketApiSettings(
    **{key: value for key, value in api_config.items() if value is not None}  # type: ignore[typeddict-item]
)
# Refuse bad config before the pool and the table are declared, not halfway through.
SecuredWebSocketApi.validate(api_settings)

store_args = ConnectionStoreArgs()
pool_args = AuthPoolArgs()
if protection is not None:
    store_args["deletion_protection"] = pool_args["deletion_protection"] = protection
if self_sign_up is not None:
    pool_args["self_sign_up"] = self_sign_up

auth = AuthPool("auth", pool_args)
store = ConnectionStore("connections", store_args)
api = SecuredWebSocketApi(
    "api",
    SecuredWebSocketApiArgs(
        user_pool_id=auth.user_pool_id,
        app_client_ids=[auth.web_client_id],
        connection_table_name=store.table_name,
        connection_table_arn=store.table_arn,
        user_id_index_arn=store.user_id_index_arn,
        expiry_index_arn=store.expiry_index_arn,
        user_pool_arn=auth.user_pool_arn,
        **api_settings,
    ),
)

pulumi.export("region", auth.region)
pulumi.export("userPoolId", auth.user_pool_id)
pulumi.export("userPoolWebClientId", auth.web_client_id)
pulumi.export("webSocketEndpoint", api.websocket_url)
pulumi.export("managementEndpoint", api.management_endpoint)
pulumi.export("connectionTableName", store.table_name)
