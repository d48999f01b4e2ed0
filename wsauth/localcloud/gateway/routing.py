"""Route selection for incoming messages, as API Gateway evaluates `$request.body.<path>`."""

from __future__ import annotations

import json
from collections.abc import Iterable

__all__ = ["RouteSelector"]

_SPECIAL = frozenset({"$connect", "$disconnect", "$default"})


class RouteSelector:
    """Picks the route key for a message body from the API's route selection expression.

    API Gateway parses the body as JSON and reads the expression's path; when the value is a
    string naming a declared route, that route wins, otherwise `$default` (None when the API
    has no `$default`, which API Gateway answers with a "Forbidden" message). A body that
    cannot be evaluated (not JSON, too deeply nested) is routed like any unmatched one.
    """

    __slots__ = ("_default", "_needs_body", "_path", "_routes")

    def __init__(self, expression: str, route_keys: Iterable[str]) -> None:
        """Build a selector.

        Args:
            expression: The API's route selection expression, e.g. `$request.body.action`
                (the `${request.body.action}` spelling is accepted too).
            route_keys: Every declared route key.

        Raises:
            ValueError: When the expression is not of the `$request.body.<path>` form.
        """
        keys = set(route_keys)
        stripped = expression.strip()
        if stripped.startswith("${") and stripped.endswith("}"):
            stripped = "$" + stripped[2:-1]
        prefix = "$request.body."
        if not stripped.startswith(prefix) or len(stripped) == len(prefix):
            raise ValueError(
                f"route selection expression {expression!r} is not supported locally; "
                "use $request.body.<field>"
            )
        self._path = tuple(stripped[len(prefix) :].split("."))
        self._routes = frozenset(keys - _SPECIAL)
        self._default = "$default" if "$default" in keys else None
        # With no custom route the answer never depends on the body: skip the JSON parse.
        self._needs_body = bool(self._routes)

    def select(self, body: str | None) -> str | None:
        """Return the route key for a message.

        Args:
            body: The text message, or None for a binary message (never parsed as JSON).

        Returns:
            The matching route key, `$default`, or None when nothing matches.
        """
        if not self._needs_body or body is None:
            return self._default
        try:
            value: object = json.loads(body)
        except (ValueError, RecursionError):
            # A body API Gateway cannot evaluate (not JSON, or nested deeper than the parser
            # goes, e.g. 100,000 `[`) goes to $default, as any other unmatched message does.
            return self._default
        for part in self._path:
            if not isinstance(value, dict):
                return self._default
            value = value.get(part)
        if isinstance(value, str) and value in self._routes:
            return value
        return self._default
