"""The one description of a tool an agent can call.

Plugins and built-in agent tools both produce ToolSpec objects; agents/ turns them into
LLM function schemas and calls them. This module stays dependency-free so that plugins/
and agents/ can both import it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

ToolResult = dict[str, Any] | str
ToolHandler = Callable[..., ToolResult | Awaitable[ToolResult]]


@dataclass(frozen=True)
class ToolSpec:
    """A callable tool: `parameters` is a JSON Schema object describing the keyword arguments."""

    name: str  # unique, [a-z0-9_], e.g. "make_video" or "video_editor.trim"
    description: str
    handler: ToolHandler  # called with keyword arguments; sync or async
    parameters: dict[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}, "required": []}
    )
    capability: str = ""  # agent capability needed to call it ("video", "voice", "plugins", ...)
    source: str = "builtin"  # "builtin" or "plugin:<name>"
