"""WebSocket plumbing shared by /ws/agent and /ws/progress: auth, bounded frames, live registry.

Authentication: `?token=<access token>` or, when absent, a first frame
{"type": "auth", "token": "..."} within AUTH_TIMEOUT_S. The socket is accepted first so that a
failure reaches the client as close code 1008 (policy violation) instead of a bare HTTP 403.
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
from avatarbot.storage.models import User

MAX_MESSAGE_BYTES = 64 * 1024
AUTH_TIMEOUT_S = 10.0
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TOO_BIG = 1009


@dataclass
class Connection:
    id: str
    kind: str  # "agent" | "progress"
    user_id: int
    username: str
    client: str
    connected_at: float = field(default_factory=time.time)
    messages_in: int = 0
    messages_out: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "user_id": self.user_id,
            "username": self.username,
            "client": self.client,
            "connected_at": self.connected_at,
            "connected_s": round(time.time() - self.connected_at, 1),
            "messages_in": self.messages_in,
            "messages_out": self.messages_out,
            **self.meta,
        }


class ConnectionRegistry:
    """Live WebSocket connections of this process (services.ws_connections)."""

    def __init__(self) -> None:
        self._connections: dict[str, Connection] = {}
        self._ids = itertools.count(1)

    def add(self, kind: str, user: User, websocket: WebSocket, **meta: Any) -> Connection:
        client = websocket.client
        conn = Connection(
            id=f"{kind}-{next(self._ids)}",
            kind=kind,
            user_id=user.id,
            username=user.username or user.email,
            client=f"{client.host}:{client.port}" if client else "",
            meta=dict(meta),
        )
        self._connections[conn.id] = conn
        return conn

    def remove(self, conn_id: str) -> None:
        self._connections.pop(conn_id, None)

    def list(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [c.to_dict() for c in self._connections.values() if kind in (None, c.kind)]

    def count(self, kind: str | None = None) -> int:
        return sum(1 for c in self._connections.values() if kind in (None, c.kind))

    def stats(self) -> dict[str, Any]:
        by_kind: dict[str, int] = {}
        for conn in self._connections.values():
            by_kind[conn.kind] = by_kind.get(conn.kind, 0) + 1
        return {"total": len(self._connections), "by_kind": by_kind, "connections": self.list()}


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
    """Accept and authenticate; on failure close with 1008 and return None."""
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
