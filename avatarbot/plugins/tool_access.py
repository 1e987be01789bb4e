"""Calling plugin tools by name: always the version that is loaded right now."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from avatarbot.errors import NotFound
from avatarbot.tools import ToolSpec


class ToolAccess:
    """Mixin for PluginManager; needs all_tools()."""

    def all_tools(self) -> list[ToolSpec]:  # pragma: no cover - provided by the manager
        raise NotImplementedError

    def find_tool(self, tool_name: str) -> ToolSpec:
        for tool in self.all_tools():
            if tool.name == tool_name:
                return tool
        raise NotFound(f"tool {tool_name!r} not found")

    async def acall_tool(self, tool_name: str, **kwargs: Any) -> Any:
        """Call the current version of a tool; sync handlers run in a worker thread."""
        handler = self.find_tool(tool_name).handler
        if inspect.iscoroutinefunction(handler):
            return await handler(**kwargs)
        result = await asyncio.to_thread(handler, **kwargs)
        return await result if inspect.isawaitable(result) else result

    def call_tool(self, tool_name: str, **kwargs: Any) -> Any:
        """Synchronous call for CLI use and tests (not from inside an event loop)."""
        result = self.find_tool(tool_name).handler(**kwargs)
        if inspect.isawaitable(result):
            return asyncio.run(result)  # type: ignore[arg-type]
        return result
