"""Short, safe reasons for what went wrong with an MCP server, for /health, logs and models.

They never include URLs, headers or env values: those may carry tokens.
"""

from __future__ import annotations

from typing import Any

from avatarbot.agents.mcp.schemas import McpTool
from avatarbot.agents.mcp.servers import McpServer


def left_out(raw: list[Any], tools: list[McpTool], errors: list[str]) -> dict[str, str]:
    kept = {t.name for t in tools}
    out: dict[str, str] = {}
    for item in raw:
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str) and name not in kept:
            label = f"tool {name!r} left out: "
            out[name] = next((e.removeprefix(label) for e in errors if e.startswith(label)), "")
    return out


def describe(exc: BaseException, server: McpServer) -> str:
    """A short reason without URLs, headers or env (they may hold tokens)."""
    import httpx

    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, PermissionError):
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return f"cannot start {server.command!r}: no such file or program"
    if isinstance(exc, OSError) and server.transport == "stdio":
        return f"cannot start {server.command!r}: {exc.strerror or type(exc).__name__}"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"the server answered HTTP {exc.response.status_code}"
    if isinstance(exc, httpx.TimeoutException):
        return "the server did not answer in time"
    if isinstance(exc, httpx.TransportError):
        return "cannot connect to the server"
    try:
        from mcp.shared.exceptions import McpError
        from mcp.types import CONNECTION_CLOSED

        if isinstance(exc, McpError):
            if exc.error.code == CONNECTION_CLOSED:
                return "the server closed the connection (did it exit? see its stderr log)"
            return f"the server answered: {exc.error.message[:300]}"
    except ImportError:  # pragma: no cover
        pass
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return f"the server sent a malformed answer ({exc.error_count()} problem(s))"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return f"unexpected error ({type(exc).__name__})"
