"""Physical names of the resources that get fixed names (functions, alarms, the dashboard)."""

from __future__ import annotations

import hashlib
import re

import pulumi

__all__ = ["physical_name"]


def physical_name(name: str, role: str, max_length: int = 64) -> str:
    """A name unique per project, stack and component, within `max_length` characters.

    Letters, digits, `-` and `_` only: what Lambda, CloudWatch alarms and dashboards all accept.
    Functions get fixed names (not Pulumi's random suffix) so that their log groups, which must
    be called `/aws/lambda/<function name>` and exist before the function, can be named first;
    alarms and dashboards so that the console lists them by stack.
    """
    raw = f"{pulumi.get_project()}-{pulumi.get_stack()}-{name}"
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", raw)
    if len(base) + 1 + len(role) <= max_length:
        return f"{base}-{role}"
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    return f"{base[: max_length - len(role) - len(digest) - 2]}-{digest}-{role}"
