"""The gateway emulator: API Gateway WebSocket APIs (stage, routes, authorizer, @connections).

Layers: `http` (HTTP/1.1 heads and responses), `routing` (route selection), `events` (AWS event
shapes and the authorizer's answer), `management` (the `@connections` API), `server` (the asyncio
server and the connection lifecycle).
"""

from __future__ import annotations

from .server import Gateway

__all__ = ["Gateway"]
