"""A stack's outputs, read from the local cloud's outputs file or `pulumi stack output --json`.

Both are one flat JSON object; the local cloud's adds `awsEndpoint` (where the embedded Cognito
and DynamoDB answer) and `webPage`. Every client (the page, `connect`, `notify`, `smoke`) starts
here, so a wrong file fails once, in one readable line that names the file and what is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["REQUIRED_KEYS", "OutputsError", "StackOutputs", "load_outputs", "parse_outputs"]

REQUIRED_KEYS = (
    "region",
    "userPoolId",
    "userPoolWebClientId",
    "webSocketEndpoint",
    "managementEndpoint",
    "connectionTableName",
)
"""The stack outputs every client may need (DESIGN.md §3)."""


class OutputsError(ValueError):
    """The outputs file is missing, unreadable, or lacks a stack output."""


@dataclass(frozen=True)
class StackOutputs:
    """Where a stack's pieces answer."""

    region: str
    user_pool_id: str
    user_pool_web_client_id: str
    websocket_endpoint: str
    """`wss://…/{stage}` (deployed) or `ws://HOST:PORT/{stage}` (local)."""
    management_endpoint: str
    """The `@connections` API's base URL, `https://…/{stage}`."""
    connection_table_name: str
    aws_endpoint: str | None = None
    """boto3 `endpoint_url` of the embedded Cognito and DynamoDB; set only for the local cloud."""
    web_page: str | None = None

    @property
    def is_local(self) -> bool:
        """Whether the stack is the local cloud (its AWS services answer at `aws_endpoint`)."""
        return self.aws_endpoint is not None

    @property
    def cognito_endpoint(self) -> str:
        """The URL that Cognito's JSON API (SignUp, InitiateAuth, …) answers at."""
        if self.aws_endpoint is not None:
            return self.aws_endpoint
        return f"https://cognito-idp.{self.region}.amazonaws.com/"

    def as_mapping(self) -> dict[str, str]:
        """The outputs under their stack output names, as `pulumi stack output --json` has them."""
        mapping = {
            "region": self.region,
            "userPoolId": self.user_pool_id,
            "userPoolWebClientId": self.user_pool_web_client_id,
            "webSocketEndpoint": self.websocket_endpoint,
            "managementEndpoint": self.management_endpoint,
            "connectionTableName": self.connection_table_name,
        }
        if self.aws_endpoint is not None:
            mapping["awsEndpoint"] = self.aws_endpoint
        if self.web_page is not None:
            mapping["webPage"] = self.web_page
        return mapping


def parse_outputs(values: Mapping[str, object], source: str) -> StackOutputs:
    """Validate stack outputs already decoded from JSON.

    Args:
        values: The outputs, as one flat mapping of names to strings.
        source: Where they came from (a path), for error messages.

    Returns:
        The outputs.

    Raises:
        OutputsError: A required output is missing, empty, hidden as a secret, or not a string.
    """
    if not isinstance(values, Mapping):
        raise OutputsError(f"{source} is not a JSON object of stack outputs")

    def text(key: str, *, required: bool) -> str | None:
        value = values.get(key)
        if value is None and not required:
            return None
        if value is None:
            raise OutputsError(
                f"{source} has no {key!r} output (expected the local cloud's outputs file or "
                "`pulumi stack output --json`)"
            )
        if value == "[secret]":
            raise OutputsError(
                f"{source}: {key!r} is hidden as a secret; export with "
                "`pulumi stack output --json --show-secrets`"
            )
        if not isinstance(value, str) or not value.strip():
            raise OutputsError(f"{source}: {key!r} must be a non-empty string")
        return value.strip()

    required = {key: text(key, required=True) for key in REQUIRED_KEYS}
    return StackOutputs(
        region=str(required["region"]),
        user_pool_id=str(required["userPoolId"]),
        user_pool_web_client_id=str(required["userPoolWebClientId"]),
        websocket_endpoint=str(required["webSocketEndpoint"]).rstrip("/"),
        management_endpoint=str(required["managementEndpoint"]).rstrip("/"),
        connection_table_name=str(required["connectionTableName"]),
        aws_endpoint=text("awsEndpoint", required=False),
        web_page=text("webPage", required=False),
    )


def load_outputs(path: str | Path) -> StackOutputs:
    """Read and validate an outputs file.

    Args:
        path: The local cloud's outputs file, or the saved output of
            `pulumi stack output --json`.

    Returns:
        The outputs.

    Raises:
        OutputsError: The file is missing, unreadable, not JSON, or lacks an output.
    """
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OutputsError(
            f"outputs file {path} not found (start `wsauth local --outputs {path}`, or save "
            f"`pulumi stack output --json > {path}`)"
        ) from None
    except OSError as error:
        raise OutputsError(f"cannot read outputs file {path}: {error.strerror}") from None
    try:
        values = json.loads(raw)
    except json.JSONDecodeError as error:
        raise OutputsError(
            f"outputs file {path} is not valid JSON (line {error.lineno}: {error.msg})"
        ) from None
    return parse_outputs(values, str(path))
