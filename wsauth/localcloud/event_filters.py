"""Lambda event filtering (an event source mapping's `filter_criteria`), for exact values.

An event source mapping delivers only the records that match one of its filters' patterns
(AWS: "Lambda event filtering", the EventBridge pattern syntax). The local cloud runs the part
of that syntax that says "this field has one of these values": a pattern is a JSON object whose
leaves are lists of exact values (strings, numbers, booleans, null), with nested objects for
nested fields, e.g. `{"eventName": ["INSERT", "REMOVE"]}` or
`{"dynamodb": {"Keys": {"connectionId": {"S": ["x"]}}}}`. A pattern using an operator
(`prefix`, `anything-but`, `numeric`, `exists`, …, or `$or`) is refused when the local cloud
starts, naming the operator, rather than matched differently from AWS.

Matching is EventBridge's: every field the pattern names must be present and hold one of the
listed values (an array field matches when any of its elements does); fields the pattern does not
name are ignored; a record matches the filter criteria when it matches any one filter.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["EventFilter", "FilterError", "matches_any", "parse_filters"]


class FilterError(ValueError):
    """A filter pattern is not JSON, not an object, or uses what the local cloud does not run."""


@dataclass(frozen=True)
class EventFilter:
    """One filter of a mapping's `filter_criteria`."""

    text: str
    """The pattern as declared (JSON text)."""
    pattern: Mapping[str, Any]
    """The parsed pattern: nested objects whose leaves are lists of exact values."""

    def matches(self, record: Mapping[str, Any]) -> bool:
        """Whether `record` (the record as the function would receive it) matches."""
        return _matches(self.pattern, record)

    def event_names(self) -> tuple[str, ...] | None:
        """The `eventName`s it lets through, when that is all it says; None otherwise."""
        names = self.pattern.get("eventName")
        if set(self.pattern) == {"eventName"} and isinstance(names, list):
            return tuple(str(name) for name in names)
        return None


def parse_filters(filter_criteria: Mapping[str, Any] | None) -> tuple[EventFilter, ...]:
    """Parse a mapping's `filter_criteria` input (`{"filters": [{"pattern": "..."}]}`).

    Raises:
        FilterError: A pattern is not a JSON object, or a value is not a list of exact values
            or a nested object; an operator is named in the message.
    """
    filters = []
    for entry in (filter_criteria or {}).get("filters") or []:
        text = str((entry or {}).get("pattern") or "")
        try:
            pattern = json.loads(text)
        except ValueError:
            raise FilterError(f"filter pattern {text!r} is not JSON") from None
        if not isinstance(pattern, dict):
            raise FilterError(f"filter pattern {text!r} is not a JSON object")
        operators = sorted(set(_operators(pattern)))
        if operators:
            raise FilterError(
                f"filter pattern {text} uses {', '.join(operators)}: the local cloud runs no "
                "pattern operator, only exact values (each field a list of strings, numbers, "
                "booleans or null, or an object of such fields)"
            )
        _check_leaves(pattern, text)
        filters.append(EventFilter(text, pattern))
    return tuple(filters)


def matches_any(filters: Sequence[EventFilter], record: Mapping[str, Any]) -> bool:
    """Whether `record` passes the filter criteria: no filters, or any filter matches."""
    return not filters or any(one.matches(record) for one in filters)


def _operators(pattern: Mapping[str, Any]) -> Iterable[str]:
    """The operators a pattern uses: `$or` keys and the objects inside value lists."""
    for key, value in pattern.items():
        if key.startswith("$"):
            yield key
        elif isinstance(value, dict):
            yield from _operators(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    yield from list(item) or ["{}"]


def _check_leaves(pattern: Mapping[str, Any], text: str) -> None:
    for key, value in pattern.items():
        if isinstance(value, dict):
            _check_leaves(value, text)
        elif not isinstance(value, list):
            raise FilterError(
                f"filter pattern {text}: {key!r} must be a list of values or an object "
                f"(write [{json.dumps(value)}] for an exact match)"
            )
        elif any(isinstance(item, list) for item in value):
            raise FilterError(f"filter pattern {text}: {key!r} holds a list inside its list")


def _matches(pattern: Mapping[str, Any], value: Any) -> bool:
    if isinstance(value, list):  # an array of objects matches when one of them does
        return any(_matches(pattern, item) for item in value)
    if not isinstance(value, Mapping):
        return False
    for key, expected in pattern.items():
        if key not in value:
            return False
        actual = value[key]
        if isinstance(expected, dict):
            if not _matches(expected, actual):
                return False
            continue
        candidates = actual if isinstance(actual, list) else [actual]
        if not any(_same(candidate, wanted) for candidate in candidates for wanted in expected):
            return False
    return True


def _same(actual: Any, wanted: Any) -> bool:
    """JSON equality: `true` is not `1`, `"5"` is not `5`, `5` is `5.0`."""
    if isinstance(actual, bool) or isinstance(wanted, bool):
        return isinstance(actual, bool) and isinstance(wanted, bool) and actual == wanted
    if isinstance(actual, int | float) and isinstance(wanted, int | float):
        return actual == wanted
    return type(actual) is type(wanted) and actual == wanted
