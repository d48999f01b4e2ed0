"""wsauth: the command line, and the run-time helpers other services use.

`from wsauth import send_to_user` reaches every connection of a Cognito user (the sender the
Lambda functions use, `wsauth.handlers.sender`); `sign_out_everywhere` ends every session of
one (`wsauth.handlers.signout`). The Pulumi components are `pulumi_wsauth`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DeliveryReport",
    "SignOutReport",
    "send_to_connection",
    "send_to_user",
    "sign_out_everywhere",
]

_HOMES = {
    "DeliveryReport": "sender",
    "send_to_connection": "sender",
    "send_to_user": "sender",
    "SignOutReport": "signout",
    "sign_out_everywhere": "signout",
}


def __getattr__(name: str) -> Any:
    # Loaded on first use: the command line starts without boto3 and the handlers' modules.
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(f"wsauth.handlers.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'wsauth' has no attribute {name!r}")
