"""ConnectionRegistry: the open WebSockets of this process (progress and agent chat), for stats
and cleanup. One registry per process, kept on services.ws_connections."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import WebSocket

from avatarbot.services import Services


@dataclass
class Connection:
    id: int
    kind: str  # progress | agent
    user_id: int
    websocket: WebSocket
    opened_at: float = field(default_factory=time.time)


class ConnectionRegistry:
    def __init__(self) -> None:
        self._connections: dict[int, Connection] = {}
        self._ids = itertools.count(1)

    def add(self, websocket: WebSocket, *, kind: str, user_id: int) -> Connection:
        conn = Connection(id=next(self._ids), kind=kind, user_id=user_id, websocket=websocket)
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

    def stats(self) -> dict[str, Any]:
        by_kind: dict[str, int] = {}
        for conn in self._connections.values():
            by_kind[conn.kind] = by_kind.get(conn.kind, 0) + 1
        users = {c.user_id for c in self._connections.values()}
        return {"total": len(self._connections), "by_kind": by_kind, "users": len(users)}


def connection_registry(services: Services) -> ConnectionRegistry:
    """The process's registry, created on first use (whichever WebSocket route comes first)."""
    if services.ws_connections is None:
        services.ws_connections = ConnectionRegistry()
    return services.ws_connections
