"""wsauth: the command line, and the run-time helpers other services use.

`from wsauth import send_to_user` reaches every connection of a Cognito user (the sender the
Lambda functions use, `wsauth.handlers.sender`). The Pulumi components are `pulumi_wsauth`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DeliveryReport", "send_to_connection", "send_to_user"]

_SENDER_NAMES = frozenset(__all__)


def __getattr__(name: str) -> Any:
    # Loaded on first use: the command line starts without boto3 and the sender.
    if name in _SENDER_NAMES:
        from wsauth.handlers import sender

        return getattr(sender, name)
    raise AttributeError(f"module 'wsauth' has no attribute {name!r}")
