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
from .management import handle_management
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
_MAX_HTTP_BODY = 4 * 1024 * 1024
"""Largest management body read (and answered 413) rather than cut off."""
_CLOSE_TIMEOUT = 5.0
"""Seconds to wait for the client's close frame after ours before dropping the TCP connection."""

_GOING_AWAY = (CloseCode.GOING_AWAY, "Going away")
_DELETED = (CloseCode.NORMAL_CLOSURE, "Connection Closed Normally")


def _iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


class _WebSocket:
    """One accepted WebSocket connection: frames in, messages out, close bookkeeping."""

    __slots__ = (
        "_close_timer",
        "_connection",
        "_fragment_is_text",
        "_fragments",
        "_gateway",
        "_idle_timer",
        "_max_timer",
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
        self._fragments: list[bytes] = []
        self._fragment_is_text = False
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
        ws = self.ws
        ws.receive_data(data)
        for event in ws.events_received():
            # A server protocol created OPEN only ever yields frames (no handshake events).
            frame = cast(Frame, event)
            opcode = frame.opcode
            if opcode is OP_TEXT or opcode is OP_BINARY:
                if frame.fin:
                    self._message(opcode is OP_TEXT, bytes(frame.data))
                else:
                    self._fragments = [bytes(frame.data)]
                    self._fragment_is_text = opcode is OP_TEXT
            elif opcode is OP_CONT:
                self._fragments.append(bytes(frame.data))
                if frame.fin:
                    data_all = b"".join(self._fragments)
                    self._fragments = []
                    self._message(self._fragment_is_text, data_all)
            elif opcode is OP_CLOSE and self.close_info is None:
                received = ws.close_rcvd
                assert received is not None
                code, reason = int(received.code), received.reason
                if code == CloseCode.NO_STATUS_RCVD and not reason:
                    reason = "Client-side close frame status not set"
                self.close_info = (code, reason)
        self._flush()

    def receive_eof(self) -> None:
        self.ws.receive_eof()
        self._flush()

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
        return self.inflight >= _MAX_INFLIGHT

    def task_started(self) -> None:
        self.inflight += 1
        if self.inflight == _MAX_INFLIGHT:
            self._connection.update_reading()

    def task_done(self) -> None:
        self.inflight -= 1
        if self.inflight == _MAX_INFLIGHT - 1:
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
        "_gateway",
        "_reading_paused",
        "_writing_paused",
        "closed",
        "handshaking",
        "transport",
        "websocket",
    )

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.websocket: _WebSocket | None = None
        self.handshaking = False
        self._reading_paused = False
        self._writing_paused = False
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._gateway._tcp.add(self)

    def data_received(self, data: bytes) -> None:
        websocket = self.websocket
        if websocket is not None:
            websocket.receive(data)
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
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD_BYTES:
                    self.reply_and_close(
                        json_response(431, {"message": "request head too large"}, close=True)
                    )
                return
            if end > MAX_HEAD_BYTES:
                self.reply_and_close(
                    json_response(431, {"message": "request head too large"}, close=True)
                )
                return
            try:
                request = parse_head(bytes(buffer[:end]))
                length = request.content_length()
            except HttpError as error:
                self.reply_and_close(
                    json_response(error.status, {"message": error.message}, close=True)
                )
                return
            path = request.path
            if path.startswith(gateway._connections_prefix):
                if length > _MAX_HTTP_BODY:
                    self.reply_and_close(
                        json_response(
                            413,
                            {"message": "Request entity too large"},
                            [("x-amzn-ErrorType", "PayloadTooLargeException")],
                            close=True,
                        )
                    )
                    return
                total = end + 4 + length
                if len(buffer) < total:
                    return
                body = bytes(buffer[end + 4 : total])
                del buffer[:total]
                connection_id = path[len(gateway._connections_prefix) :]
                transport.write(
                    handle_management(
                        request,
                        body,
                        connection_id,
                        gateway._lookup,
                        gateway.api.limits.max_message_bytes,
                        gateway._check_signature,
                    )
                )
                if not request.keep_alive:
                    transport.close()
                    return
            elif path == gateway._stage_path or path == gateway._stage_path + "/":
                del buffer[: end + 4]
                if length:
                    self.reply_and_close(
                        json_response(400, {"message": "unexpected body"}, close=True)
                    )
                    return
                self.handshaking = True
                gateway._start_handshake(self, request)
                return
            else:
                self.reply_and_close(json_response(404, {"message": "Not Found"}, close=True))
                return


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
