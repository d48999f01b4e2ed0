"""A minimal HTTP/1.1 layer: request heads in, responses out.

Only what the gateway's one port needs: the WebSocket upgrade request and the `@connections`
API, whose bodies always come with `Content-Length` (boto3 never sends chunked bodies here).
Anything else is refused with a real status rather than guessed at.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

__all__ = [
    "MAX_HEAD_BYTES",
    "HttpError",
    "Request",
    "json_response",
    "parse_head",
    "response",
]

MAX_HEAD_BYTES = 16 * 1024
"""Largest request head accepted (request line plus headers); larger heads get 431."""

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""A header name (RFC 9110 §5.1: a token)."""

_REASONS = {
    101: "Switching Protocols",
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    410: "Gone",
    411: "Length Required",
    413: "Payload Too Large",
    426: "Upgrade Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    504: "Gateway Timeout",
}


class HttpError(Exception):
    """A request the gateway refuses before routing it; answered with `status` and closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class Request:
    """One parsed request head."""

    method: str
    path: str
    """Percent-decoded path, without the query string."""
    raw_path: str
    """The path as sent, still percent-encoded (what a SigV4 signature covers)."""
    query: str
    """Raw query string (without `?`), empty when absent."""
    headers: list[tuple[str, str]]
    """Header names as the client spelled them, in order (AWS events keep the spelling)."""
    by_name: dict[str, str]
    """Last value of each header, by lower-cased name."""
    version: str = "HTTP/1.1"

    def header(self, name: str) -> str | None:
        """Return the last value of a header, matched case-insensitively, or None."""
        return self.by_name.get(name.lower())

    def query_pairs(self) -> list[tuple[str, str]]:
        """Return the query string's decoded (name, value) pairs, blanks kept."""
        return parse_qsl(self.query, keep_blank_values=True) if self.query else []

    @property
    def keep_alive(self) -> bool:
        """Whether the client wants the connection kept open after the response."""
        connection = (self.header("Connection") or "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection

    def content_length(self) -> int:
        """Return the body length the head announces (0 when none).

        Raises:
            HttpError: 400 for a bad value, 501 for a transfer coding we don't speak.
        """
        if self.header("Transfer-Encoding") is not None:
            raise HttpError(501, "Transfer-Encoding is not supported; send Content-Length")
        value = self.header("Content-Length")
        if value is None:
            return 0
        if not value.isdigit():
            raise HttpError(400, "invalid Content-Length")
        return int(value)


def parse_head(head: bytes) -> Request:
    """Parse a request head (request line and headers, without the final blank line).

    Args:
        head: The bytes before the first `\\r\\n\\r\\n`.

    Returns:
        The request.

    Raises:
        HttpError: 400 when the head is not HTTP/1.1 as RFC 9112 writes it.
    """
    text = head.decode("latin-1")
    # NUL, or a CR or LF outside a line ending, must not reach an event as part of a value
    # (RFC 9110 §5.5); a bare LF is also how one header gets smuggled inside another.
    line_ends = text.count("\r\n")
    if "\x00" in text or text.count("\r") != line_ends or text.count("\n") != line_ends:
        raise HttpError(400, "NUL, CR or LF inside the request head")
    try:
        request_line, *header_lines = text.split("\r\n")
        method, target, version = request_line.split(" ")
    except ValueError:
        raise HttpError(400, "malformed request line") from None
    if version not in ("HTTP/1.1", "HTTP/1.0") or not method.isalpha():
        raise HttpError(400, "unsupported HTTP version or method")
    headers: list[tuple[str, str]] = []
    by_name: dict[str, str] = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        # A name must be a token; whitespace in it is a smuggling vector (RFC 9112 §5.1).
        if not sep or _TOKEN.fullmatch(name) is None:
            raise HttpError(400, "malformed header line")
        value = value.strip(" \t")
        lowered = name.lower()
        # Two different lengths let a proxy and us disagree on where the body ends.
        if lowered == "content-length" and by_name.get(lowered, value) != value:
            raise HttpError(400, "conflicting Content-Length headers")
        headers.append((name, value))
        by_name[lowered] = value
    raw_path, _, query = target.partition("?")
    if not raw_path.startswith("/"):
        raise HttpError(400, "request target must be an absolute path")
    path = unquote(raw_path) if "%" in raw_path else raw_path
    return Request(
        method=method,
        path=path,
        raw_path=raw_path,
        query=query,
        headers=headers,
        by_name=by_name,
        version=version,
    )


def response(
    status: int,
    body: bytes = b"",
    headers: list[tuple[str, str]] | None = None,
    *,
    close: bool = False,
) -> bytes:
    """Serialize a response with a `Content-Length` body.

    Args:
        status: HTTP status code.
        body: Response body.
        headers: Extra headers.
        close: Add `Connection: close` (the caller closes the transport after writing).

    Returns:
        The bytes to write.
    """
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
    for name, value in headers or ():
        lines.append(f"{name}: {value}")
    if status != 101:
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1") + body


def json_response(
    status: int,
    payload: object,
    headers: list[tuple[str, str]] | None = None,
    *,
    close: bool = False,
) -> bytes:
    """Serialize a JSON response (API Gateway answers errors as `{"message": ...}`).

    Args:
        status: HTTP status code.
        payload: JSON-serializable body.
        headers: Extra headers.
        close: Add `Connection: close`.

    Returns:
        The bytes to write.
    """
    body = json.dumps(payload, separators=(",", ":")).encode()
    all_headers = [("Content-Type", "application/json"), *(headers or ())]
    return response(status, body, all_headers, close=close)
