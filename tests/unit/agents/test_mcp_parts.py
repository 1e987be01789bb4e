"""The MCP parts that need no server: the command allowlist, masking, tool-list checks and
turning a call result into what the model sees."""

from __future__ import annotations

import shutil

import pytest
from mcp import types

from avatarbot.agents.mcp.results import tool_result
from avatarbot.agents.mcp.schemas import check_tools
from avatarbot.agents.mcp.servers import MASK, check_servers, command_allowed, masked
from avatarbot.agents.tools.toolbox import ToolOutcome
from avatarbot.errors import InvalidInput, PermissionDenied
from tests.helpers.mcp_servers import image_b64


def test_command_allowlist() -> None:
    sh = shutil.which("sh")
    assert sh is not None
    assert command_allowed("sh", ["sh"]) and command_allowed(sh, ["sh"])  # the name resolved
    assert command_allowed("/opt/srv/run", ["/opt/srv/run"])
    assert command_allowed("/opt/srv/./run", ["/opt/srv/run"])
    assert not command_allowed("sh", [])  # empty allowlist: nothing
    assert not command_allowed("/tmp/x/sh", ["sh"])  # a basename alone never matches
    assert not command_allowed("run", ["/opt/srv/run"])
    assert not command_allowed("bash", ["sh"])


def test_masking_and_restoring_secrets() -> None:
    stored = check_servers(
        [{"name": "s", "transport": "http", "url": "http://h/", "headers": {"Auth": "tok"}}],
        allowed_commands=[],
        allow_stdio=False,
    )
    shown = masked(stored)
    assert shown[0]["headers"] == {"Auth": MASK} and stored[0]["headers"] == {"Auth": "tok"}
    again = check_servers(shown, allowed_commands=[], allow_stdio=False, previous=stored)
    assert again == stored
    with pytest.raises(InvalidInput, match="Auth has no stored value"):
        check_servers(shown, allowed_commands=[], allow_stdio=False, previous=None)


def test_stdio_needs_permission_unless_unchanged() -> None:
    server = {"name": "s", "transport": "stdio", "command": "sh", "env": {"K": "v"}}
    with pytest.raises(PermissionDenied, match="superuser"):
        check_servers([server], allowed_commands=["sh"], allow_stdio=False)
    stored = check_servers([server], allowed_commands=["sh"], allow_stdio=True)
    # Someone allowed to edit the agent but not stdio may keep an existing stdio server.
    kept = check_servers(
        masked(stored), allowed_commands=["sh"], allow_stdio=False, previous=stored
    )
    assert kept == stored


def test_tool_list_checks() -> None:
    good = {
        "name": "ok",
        "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}},
    }
    tools, errors = check_tools(
        [
            good,
            good,
            {"name": "no schema"},
            {"name": "x", "inputSchema": {"type": "array"}},
            {"name": "y", "inputSchema": {"required": "q"}},
            {"name": "z" * 70, "inputSchema": {}},
            {"name": "d", "description": 5, "inputSchema": {}},
            "nonsense",
            {"name": "bare", "inputSchema": {}},
        ],
        "srv",
    )
    assert [t.name for t in tools] == ["ok", "bare"]
    assert errors == [
        "tool 'ok' left out: listed twice",
        "tool 'no schema' left out: its name must be 1-64 letters, digits, '_', '.' or '-'",
        "tool 'x' left out: inputSchema must describe an object, not 'array'",
        "tool 'y' left out: inputSchema.required must be a list of names",
        f"tool '{'z' * 70}' left out: its name must be 1-64 letters, digits, '_', '.' or '-'",
        "tool 'd' left out: its description must be a string",
        "tool #8 left out: a tool must be a JSON object",
    ]


def test_results_for_the_model() -> None:
    result = types.CallToolResult(
        content=[
            types.TextContent(type="text", text="42 sales"),
            types.ImageContent(type="image", data=image_b64(), mimeType="image/png"),
            types.ImageContent(type="image", data="AAAA", mimeType="image/tiff"),
            types.ImageContent(type="image", data="not base64!", mimeType="image/png"),
        ]
    )
    converted = tool_result(result)
    assert converted.image_urls() == [f"data:image/png;base64,{image_b64()}"]
    text = ToolOutcome("s__t", ok=True, result=converted).for_model()
    assert text.startswith("42 sales\n[image not passed on: type 'image/tiff'")
    assert "not valid base64" in text and text.endswith("[1 image(s) attached]")
    structured = tool_result(types.CallToolResult(content=[], structuredContent={"total": 3}))
    assert structured.for_model() == '{"total": 3}'
    assert tool_result(types.CallToolResult(content=[])).for_model() == "(no output)"
