"""Every tool an agent could call, with its source (builtin, plugin:<name>, mcp:<server>) and
whether the agent's capabilities let it: GET /api/v1/agents/{name}/tools."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from avatarbot.agents.mcp.pool import server_report
from avatarbot.agents.tools.builtin import ToolCallContext
from avatarbot.agents.tools.toolbox import required_capabilities
from avatarbot.bot.types import Channel, IncomingMessage

if TYPE_CHECKING:
    from avatarbot.agents.manager import AgentManager
    from avatarbot.agents.profile import AgentProfile


async def tool_catalog(manager: AgentManager, agent: AgentProfile) -> dict[str, Any]:
    # Builtin tools are built per message; an empty web message gives their descriptions.
    message = IncomingMessage(channel=Channel.WEB, chat_id="catalog", user_id="catalog", text="")
    specs = [
        *manager.tools_for(ToolCallContext(manager.services, agent, message)),
        *await manager.mcp.tools_for(agent),
    ]
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    for spec in specs:
        if spec.name in seen:  # a plugin tool shadowed by a built-in one is never called
            continue
        seen.add(spec.name)
        missing = [c for c in required_capabilities(spec) if not agent.can(c)]
        rows.append(
            {
                "name": spec.name,
                "description": spec.description,
                "source": spec.source,
                "capability": spec.capability,
                "available": not missing,
                "missing_capabilities": missing,
                "parameters": spec.parameters,
            }
        )
    servers = await server_report(manager.mcp, agent)
    if not agent.can("mcp"):
        for server in servers:
            server["status"] = "disabled"
            server["reason"] = "the agent lacks the 'mcp' capability"
    return {"data": rows, "count": len(rows), "mcp_servers": servers}
