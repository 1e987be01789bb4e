"""ConnectionRegistry: the open WebSockets of this process (progress and agent chat), for stats
and cleanup. One registry per process, kept on services.ws_connections.

Also the pieces both WebSocket routes need: authentication (`?token=` or a first
{"type": "auth", "token"} frame; failure -> close 1008 after accepting, so the client sees the
code rather than a bare HTTP 403) and bounded JSON frames (MAX_MESSAGE_BYTES).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from avatarbot.api.deps import websocket_user
from avatarbot.services import Services
from avatarbot.storage.models import User

MAX_MESSAGE_BYTES = 64 * 1024
AUTH_TIMEOUT_S = 10.0
CLOSE_POLICY_VIOLATION = 1008


@dataclass
class Connection:
    id: int
    kind: str  # progress | agent
    user_id: int
    websocket: WebSocket
    opened_at: float = field(default_factory=time.time)
    username: str = ""
    messages_in: int = 0
    messages_out: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def to_public(self) -> dict[str, Any]:
        client = self.websocket.client
        return {
            "id": self.id,
            "kind": self.kind,
            "user_id": self.user_id,
            "username": self.username,
            "client": f"{client.host}:{client.port}" if client else "",
            "opened_at": self.opened_at,
            "open_s": round(time.time() - self.opened_at, 1),
            "messages_in": self.messages_in,
            "messages_out": self.messages_out,
            **self.meta,
        }


class ConnectionRegistry:
    def __init__(self) -> None:
        self._connections: dict[int, Connection] = {}
        self._ids = itertools.count(1)

    def add(
        self, websocket: WebSocket, *, kind: str, user_id: int, username: str = "", **meta: Any
    ) -> Connection:
        conn = Connection(
            id=next(self._ids),
            kind=kind,
            user_id=user_id,
            websocket=websocket,
            username=username,
            meta=dict(meta),
        )
        self._connections[conn.id] = conn
        return conn

    def remove(self, conn: Connection) -> None:
        self._connections.pop(conn.id, None)

    def of_user(self, user_id: int, kind: str | None = None) -> list[Connection]:
        return [
            c
            for c in self._connections.values()
            if c.user_id == user_id and (kind is None or c.kind == kind)
        ]

    def list(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [c.to_public() for c in self._connections.values() if kind in (None, c.kind)]

    def stats(self) -> dict[str, Any]:
        by_kind: dict[str, int] = {}
        for conn in self._connections.values():
            by_kind[conn.kind] = by_kind.get(conn.kind, 0) + 1
        users = {c.user_id for c in self._connections.values()}
        return {
            "total": len(self._connections),
            "by_kind": by_kind,
            "users": len(users),
            "connections": self.list(),
        }


def connection_registry(services: Services) -> ConnectionRegistry:
    """The process's registry, created on first use (whichever WebSocket route comes first)."""
    if services.ws_connections is None:
        services.ws_connections = ConnectionRegistry()
    return services.ws_connections


class FrameTooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"message of {size} bytes is larger than {MAX_MESSAGE_BYTES} bytes")
        self.size = size


async def receive_frame(websocket: WebSocket) -> dict[str, Any]:
    """One JSON object from the client. Raises WebSocketDisconnect, FrameTooLarge or ValueError."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    raw: str | bytes | None = message.get("text")
    if raw is None:
        raw = message.get("bytes") or b""
    size = len(raw.encode("utf-8")) if isinstance(raw, str) else len(raw)
    if size > MAX_MESSAGE_BYTES:
        raise FrameTooLarge(size)
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("a frame must be a JSON object")
    return data


async def authenticate(websocket: WebSocket) -> User | None:
    """Accept and authenticate; on failure send an error frame, close with 1008, return None."""
    await websocket.accept()
    token = websocket.query_params.get("token")
    if not token:
        try:
            frame = await asyncio.wait_for(receive_frame(websocket), AUTH_TIMEOUT_S)
        except WebSocketDisconnect:
            return None
        except (TimeoutError, FrameTooLarge, ValueError):
            frame = {}
        if frame.get("type") == "auth" and isinstance(frame.get("token"), str):
            token = frame["token"]
    user = await websocket_user(websocket, token) if token else None
    if user is None:
        await websocket.send_json(
            {"type": "error", "code": "unauthorized", "detail": "not authenticated"}
        )
        await websocket.close(code=CLOSE_POLICY_VIOLATION, reason="not authenticated")
        return None
    return user
