"""The `mcp` entry of /health: each agent's MCP servers and their state."""

from __future__ import annotations

import asyncio
from typing import Any

from avatarbot.agents.mcp.pool import server_report


async def mcp_health(services: Any) -> dict[str, Any]:
    """{"status", "servers": {"<agent>/<server>": {"status": idle|connecting|connected|error…}}}."""
    agents = services.agents
    if agents is None or not hasattr(agents, "list_profiles"):
        return {"status": "disabled", "reason": "the agent manager is not running"}
    try:
        profiles = await asyncio.wait_for(agents.list_profiles(), timeout=3)
    except Exception as exc:
        return {"status": "error", "reason": f"cannot read the agents ({type(exc).__name__})"}
    servers: dict[str, Any] = {}
    for profile in profiles:
        for row in await server_report(getattr(agents, "mcp", None), profile):
            if not profile.can("mcp"):
                row.update(status="disabled", reason="the agent lacks the 'mcp' capability")
            servers[f"{profile.name}/{row.pop('name')}"] = row
    if not servers:
        return {"status": "disabled", "reason": "no agent has MCP servers"}
    failing = any(s["status"] == "error" for s in servers.values())
    return {"status": "error" if failing else "ok", "servers": servers}
