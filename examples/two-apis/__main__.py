"""Two WebSocket APIs, one user pool: a chat API for people and an alerts API for dashboards.

Both accept the same Cognito users. Each API has its own connection table (connection ids are
only unique within one API) and its own functions, roles and log groups.
"""

from __future__ import annotations

import pulumi

from pulumi_wsauth import (
    AuthPool,
    AuthPoolArgs,
    ConnectionStore,
    SecuredWebSocketApi,
    SecuredWebSocketApiArgs,
    SecuredWebSocketApiSettings,
)

# The Lambda platform, when the stack sets it; `wsauth local` sets both to the machine's own.
config = pulumi.Config()
platform = SecuredWebSocketApiSettings()
if (architecture := config.get("lambdaArchitecture")) is not None:
    platform["lambda_architecture"] = architecture
if (runtime := config.get("lambdaRuntime")) is not None:
    platform["lambda_runtime"] = runtime

users = AuthPool("users", AuthPoolArgs(self_sign_up=False))

chat_store = ConnectionStore("chat-connections")
chat = SecuredWebSocketApi(
    "chat",
    SecuredWebSocketApiArgs(
        user_pool_id=users.user_pool_id,
        app_client_ids=[users.web_client_id],
        connection_table_name=chat_store.table_name,
        connection_table_arn=chat_store.table_arn,
        user_id_index_arn=chat_store.user_id_index_arn,
        connection_table_stream_arn=chat_store.stream_arn,
        expiry_index_arn=chat_store.expiry_index_arn,
        user_pool_arn=users.user_pool_arn,
        # `{"action": "sendmessage", ...}` reaches the websocket function by its own route.
        route_keys=["sendmessage"],
        **platform,
    ),
)

alerts_store = ConnectionStore("alerts-connections")
alerts = SecuredWebSocketApi(
    "alerts",
    SecuredWebSocketApiArgs(
        user_pool_id=users.user_pool_id,
        app_client_ids=[users.web_client_id],
        connection_table_name=alerts_store.table_name,
        connection_table_arn=alerts_store.table_arn,
        user_id_index_arn=alerts_store.user_id_index_arn,
        connection_table_stream_arn=alerts_store.stream_arn,
        expiry_index_arn=alerts_store.expiry_index_arn,
        user_pool_arn=users.user_pool_arn,
        # Dashboards send access tokens in the subprotocol header, out of URLs and logs.
        token_use="access",
        token_source="protocol",
        stage_name="live",
        **platform,
    ),
)

pulumi.export("userPoolId", users.user_pool_id)
pulumi.export("userPoolWebClientId", users.web_client_id)
pulumi.export("chatEndpoint", chat.websocket_url)
pulumi.export("alertsEndpoint", alerts.websocket_url)
