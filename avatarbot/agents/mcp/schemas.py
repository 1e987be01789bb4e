"""A server's tool list, checked tool by tool: a malformed tool is left out with a clear reason,
and the others stay usable (the SDK's own list_tools would reject the whole answer)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

MAX_TOOLS = 256
MAX_PAGES = 10
MAX_SCHEMA_CHARS = 64_000
MAX_DESCRIPTION = 1000
# OpenAI-compatible servers accept function names of [a-zA-Z0-9_-]{1,64}; '.' is mapped by the
# toolbox, so it is allowed here.
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class McpTool:
    name: str  # as the server calls it
    description: str
    input_schema: dict[str, Any]


class RawToolList(BaseModel):
    """tools/list as sent, before any per-tool checks."""

    model_config = ConfigDict(extra="allow")

    tools: list[Any]
    nextCursor: str | None = None  # the wire name


def check_tools(raw: list[Any], server: str) -> tuple[list[McpTool], list[str]]:
    """(usable tools, one error message per tool left out)."""
    tools: list[McpTool] = []
    errors: list[str] = []
    seen: set[str] = set()
    for index, item in enumerate(raw[:MAX_TOOLS]):
        try:
            tool = _check_tool(item, server)
        except ValueError as exc:
            name = item.get("name") if isinstance(item, dict) else None
            label = f"tool {name!r}" if isinstance(name, str) else f"tool #{index + 1}"
            errors.append(f"{label} left out: {exc}")
            continue
        if tool.name in seen:
            errors.append(f"tool {tool.name!r} left out: listed twice")
            continue
        seen.add(tool.name)
        tools.append(tool)
    if len(raw) > MAX_TOOLS:
        errors.append(f"only the first {MAX_TOOLS} of {len(raw)} tools are used")
    return tools, errors


def _check_tool(item: Any, server: str) -> McpTool:
    if not isinstance(item, dict):
        raise ValueError("a tool must be a JSON object")
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError("its name must be 1-64 letters, digits, '_', '.' or '-'")
    if len(f"{server}__{name}") > 64:
        raise ValueError(f"'{server}__{name}' is longer than the 64 characters models accept")
    description = item.get("description") or ""
    if not isinstance(description, str):
        raise ValueError("its description must be a string")
    schema = item.get("inputSchema")
    _check_schema(schema)
    assert isinstance(schema, dict)
    return McpTool(name, description[:MAX_DESCRIPTION], schema)


def _check_schema(schema: Any) -> None:
    from jsonschema import SchemaError
    from jsonschema.validators import validator_for

    if not isinstance(schema, dict):
        raise ValueError(f"inputSchema must be a JSON Schema object, got {type(schema).__name__}")
    if len(json.dumps(schema, default=str)) > MAX_SCHEMA_CHARS:
        raise ValueError(f"inputSchema is larger than {MAX_SCHEMA_CHARS} characters")
    if schema.get("type", "object") != "object":
        raise ValueError(f"inputSchema must describe an object, not {schema.get('type')!r}")
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        raise ValueError("inputSchema.properties must be an object")
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise ValueError("inputSchema.required must be a list of names")
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(root)"
        raise ValueError(
            f"inputSchema is not valid JSON Schema at {where}: {exc.message}"
        ) from None
