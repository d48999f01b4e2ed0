"""Pulumi components for a Cognito-secured API Gateway WebSocket API.

`AuthPool` (Cognito), `ConnectionStore` (DynamoDB) and `SecuredWebSocketApi` (API Gateway,
authorizer and functions), plus `ApiMonitoring` (alarms, dashboard) and `ApiDomain` (a custom
domain): compose them as `__main__.py` does, or in a project of your own.
"""

from __future__ import annotations

from .alarms import ALARMS, AlarmOverride
from .auth_pool import AuthPool, AuthPoolArgs
from .connection_store import EXPIRY_INDEX, USER_ID_INDEX, ConnectionStore, ConnectionStoreArgs
from .custom_domain import ApiDomain, ApiDomainArgs, ApiDomainSettings
from .monitoring import ApiMonitoring, ApiMonitoringArgs, ApiMonitoringSettings
from .websocket_api import (
    SecuredWebSocketApi,
    SecuredWebSocketApiArgs,
    SecuredWebSocketApiSettings,
)

__all__ = [
    "ALARMS",
    "AlarmOverride",
    "ApiDomain",
    "ApiDomainArgs",
    "ApiDomainSettings",
    "ApiMonitoring",
    "ApiMonitoringArgs",
    "ApiMonitoringSettings",
    "EXPIRY_INDEX",
    "USER_ID_INDEX",
    "AuthPool",
    "AuthPoolArgs",
    "ConnectionStore",
    "ConnectionStoreArgs",
    "SecuredWebSocketApi",
    "SecuredWebSocketApiArgs",
    "SecuredWebSocketApiSettings",
]
