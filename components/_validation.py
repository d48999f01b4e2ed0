"""Checks the components run on their arguments before they create anything.

Each check raises `ValueError` naming the argument (as the caller spelled it) and what it
accepts, so a bad config value fails `pulumi preview` with one readable line instead of a
half-created stack or an AWS error minutes later.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Any

__all__ = [
    "LOG_RETENTION_DAYS",
    "require_choice",
    "require_int_range",
    "require_log_retention",
    "require_non_empty_list",
    "require_number_range",
    "require_pattern",
]

LOG_RETENTION_DAYS: tuple[int, ...] = (
    0,
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
"""The values CloudWatch Logs' PutRetentionPolicy accepts; 0 means "never expire"."""


def require_choice(key: str, value: Any, allowed: Collection[str]) -> str:
    """Return `value` if it is one of `allowed`.

    Args:
        key: The argument or config key, as the caller knows it.
        value: What the caller passed.
        allowed: The accepted values.

    Returns:
        The value, unchanged.

    Raises:
        ValueError: `value` is not one of `allowed`.
    """
    if not isinstance(value, str) or value not in allowed:
        choices = ", ".join(sorted(allowed))
        raise ValueError(f"{key} must be one of {choices}; got {value!r}")
    return value


def require_int_range(key: str, value: Any, low: int, high: int) -> int:
    """Return `value` if it is an integer in `[low, high]`.

    Args:
        key: The argument or config key, as the caller knows it.
        value: What the caller passed.
        low: Smallest accepted value.
        high: Largest accepted value.

    Returns:
        The value, unchanged.

    Raises:
        ValueError: `value` is not an integer (bools are refused) or is out of range.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{key} must be an integer from {low} to {high}; got {value!r}")
    return value


def require_number_range(key: str, value: Any, low: float, high: float) -> float:
    """Return `value` as a float if it is a finite number in `[low, high]`.

    Args:
        key: The argument or config key, as the caller knows it.
        value: What the caller passed.
        low: Smallest accepted value.
        high: Largest accepted value.

    Returns:
        The value as a float.

    Raises:
        ValueError: `value` is not a number (bools are refused) or is out of range.
    """
    # `not low <= value <= high` is also true for NaN, which therefore fails here too.
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"{key} must be a number from {low:g} to {high:g}; got {value!r}")
    return float(value)


def require_log_retention(key: str, value: Any) -> int:
    """Return `value` if CloudWatch Logs accepts it as a retention in days.

    Args:
        key: The argument or config key, as the caller knows it.
        value: What the caller passed.

    Returns:
        The value, unchanged.

    Raises:
        ValueError: CloudWatch Logs would refuse `value`.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value not in LOG_RETENTION_DAYS:
        allowed = ", ".join(str(days) for days in LOG_RETENTION_DAYS)
        raise ValueError(f"{key} must be one of {allowed} (0 = never expire); got {value!r}")
    return value


def require_pattern(key: str, value: Any, pattern: str, description: str) -> str:
    """Return `value` if it fully matches `pattern`.

    Args:
        key: The argument or config key, as the caller knows it.
        value: What the caller passed.
        pattern: A regular expression the whole value must match.
        description: What the pattern accepts, in words, for the error message.

    Returns:
        The value, unchanged.

    Raises:
        ValueError: `value` is not a string matching `pattern`.
    """
    if not isinstance(value, str) or re.fullmatch(pattern, value) is None:
        raise ValueError(f"{key} must be {description}; got {value!r}")
    return value


def require_non_empty_list(key: str, value: Any) -> list[Any]:
    """Return `value` as a list if it is a non-empty sequence (not a string).

    Args:
        key: The argument or config key, as the caller knows it.
        value: What the caller passed.

    Returns:
        The items, as a list.

    Raises:
        ValueError: `value` is a string, not a sequence, or empty.
    """
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or not value:
        raise ValueError(f"{key} must be a non-empty list; got {value!r}")
    return list(value)
