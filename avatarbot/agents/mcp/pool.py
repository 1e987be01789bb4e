"""McpPool: this process's MCP connections, one per (agent, server), and the tools they offer.

Connections start on first use and are kept until the agent's server setting changes, the
agent is deleted, or the process stops (AgentManager.stop, from the app lifespan).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from avatarbot.agents.mcp.connection import McpConnection
from avatarbot.agents.mcp.results import McpToolResult
from avatarbot.agents.mcp.servers import McpServer, stored_servers
from avatarbot.config import Settings
from avatarbot.tools import ToolSpec

if TYPE_CHECKING:
    from avatarbot.agents.profile import AgentProfile

logger = logging.getLogger(__name__)

CAPABILITY = "mcp"


class McpPool:
    def __init__(self, settings: Callable[[], Settings]) -> None:
        self._settings = settings
        self._connections: dict[tuple[str, str], McpConnection] = {}
        self._lock = asyncio.Lock()  # two chats must not both replace a changed connection

    async def _connection(self, agent: AgentProfile, server: McpServer) -> McpConnection:
        async with self._lock:
            return await self._connection_locked(agent, server)

    async def _connection_locked(self, agent: AgentProfile, server: McpServer) -> McpConnection:
        settings = self._settings()
        key = (agent.id, server.name)
        conn = self._connections.get(key)
        if conn is not None and conn.server != server:
            await conn.close()  # the agent's setting changed: start over with the new one
            conn = None
        if conn is None:
            conn = McpConnection(
                server,
                label=f"{agent.name}/{server.name}",
                settings=settings.mcp,
                log_dir=settings.data_dir / "mcp",
            )
            self._connections[key] = conn
        conn.settings = settings.mcp  # the allowlist and timeouts follow config reloads
        return conn

    async def connections(self, agent: AgentProfile) -> list[McpConnection]:
        """The agent's connections, started (or restarted) where needed; failures stay in their
        status instead of raising, so one broken server never blocks a chat."""
        servers = stored_servers(agent.mcp_servers)
        conns = [await self._connection(agent, s) for s in servers]
        await asyncio.gather(*(c.ensure() for c in conns), return_exceptions=True)
        return conns

    async def tools_for(self, agent: AgentProfile) -> list[ToolSpec]:
        """`<server>__<tool>` specs for an agent with the `mcp` capability, else none."""
        if not agent.can(CAPABILITY) or not agent.mcp_servers:
            return []
        specs: list[ToolSpec] = []
        for conn in await self.connections(agent):
            if conn.state != "connected":
                continue
            allowed = conn.server.allowed_tools
            for tool in conn.tools:
                if allowed is None or tool.name in allowed:
                    specs.append(_spec(conn, tool.name, tool.description, tool.input_schema))
        return specs

    def unavailable(self, agent: AgentProfile) -> dict[str, str]:
        """Why a tool name is missing: "<server>__<tool>" (left out) or "<server>__" (server down)."""
        notes: dict[str, str] = {}
        for server in stored_servers(agent.mcp_servers):
            conn = self._connections.get((agent.id, server.name))
            if conn is None:
                continue
            if conn.state != "connected":
                notes[f"{server.name}__"] = conn.unavailable_message()
                continue
            for tool, why in conn.left_out.items():
                notes[f"{server.name}__{tool}"] = (
                    f"the MCP server '{server.name}' describes {tool!r} wrongly, so it is not "
                    f"offered: {why}"
                )
        return notes

    async def forget(self, agent_id: str) -> None:
        """Close an agent's connections (it was deleted, or its servers changed)."""
        for key in [k for k in self._connections if k[0] == agent_id]:
            await self._connections.pop(key).close()

    def status(self, agent_id: str, server: str) -> dict[str, Any] | None:
        conn = self._connections.get((agent_id, server))
        return conn.status() if conn is not None else None

    async def close(self) -> None:
        conns, self._connections = list(self._connections.values()), {}
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)


def _spec(conn: McpConnection, tool: str, description: str, schema: dict[str, Any]) -> ToolSpec:
    server = conn.server.name

    async def call(**arguments: Any) -> McpToolResult:
        return await conn.call(tool, arguments)

    parameters = {"type": "object", **schema}
    parameters.setdefault("properties", {})
    return ToolSpec(
        name=f"{server}__{tool}",
        description=description or f"Tool {tool!r} of the MCP server {server!r}.",
        handler=call,
        parameters=parameters,
        capability=CAPABILITY,
        source=f"mcp:{server}",
    )


async def server_report(pool: McpPool | None, agent: AgentProfile) -> list[dict[str, Any]]:
    """Per server of an agent: name, transport and state ("idle" until first used)."""
    rows: list[dict[str, Any]] = []
    for server in stored_servers(agent.mcp_servers):
        state = pool.status(agent.id, server.name) if pool is not None else None
        rows.append(
            {"name": server.name, **(state or {"status": "idle", "transport": server.transport})}
        )
    return rows
