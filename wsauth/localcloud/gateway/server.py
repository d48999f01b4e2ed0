"""The gateway's server: one port for the WebSocket stage and its `@connections` API.

Built on an asyncio `Protocol` (callbacks, no stream objects, writes straight to the transport)
with the `websockets` Sans-I/O core for frames: each frame is seen, so API Gateway's frame and
message limits close the connection with 1009 as AWS does. The HTTP side (the upgrade request
and the management API, whose `POST` has a body that `websockets.serve` cannot read) is the
minimal parser in `http.py`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import errno
import functools
import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, cast

from websockets.frames import BINARY as OP_BINARY
from websockets.frames import CLOSE as OP_CLOSE
from websockets.frames import CONT as OP_CONT
from websockets.frames import TEXT as OP_TEXT
from websockets.frames import CloseCode, Frame
from websockets.protocol import OPEN, Protocol, Side
from websockets.utils import accept_key

from ..spec import ApiSpec, FunctionError, Invoker
from .events import (
    ConnectionInfo,
    authorizer_event,
    connect_event,
    disconnect_event,
    message_event,
    new_id,
    parse_authorizer_result,
)
from .http import MAX_HEAD_BYTES, HttpError, Request, json_response, parse_head, response
from .management import handle_management, missing_authentication_token
from .routing import RouteSelector
from .sigv4 import check_signature

__all__ = ["Gateway"]

_WS_LOGGER = logging.getLogger("wsauth.localcloud.gateway.websocket")

# Per-connection bounds, so a slow or hostile client cannot grow memory without limit.
_MAX_WRITE_BUFFER = 1024 * 1024
"""Bytes queued to a client beyond which `@connections` POST answers 429 (AWS's
LimitExceededException: "the WebSocket client side buffer is full")."""
_MAX_INFLIGHT = 64
"""Messages of one connection being handled at once before reading from it pauses."""
# Fairness: one read can hold 256 KB, ~43,000 empty frames (~0.2 s of parsing). Bytes read
# are parsed a slice at a time, and a connection yields the loop once a turn has parsed
# enough frames or bytes; reading from it stays paused until its backlog is parsed. A turn
# is then at most ~0.5 ms of parsing, and payloads still parse at hundreds of MB/s.
_PARSE_SLICE = 512
"""Bytes handed to the frame parser at once: at most 85 frames (empty ones are 6 bytes)."""
_TURN_FRAMES = 64
"""Frames after which a connection's turn ends (checked after each slice)."""
_TURN_BYTES = 64 * 1024
"""Bytes after which a connection's turn ends (two of API Gateway's largest frames)."""
_MIN_FRAME_COST = 6
"""Bytes a frame that leaves a message open counts toward the message limit at least: a
client's smallest frame on the wire (2-byte header, 4-byte mask), so a message cannot be kept
open forever with empty frames. A payload of 6 bytes or more counts as itself."""
_MAX_HTTP_BODY = 4 * 1024 * 1024
"""Bytes a client may send while its handshake runs (before the 101) before it is dropped."""
_CLOSE_TIMEOUT = 5.0
"""Seconds to wait for the client's close frame after ours before dropping the TCP connection."""

_ACCEPT_FAILED = "socket.accept() out of system resource"
"""The message asyncio's loop reports a failed `accept()` with (EMFILE, ENFILE, ENOBUFS,
ENOMEM) to its exception handler; it retries a second later, up to 100 times each turn."""
_SHORTAGE_LOG_INTERVAL = 10.0
"""Seconds between two log lines about the listener running out of descriptors."""
_LOGGER = logging.getLogger("wsauth.localcloud.gateway")

_GOING_AWAY = (CloseCode.GOING_AWAY, "Going away")
_DELETED = (CloseCode.NORMAL_CLOSURE, "Connection Closed Normally")


def _iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


class _WebSocket:
    """One accepted WebSocket connection: frames in, messages out, close bookkeeping."""

    __slots__ = (
        "_close_timer",
        "_connection",
        "_fragment_cost",
        "_fragment_is_text",
        "_fragments",
        "_gateway",
        "_idle_timer",
        "_max_timer",
        "_parse_handle",
        "_unparsed",
        "_unparsed_from",
        "close_info",
        "disconnected",
        "inflight",
        "info",
        "last_active",
        "last_active_wall",
        "transport",
        "ws",
    )

    def __init__(self, gateway: Gateway, connection: _Connection, info: ConnectionInfo) -> None:
        limits = gateway.api.limits
        self._gateway = gateway
        self._connection = connection
        assert connection.transport is not None
        self.transport = connection.transport
        self.info = info
        self.ws = Protocol(
            Side.SERVER,
            state=OPEN,
            max_size=(limits.max_message_bytes, limits.max_frame_bytes),
            logger=_WS_LOGGER,
        )
        self._fragments = bytearray()
        self._fragment_cost = 0
        self._fragment_is_text = False
        self._unparsed = b""
        self._unparsed_from = 0
        self._parse_handle: asyncio.Handle | None = None
        self.close_info: tuple[int, str] | None = None
        """The `$disconnect` code and reason, fixed by whoever starts the closing."""
        self.disconnected = False
        self.inflight = 0
        self.last_active = time.monotonic()
        self.last_active_wall = time.time()
        loop = asyncio.get_running_loop()
        self._idle_timer = loop.call_later(limits.idle_timeout_seconds, self._check_idle)
        self._max_timer = loop.call_later(limits.max_connection_seconds, self.close, *_GOING_AWAY)
        self._close_timer: asyncio.TimerHandle | None = None

    # Incoming data.

    def receive(self, data: bytes) -> None:
        """Take bytes read from the client; `_parse` works through them a turn at a time."""
        if self._unparsed_from < len(self._unparsed):
            self._unparsed = self._unparsed[self._unparsed_from :] + data
        else:
            self._unparsed = data
        self._unparsed_from = 0
        if self._parse_handle is None and self.inflight < _MAX_INFLIGHT:
            self._parse()

    def receive_eof(self) -> None:
        if self._unparsed_from < len(self._unparsed):
            # Rare, as reading pauses while a backlog waits. The transport closes when this
            # returns, so the rest (one read at most) is parsed now, as it was received.
            self.ws.receive_data(self._unparsed[self._unparsed_from :])
            self._drop_unparsed()
            self._handle_frames()
        self.ws.receive_eof()
        self._flush()

    def _parse(self) -> None:
        """Parse one turn's worth of the backlog, then yield the loop if some is left."""
        self._parse_handle = None
        self._parse_turn()
        self._flush()
        if self.transport.is_closing():
            self._drop_unparsed()
        elif self._unparsed_from < len(self._unparsed) and self.inflight < _MAX_INFLIGHT:
            # A full handling queue resumes parsing from `task_done` instead.
            self._parse_handle = asyncio.get_running_loop().call_soon(self._parse)
        self._connection.update_reading()

    def _parse_turn(self) -> None:
        data, start = self._unparsed, self._unparsed_from
        turn_end = min(len(data), start + _TURN_BYTES)
        frames = 0
        while start < turn_end and frames < _TURN_FRAMES and self.inflight < _MAX_INFLIGHT:
            stop = min(start + _PARSE_SLICE, turn_end)
            self.ws.receive_data(data[start:stop])
            start = stop
            frames += self._handle_frames()
        if start < len(data):
            self._unparsed_from = start
        else:
            self._drop_unparsed()

    def _drop_unparsed(self) -> None:
        self._unparsed = b""
        self._unparsed_from = 0

    def _handle_frames(self) -> int:
        ws = self.ws
        events = ws.events_received()
        for event in events:
            # A server protocol created OPEN only ever yields frames (no handshake events).
            frame = cast(Frame, event)
            opcode = frame.opcode
            if opcode is OP_TEXT or opcode is OP_BINARY:
                if frame.fin:
                    self._message(opcode is OP_TEXT, bytes(frame.data))
                else:
                    self._fragments = bytearray(frame.data)
                    self._fragment_cost = max(len(frame.data), _MIN_FRAME_COST)
                    self._fragment_is_text = opcode is OP_TEXT
            elif opcode is OP_CONT:
                self._fragments += frame.data
                # The last frame ends the run, so only its payload counts: clients such as
                # `websockets` end a fragmented message with an empty final frame.
                self._fragment_cost += (
                    len(frame.data) if frame.fin else max(len(frame.data), _MIN_FRAME_COST)
                )
                limit = self._gateway.api.limits.max_message_bytes
                if self._fragment_cost > limit:
                    # The parser counts payload only; an endless run of empty continuation
                    # frames would otherwise never complete, count or end.
                    self._fragments, self._fragment_cost = bytearray(), 0
                    reason = (
                        f"message over {limit} bytes (a frame counts {_MIN_FRAME_COST} at least)"
                    )
                    # Set now: a close frame parsed in the same slice must not replace it.
                    self.close_info = (CloseCode.MESSAGE_TOO_BIG, reason)
                    ws.fail(CloseCode.MESSAGE_TOO_BIG, reason)
                elif frame.fin:
                    data_all = bytes(self._fragments)
                    self._fragments, self._fragment_cost = bytearray(), 0
                    self._message(self._fragment_is_text, data_all)
            elif opcode is OP_CLOSE and self.close_info is None:
                received = ws.close_rcvd
                assert received is not None
                code, reason = int(received.code), received.reason
                if code == CloseCode.NO_STATUS_RCVD and not reason:
                    reason = "Client-side close frame status not set"
                self.close_info = (code, reason)
        return len(events)

    def _message(self, is_text: bool, data: bytes) -> None:
        if self.ws.state is not OPEN:
            return  # arrived after our close frame: the connection is going away
        self.last_active = time.monotonic()
        if is_text:
            try:
                body = data.decode()
            except UnicodeDecodeError:
                self.ws.fail(CloseCode.INVALID_DATA, "invalid UTF-8")
                return
            self._gateway._on_message(self, body, False)
        else:
            self._gateway._on_message(self, base64.b64encode(data).decode(), True)

    def _flush(self) -> None:
        ws = self.ws
        for chunk in ws.data_to_send():
            if chunk:
                self.transport.write(chunk)
            else:
                # Sans-I/O's end-of-stream marker: a server closes the TCP connection.
                self.transport.close()
        if self.close_info is None and ws.close_sent is not None:
            # We failed the connection (1009 oversize, 1002 protocol error, 1007 bad UTF-8).
            self.close_info = (int(ws.close_sent.code), ws.close_sent.reason)

    # Flow control for messages being handled.

    @property
    def busy(self) -> bool:
        """True while reading must pause: messages pile up in flight, or bytes wait unparsed."""
        return self.inflight >= _MAX_INFLIGHT or self._unparsed_from < len(self._unparsed)

    def task_started(self) -> None:
        self.inflight += 1
        if self.inflight == _MAX_INFLIGHT:
            self._connection.update_reading()

    def task_done(self) -> None:
        self.inflight -= 1
        if self.inflight == _MAX_INFLIGHT - 1:
            if self._unparsed_from < len(self._unparsed) and self._parse_handle is None:
                self._parse_handle = asyncio.get_running_loop().call_soon(self._parse)
            self._connection.update_reading()

    # Outgoing messages (ManagedConnection and the gateway's own error messages).

    @property
    def is_open(self) -> bool:
        return self.ws.state is OPEN

    def send_text(self, text: str) -> None:
        if self.ws.state is OPEN:
            self.ws.send_text(text.encode())
            self._flush()

    def post(self, data: bytes) -> bool:
        if self.transport.get_write_buffer_size() > _MAX_WRITE_BUFFER:
            return False
        try:
            data.decode()
        except UnicodeDecodeError:
            self.ws.send_binary(data)
        else:
            self.ws.send_text(data)
        self._flush()
        self.last_active = time.monotonic()
        self.last_active_wall = time.time()
        return True

    def describe(self) -> dict[str, Any]:
        return {
            "connectedAt": _iso(self.info.connected_at_ms / 1000),
            "identity": {"sourceIp": self.info.source_ip, "userAgent": self.info.user_agent},
            "lastActiveAt": _iso(self.last_active_wall),
        }

    def delete(self) -> None:
        self.close(*_DELETED, client_reason="")

    # Closing.

    def close(self, code: int, reason: str, *, client_reason: str | None = None) -> None:
        """Start a server-side close; `$disconnect` reports `code`/`reason`."""
        if self.ws.state is not OPEN:
            return
        self.close_info = (code, reason)
        self.ws.send_close(code, reason if client_reason is None else client_reason)
        self._flush()
        self._close_timer = asyncio.get_running_loop().call_later(
            _CLOSE_TIMEOUT, self.transport.abort
        )

    def _check_idle(self) -> None:
        limit = self._gateway.api.limits.idle_timeout_seconds
        remaining = self.last_active + limit - time.monotonic()
        if remaining > 0:
            self._idle_timer = asyncio.get_running_loop().call_later(remaining, self._check_idle)
        else:
            self.close(*_GOING_AWAY)

    def connection_lost(self) -> None:
        if self._parse_handle is not None:
            self._parse_handle.cancel()
            self._parse_handle = None
        self._drop_unparsed()
        self._idle_timer.cancel()
        self._max_timer.cancel()
        if self._close_timer is not None:
            self._close_timer.cancel()
        if not self.disconnected:
            self.disconnected = True
            self._gateway._on_disconnect(self)


class _Connection(asyncio.Protocol):
    """One TCP connection: HTTP requests until it upgrades to a WebSocket."""

    __slots__ = (
        "_buffer",
        "_discard",
        "_gateway",
        "_head",
        "_reading_paused",
        "_request_timer",
        "_scanned",
        "_writing_paused",
        "closed",
        "handshaking",
        "transport",
        "websocket",
    )

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._buffer = bytearray()
        self._head: tuple[Request, int, int] | None = None
        """The parsed head of a request whose body is still arriving: (request, where the body
        starts in the buffer, its length)."""
        self._scanned = 0
        """How much of the buffer is known to hold no end of head."""
        self._discard: int | None = None
        """Body bytes left to drop after a refusal answered before the body (None: reading)."""
        self._request_timer: asyncio.TimerHandle | None = None
        self.transport: asyncio.Transport | None = None
        self.websocket: _WebSocket | None = None
        self.handshaking = False
        self._reading_paused = False
        self._writing_paused = False
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._gateway._accepted(self)
        self._arm_request_timer()

    def data_received(self, data: bytes) -> None:
        websocket = self.websocket
        if websocket is not None:
            websocket.receive(data)
            return
        if self._discard is not None:
            self._drop(len(data))
            return
        self._buffer += data
        if self.handshaking:
            # A client must wait for 101 before sending frames; don't buffer without bound.
            if len(self._buffer) > _MAX_HTTP_BODY:
                self._abort()
            return
        self._serve_http()

    # Backpressure: stop reading from a peer that does not read what we write, or whose
    # messages are piling up in flight, so its buffers stay bounded.

    def pause_writing(self) -> None:
        self._writing_paused = True
        self.update_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self.update_reading()

    def update_reading(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        websocket = self.websocket
        pause = self._writing_paused or (websocket is not None and websocket.busy)
        if pause != self._reading_paused:
            self._reading_paused = pause
            if pause:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def eof_received(self) -> bool | None:
        if self.websocket is not None:
            self.websocket.receive_eof()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_request_timer()
        self._gateway._tcp.discard(self)
        if self.websocket is not None:
            self.websocket.connection_lost()
        if not self.closed.done():
            self.closed.set_result(None)

    def _abort(self) -> None:
        assert self.transport is not None
        self.transport.abort()

    def reply_and_close(self, payload: bytes) -> None:
        assert self.transport is not None
        self.transport.write(payload)
        self.transport.close()
        if self._request_timer is None:
            # A refused peer that does not read the answer is dropped, not kept.
            self._arm_request_timer()

    # The request timeout: a request must arrive whole (head and body) within it, and a kept-alive
    # connection may wait that long for the next one, so connections that send nothing, or a
    # head or body a byte at a time, cannot hold descriptors and buffers for ever.

    def _arm_request_timer(self) -> None:
        if self._request_timer is not None:
            self._request_timer.cancel()
        self._request_timer = asyncio.get_running_loop().call_later(
            self._gateway.api.limits.request_timeout_seconds, self._request_timed_out
        )

    def _cancel_request_timer(self) -> None:
        if self._request_timer is not None:
            self._request_timer.cancel()
            self._request_timer = None

    def _request_timed_out(self) -> None:
        self._request_timer = None
        transport = self.transport
        assert transport is not None
        if transport.is_closing() or self._discard is not None:
            # Refused already, and the peer neither took the answer nor stopped sending.
            transport.abort()
            return
        if self._buffer:
            transport.write(json_response(408, {"message": "Request Timeout"}, close=True))
        transport.close()
        if transport.get_write_buffer_size():
            transport.abort()  # the peer does not read: waiting for it to would keep it open

    def _refuse_body(self, payload: bytes, unread: int) -> None:
        """Answer before the body is read, then drop the body as it arrives.

        Closing with the body unread would reset the connection and could lose the answer (a
        client such as boto3 sends its whole body before reading), so only our side is shut;
        the connection closes once the declared body is through, the peer closes, or the
        request timeout passes.
        """
        transport = self.transport
        assert transport is not None
        self._buffer.clear()
        self._head = None
        transport.write(payload)
        transport.write_eof()
        self._discard = unread
        self._drop(0)

    def _drop(self, count: int) -> None:
        assert self._discard is not None and self.transport is not None
        self._discard -= count
        if self._discard <= 0:
            self.transport.close()

    def upgrade(self, websocket: _WebSocket, handshake_response: bytes) -> None:
        assert self.transport is not None
        self.handshaking = False
        self.websocket = websocket
        self.transport.write(handshake_response)
        if self._buffer:
            early, self._buffer = bytes(self._buffer), bytearray()
            websocket.receive(early)

    def _serve_http(self) -> None:
        gateway = self._gateway
        transport = self.transport
        assert transport is not None
        buffer = self._buffer
        while buffer and not transport.is_closing():
            head = self._head
            if head is None:
                head = self._read_head()
                if head is None:
                    return
            request, body_start, length = head
            total = body_start + length
            if len(buffer) < total:
                # Kept parsed: the segments still to come only count toward the body.
                self._head = head
                return
            self._head = None
            body = bytes(buffer[body_start:total])
            del buffer[:total]
            path = request.path
            if path.startswith(gateway._connections_prefix):
                answer = handle_management(
                    request,
                    body,
                    path[len(gateway._connections_prefix) :],
                    gateway._lookup,
                    gateway.api.limits.max_message_bytes,
                    gateway._check_signature,
                )
            else:
                answer = missing_authentication_token(request)
            transport.write(answer)
            if not request.keep_alive:
                transport.close()
                return
            self._arm_request_timer()  # the next request's time starts now

    def _read_head(self) -> tuple[Request, int, int] | None:
        """Parse and route the head at the start of the buffer, once it is whole.

        Returns:
            For a `@connections` request, whose body is to be read: the request, where its
            body starts in the buffer and its length. None when the head is incomplete or was
            answered here (refused, or its handshake started).
        """
        gateway = self._gateway
        buffer = self._buffer
        # Resume where the last look stopped (3 bytes back: `\r\n\r\n` may straddle two
        # segments), so a head sent in small pieces is scanned once, not once per piece.
        end = buffer.find(b"\r\n\r\n", max(0, self._scanned - 3))
        if end < 0:
            self._scanned = len(buffer)
            if len(buffer) > MAX_HEAD_BYTES:
                self.reply_and_close(
                    json_response(431, {"message": "request head too large"}, close=True)
                )
            return None
        self._scanned = 0
        if end > MAX_HEAD_BYTES:
            self.reply_and_close(
                json_response(431, {"message": "request head too large"}, close=True)
            )
            return None
        try:
            request = parse_head(bytes(buffer[:end]))
            length = request.content_length()
        except HttpError as error:
            self.reply_and_close(
                json_response(error.status, {"message": error.message}, close=True)
            )
            return None
        path = request.path
        if path.startswith(gateway._connections_prefix) or _is_connections_path(path):
            if length > gateway.api.limits.max_message_bytes:
                # API Gateway's 413 past 128 KB, told from the declared length: nothing of an
                # oversized body is buffered, and nothing of it waits for a signature check.
                self._refuse_body(
                    json_response(
                        413,
                        {"message": "Request entity too large"},
                        [("x-amzn-ErrorType", "PayloadTooLargeException")],
                        close=True,
                    ),
                    end + 4 + length - len(buffer),
                )
                return None
            return request, end + 4, length
        if path == gateway._stage_path or path == gateway._stage_path + "/":
            del buffer[: end + 4]
            if length:
                self.reply_and_close(json_response(400, {"message": "unexpected body"}, close=True))
                return None
            self.handshaking = True
            # The handshake's own time is bounded by the authorizer's and $connect's timeouts.
            self._cancel_request_timer()
            gateway._start_handshake(self, request)
            return None
        self.reply_and_close(json_response(404, {"message": "Not Found"}, close=True))
        return None


def _is_connections_path(path: str) -> bool:
    """Whether `path` is `/{some stage}/@connections…`, this API's stage or not."""
    parts = path.split("/", 3)
    return len(parts) > 2 and parts[2] == "@connections"


def _refusal(status: int, message: str | None) -> bytes:
    return json_response(status, {"message": message}, close=True)


def _authorizer_status(result: Any, method_arn: str) -> str:
    try:
        decision = parse_authorizer_result(result, method_arn, 0)
    except ValueError as error:
        return f"malformed ({error})"
    return "allow" if decision.allowed else "deny"


def _header_ci(headers: Any, name: str) -> str | None:
    if not isinstance(headers, dict):
        return None
    lowered = name.lower()
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == lowered and isinstance(value, str):
            return value
    return None


class Gateway:
    """API Gateway for one WebSocket API stage, served on one local port.

    Serves `ws://host:port/{stage}` (the WebSocket endpoint) and
    `http://host:port/{stage}/@connections/{id}` (the management API) and invokes the API's
    Lambda functions through `invoker`, as API Gateway's AWS_PROXY integrations do.
    """

    def __init__(
        self,
        api: ApiSpec,
        invoker: Invoker,
        *,
        region: str,
        host: str = "127.0.0.1",
        port: int = 8080,
        log: Callable[[str], None] | None = None,
        credentials: Mapping[str, str] | None = None,
    ) -> None:
        """Prepare a gateway (nothing is bound until `start`).

        Args:
            api: The API, its routes, authorizer, stage and limits.
            invoker: Invokes the functions the routes integrate.
            region: The API's region (for `methodArn`, and the scope `@connections` calls
                must be signed for).
            host: Interface to bind.
            port: Port to bind; 0 picks a free one (read it back from `port`).
            log: Receives one line per invocation (route, connection, status, duration).
            credentials: Secret access key by access key id: `@connections` signatures made
                with these keys are verified; other keys are checked for everything but the
                signature itself (see `sigv4`).

        Raises:
            ValueError: When the route selection expression is not supported.
        """
        self.api = api
        self._invoker = invoker
        self._region = region
        self._host = host
        self._port = port
        self._log = log
        self._check_signature = functools.partial(
            check_signature, region=region, secrets=dict(credentials or {})
        )
        self._selector = RouteSelector(api.route_selection_expression, api.routes)
        self._stage_path = "/" + api.stage
        self._connections_prefix = self._stage_path + "/@connections/"
        self._connections: dict[str, _WebSocket] = {}
        self._tcp: set[_Connection] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None
        self._previous_exception_handler: Any = None
        self._shortage_since: float | None = None
        """When `accept()` started failing for want of descriptors (None: it accepts)."""
        self._last_accept_failure = 0.0
        self._shortage_logged_at = -_SHORTAGE_LOG_INTERVAL
        self._domain_name = f"{host}:{port}"
        routes = api.routes
        self._connect_route = routes.get("$connect")
        self._disconnect_route = routes.get("$disconnect")

    # Public API.

    async def start(self) -> None:
        """Bind the port and start serving.

        Raises:
            OSError: When the port cannot be bound (the message names host and port).
        """
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: _Connection(self), self._host, self._port
            )
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise OSError(
                    error.errno,
                    f"port {self._port} on {self._host} is already in use; "
                    "stop what holds it or choose another port",
                ) from error
            raise OSError(
                error.errno, f"cannot listen on {self._host}:{self._port}: {error.strerror}"
            ) from error
        self._port = self._server.sockets[0].getsockname()[1]
        self._domain_name = f"{self._host}:{self._port}"
        # asyncio reports a failed accept() (out of descriptors) to the loop's exception handler,
        # whose default logs a traceback for each of up to 100 tries a second: ours says it calmly.
        self._previous_exception_handler = loop.get_exception_handler()
        loop.set_exception_handler(self._on_loop_exception)

    @property
    def port(self) -> int:
        """The bound port (the real one when started with port 0)."""
        return self._port

    @property
    def domain_name(self) -> str:
        """`host:port`, what stands for `{api-id}.execute-api.{region}.amazonaws.com` here."""
        return self._domain_name

    def websocket_url(self) -> str:
        """Return the WebSocket endpoint, `ws://host:port/{stage}`."""
        return f"ws://{self._domain_name}/{self.api.stage}"

    def management_url(self) -> str:
        """Return the management endpoint (boto3's `endpoint_url`), `http://host:port/{stage}`."""
        return f"http://{self._domain_name}/{self.api.stage}"

    async def close(self) -> None:
        """Close every client (1001 going away, `$disconnect` for each), then stop serving."""
        if self._server is None:
            return
        self._server.close()
        for websocket in list(self._connections.values()):
            websocket.close(*_GOING_AWAY)
        for task in list(self._tasks):
            if task.get_name().startswith("handshake"):
                task.cancel()
        for connection in list(self._tcp):
            if connection.websocket is None and connection.transport is not None:
                connection.transport.close()
        pending = [connection.closed for connection in self._tcp]
        if pending:
            await asyncio.wait(pending, timeout=_CLOSE_TIMEOUT + 1)
        stragglers = list(self._tcp)
        for connection in stragglers:
            if connection.transport is not None:
                connection.transport.abort()
        if stragglers:
            # abort() reports connection_lost on the next loop turn; that spawns $disconnect.
            await asyncio.wait([connection.closed for connection in stragglers])
        if self._tasks:
            await asyncio.wait(
                list(self._tasks), timeout=self.api.limits.integration_timeout_seconds + 1
            )
        await self._server.wait_closed()
        self._server = None
        loop = asyncio.get_running_loop()
        if loop.get_exception_handler() == self._on_loop_exception:
            loop.set_exception_handler(self._previous_exception_handler)

    # Accepting.

    def _accepted(self, connection: _Connection) -> None:
        self._tcp.add(connection)
        # Connections accepted in the turn accept() began failing are no recovery; two seconds
        # without a failure are (asyncio retries every second while it fails).
        if self._shortage_since is not None:
            now = time.monotonic()
            if now - self._last_accept_failure > 2.0:
                _LOGGER.warning(
                    "gateway %s: accepting connections again after %.0f s",
                    self._domain_name,
                    self._last_accept_failure - self._shortage_since,
                )
                self._shortage_since = None

    def _on_loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        listener = context.get("socket")
        server = self._server
        if (
            context.get("message") == _ACCEPT_FAILED
            and listener is not None
            and server is not None
            and any(listener.fileno() == own.fileno() for own in server.sockets)
        ):
            self._on_accept_failed(context.get("exception"))
            return
        previous = self._previous_exception_handler
        if previous is None:
            loop.default_exception_handler(context)
        else:
            previous(loop, context)

    def _on_accept_failed(self, error: object) -> None:
        now = time.monotonic()
        self._last_accept_failure = now
        if self._shortage_since is None:
            self._shortage_since = now
        if now - self._shortage_logged_at < _SHORTAGE_LOG_INTERVAL:
            return
        self._shortage_logged_at = now
        reason = error.strerror if isinstance(error, OSError) else error
        _LOGGER.warning(
            "gateway %s: cannot accept connections (%s) with %d open; new ones wait until some "
            "close (idle and incomplete ones do after %g s); said again at most every %g s",
            self._domain_name,
            reason,
            len(self._tcp),
            self.api.limits.request_timeout_seconds,
            _SHORTAGE_LOG_INTERVAL,
        )

    # Invocations.

    def _spawn(self, coroutine: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _invoke(
        self,
        label: str,
        function_name: str,
        connection_id: str,
        event: dict[str, Any],
        status_of: Callable[[Any], str] | None = None,
    ) -> Any:
        """Invoke a function under the integration timeout, logging one line.

        The line's status is the result's `statusCode` (or what `status_of` makes of the
        result), `timeout`, or `error <kind>`.

        Raises:
            FunctionError: The function failed, timed out, or the invoker broke.
        """
        started = time.perf_counter()
        status = "error"
        try:
            try:
                async with asyncio.timeout(self.api.limits.integration_timeout_seconds):
                    result = await self._invoker.invoke(function_name, event)
            except TimeoutError:
                status = "timeout"
                raise FunctionError(
                    "TimeoutError", f"{function_name} exceeded the integration timeout"
                ) from None
            except FunctionError as error:
                status = f"error {error.kind}"
                raise
            except Exception as error:  # an invoker bug must not kill the connection
                status = "error Invoker"
                raise FunctionError("Unhandled", f"invoker failed: {error!r}") from error
            if status_of is not None:
                status = status_of(result)
            else:
                code = result.get("statusCode") if isinstance(result, dict) else None
                status = str(code) if code is not None else "ok"
            return result
        finally:
            if self._log is not None:
                elapsed_ms = (time.perf_counter() - started) * 1000
                self._log(f"{label} {connection_id} {status} {elapsed_ms:.1f} ms")

    # Handshake.

    def _start_handshake(self, connection: _Connection, request: Request) -> None:
        self._spawn(self._handshake(connection, request), "handshake")

    def _refuse_upgrade(self, request: Request) -> bytes | None:
        if request.method != "GET":
            return json_response(
                405, {"message": "Method Not Allowed"}, [("Allow", "GET")], close=True
            )
        upgrade = (request.header("Upgrade") or "").lower()
        connection = (request.header("Connection") or "").lower()
        if upgrade != "websocket" or "upgrade" not in connection:
            return json_response(
                426, {"message": "Upgrade Required"}, [("Upgrade", "websocket")], close=True
            )
        if request.header("Sec-WebSocket-Version") != "13":
            return json_response(
                426, {"message": "Upgrade Required"}, [("Sec-WebSocket-Version", "13")], close=True
            )
        # RFC 6455 §4.1: the opening handshake is HTTP/1.1 or later, with a Host header.
        if request.version != "HTTP/1.1":
            return _refusal(400, "the WebSocket handshake needs HTTP/1.1")
        if not request.header("Host"):
            return _refusal(400, "missing Host header")
        key = request.header("Sec-WebSocket-Key") or ""
        try:
            if len(base64.b64decode(key, validate=True)) != 16:
                raise ValueError
        except (binascii.Error, ValueError):
            return _refusal(400, "invalid Sec-WebSocket-Key")
        return None

    def _identity_present(
        self, sources: tuple[str, ...], request: Request, query: list[tuple[str, str]]
    ) -> bool:
        for source in sources:
            if source.startswith("route.request.header."):
                value = request.header(source[len("route.request.header.") :])
            elif source.startswith("route.request.querystring."):
                name = source[len("route.request.querystring.") :]
                value = next((v for k, v in reversed(query) if k == name), None)
            else:
                # stageVariables / context sources are always present locally.
                continue
            if not value:
                return False
        return True

    async def _handshake(self, connection: _Connection, request: Request) -> None:
        refusal = self._refuse_upgrade(request)
        if refusal is not None:
            connection.reply_and_close(refusal)
            return
        transport = connection.transport
        assert transport is not None
        peer = transport.get_extra_info("peername")
        now_ms = int(time.time() * 1000)
        info = ConnectionInfo(
            api_id=self.api.api_id,
            stage=self.api.stage,
            domain_name=self._domain_name,
            connection_id=new_id(unguessable=True),
            connected_at_ms=now_ms,
            source_ip=peer[0] if peer else "127.0.0.1",
            user_agent=request.header("User-Agent") or "",
        )
        query = request.query_pairs()
        authorizer = self.api.connect_authorizer
        if authorizer is not None:
            if not self._identity_present(authorizer.identity_sources, request, query):
                if self._log is not None:
                    self._log(f"$connect authorizer {info.connection_id} 401 identity missing")
                connection.reply_and_close(_refusal(401, "Unauthorized"))
                return
            event = authorizer_event(
                info, region=self._region, headers=request.headers, query=query, now_ms=now_ms
            )
            method_arn = event["methodArn"]
            started = time.perf_counter()
            try:
                result = await self._invoke(
                    "$connect authorizer",
                    authorizer.function_name,
                    info.connection_id,
                    event,
                    status_of=lambda result: _authorizer_status(result, method_arn),
                )
                latency_ms = int((time.perf_counter() - started) * 1000)
                decision = parse_authorizer_result(result, method_arn, latency_ms)
            except (FunctionError, ValueError):
                # A failing authorizer or a malformed answer is API Gateway's 500.
                connection.reply_and_close(_refusal(500, "Internal server error"))
                return
            if not decision.allowed:
                connection.reply_and_close(_refusal(403, "Forbidden"))
                return
            info.authorizer = decision.authorizer_context
        subprotocol: str | None = None
        route = self._connect_route
        if route is not None:
            event = connect_event(info, headers=request.headers, query=query, now_ms=now_ms)
            try:
                result = await self._invoke(
                    "$connect", route.function_name, info.connection_id, event
                )
            except FunctionError:
                connection.reply_and_close(_refusal(500, "Internal server error"))
                return
            status = result.get("statusCode", 200) if isinstance(result, dict) else 200
            if not isinstance(status, int) or not 200 <= status < 300:
                status = status if isinstance(status, int) and 100 <= status < 600 else 502
                body = result.get("body") if isinstance(result, dict) else None
                payload = body.encode() if isinstance(body, str) else b""
                connection.reply_and_close(response(status, payload, close=True))
                return
            if isinstance(result, dict):
                subprotocol = _header_ci(result.get("headers"), "Sec-WebSocket-Protocol")
        headers = [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", accept_key(request.header("Sec-WebSocket-Key") or "")),
        ]
        if subprotocol:
            headers.append(("Sec-WebSocket-Protocol", subprotocol))
        websocket = _WebSocket(self, connection, info)
        if transport.is_closing():
            # The client left while $connect ran: the connection existed, so it disconnects.
            websocket.close_info = (CloseCode.ABNORMAL_CLOSURE, "")
            websocket.connection_lost()
            return
        self._connections[info.connection_id] = websocket
        connection.upgrade(websocket, response(101, headers=headers))

    # Messages.

    def _lookup(self, connection_id: str) -> _WebSocket | None:
        websocket = self._connections.get(connection_id)
        return websocket if websocket is not None and websocket.is_open else None

    def _on_message(self, websocket: _WebSocket, body: str, is_base64: bool) -> None:
        route_key = self._selector.select(None if is_base64 else body)
        if route_key is None:
            # API Gateway's answer when no route matches and there is no $default.
            websocket.send_text(
                json.dumps(
                    {
                        "message": "Forbidden",
                        "connectionId": websocket.info.connection_id,
                        "requestId": new_id(),
                    }
                )
            )
            return
        websocket.task_started()
        self._spawn(self._handle_message(websocket, route_key, body, is_base64), "message")

    async def _handle_message(
        self, websocket: _WebSocket, route_key: str, body: str, is_base64: bool
    ) -> None:
        info = websocket.info
        event = message_event(
            info, route_key, body, is_base64=is_base64, now_ms=int(time.time() * 1000)
        )
        try:
            await self._invoke(
                route_key, self.api.routes[route_key].function_name, info.connection_id, event
            )
        except FunctionError:
            websocket.send_text(
                json.dumps(
                    {
                        "message": "Internal server error",
                        "connectionId": info.connection_id,
                        "requestId": event["requestContext"]["requestId"],
                    }
                )
            )
        finally:
            websocket.task_done()
        # Without a route response (two-way routes), API Gateway drops the function's result.

    # Disconnect.

    def _on_disconnect(self, websocket: _WebSocket) -> None:
        info = websocket.info
        self._connections.pop(info.connection_id, None)
        route = self._disconnect_route
        if route is None:
            return
        code, reason = websocket.close_info or (CloseCode.ABNORMAL_CLOSURE, "")
        event = disconnect_event(
            info, status_code=int(code), reason=reason, now_ms=int(time.time() * 1000)
        )
        self._spawn(
            self._run_disconnect(route.function_name, info.connection_id, event), "disconnect"
        )

    async def _run_disconnect(
        self, function_name: str, connection_id: str, event: dict[str, Any]
    ) -> None:
        # $disconnect is best effort on AWS too; its result and errors are dropped.
        try:
            await self._invoke("$disconnect", function_name, connection_id, event)
        except FunctionError:
            pass
