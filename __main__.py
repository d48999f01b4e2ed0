"""The wsauth stack: a Cognito user pool, a connection table and a secured WebSocket API,
with its alarms and dashboard, and optionally a custom domain.

Reads the stack's config (`wsauth:*`, every key optional: the components hold the defaults and
validate the values), composes the components and exports the stack outputs.
"""

from __future__ import annotations

import re
from typing import Any

import pulumi
import pulumi_aws as aws

from pulumi_wsauth import (
    ApiDomain,
    ApiDomainArgs,
    ApiDomainSettings,
    ApiMonitoring,
    ApiMonitoringArgs,
    ApiMonitoringSettings,
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


def _snake_case_keys(overrides: Any) -> Any:
    """`{"clientErrors": {"periodSeconds": 60}}` → `{"client_errors": {"period_seconds": 60}}`."""
    if not isinstance(overrides, dict):
        return overrides
    return {
        re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower(): _snake_case_keys(value)
        for key, value in overrides.items()
    }


def _camel_case(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.capitalize() for part in rest)


monitoring = config.get_bool("monitoring")
monitoring_config = {
    "alarm_email": config.get("alarmEmail"),
    "alarm_topic_arn": config.get("alarmTopicArn"),
    "alarms": _snake_case_keys(config.get_object("alarms")),
    "dashboard": config.get_bool("dashboard"),
}
monitoring_settings = ApiMonitoringSettings(
    **{key: value for key, value in monitoring_config.items() if value is not None}  # type: ignore[typeddict-item]
)
domain_config = {
    "domain_name": config.get("domainName"),
    "certificate_arn": config.get("certificateArn"),
    "hosted_zone_id": config.get("hostedZoneId"),
}
domain_settings = ApiDomainSettings(
    **{key: value for key, value in domain_config.items() if value}  # type: ignore[typeddict-item]
)


def _stack_region() -> str:
    """The provider's region: from config, else as the provider resolves it (AWS_REGION, the
    profile), so that a certificate in another region is refused whatever set the region."""
    return pulumi.Config("aws").get("region") or aws.get_region().region


# Refuse bad config before the pool and the table are declared, not halfway through.
SecuredWebSocketApi.validate(api_settings)
if monitoring is not False:
    ApiMonitoring.validate(monitoring_settings)
elif monitoring_settings:
    given = ", ".join(f"wsauth:{_camel_case(key)}" for key in sorted(monitoring_settings))
    raise ValueError(f"{given}: no effect with wsauth:monitoring false; remove, or set it true")
if domain_settings:
    region = _stack_region() if domain_settings.get("certificate_arn") else None
    ApiDomain.validate(domain_settings, region=region)

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
        connection_table_stream_arn=store.stream_arn,
        expiry_index_arn=store.expiry_index_arn,
        user_pool_arn=auth.user_pool_arn,
        **api_settings,
    ),
)

if monitoring is not False:
    ops = ApiMonitoring("ops", ApiMonitoringArgs(api=api, store=store, **monitoring_settings))
    pulumi.export("alarmTopicArn", ops.topic_arn)
    if ops.dashboard_name is not None:
        pulumi.export("dashboardName", ops.dashboard_name)
websocket_url = api.websocket_url
if domain_settings:
    domain = ApiDomain(
        "domain",
        ApiDomainArgs(api_id=api.api_id, stage_name=api.stage_name, **domain_settings),
    )
    websocket_url = domain.websocket_url
    pulumi.export("customDomainTarget", domain.target_domain_name)

pulumi.export("region", auth.region)
pulumi.export("userPoolId", auth.user_pool_id)
pulumi.export("userPoolWebClientId", auth.web_client_id)
pulumi.export("webSocketEndpoint", websocket_url)
pulumi.export("managementEndpoint", api.management_endpoint)
pulumi.export("connectionTableName", store.table_name)
