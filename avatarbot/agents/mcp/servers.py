"""An agent's `mcp_servers` setting: validation, who may add what, and masking of secrets.

Stored as plain dicts on the agent row; answers show env/header values as MASK. A client that
sends MASK back (it read the agent, changed something else, and PUT it again) keeps the stored
value, so secrets never have to travel back to the browser.
"""

from __future__ import annotations

import os
import re
import shutil
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from avatarbot.errors import InvalidInput, PermissionDenied

MASK = "********"
MAX_SERVERS = 16
ALLOWED_SETTING = "AVATARBOT_MCP__ALLOWED_COMMANDS"
# "__" separates server and tool in `<server>__<tool>`, so a server name never contains it.
_SERVER_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]|_(?!_)){0,31}$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class McpServer(BaseModel):
    """One MCP server of an agent; `tools` (if set) is the allowlist of its tools to offer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    transport: Literal["stdio", "http", "sse"]
    command: str | None = Field(None, max_length=1000)
    args: list[str] = Field(default_factory=list, max_length=64)
    env: dict[str, str] = Field(default_factory=dict, max_length=64)
    url: str | None = Field(None, max_length=2000)
    headers: dict[str, str] = Field(default_factory=dict, max_length=64)
    tools: list[str] | None = Field(None, max_length=256)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _SERVER_NAME.match(value):
            raise ValueError(
                "a server name is 1-32 letters, digits, '-' or single '_', starting with a "
                "letter or digit (it becomes the '<server>__' prefix of its tools)"
            )
        return value

    @field_validator("args")
    @classmethod
    def _args(cls, value: list[str]) -> list[str]:
        if any(len(a) > 4000 or "\x00" in a for a in value):
            raise ValueError("each argument is at most 4000 characters, without NUL")
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if not _ENV_KEY.match(key):
                raise ValueError(f"{key!r} is not an environment variable name")
            if len(item) > 8000 or "\x00" in item:
                raise ValueError(f"the value of {key} is too long or has a NUL")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if not _HEADER_NAME.match(key):
                raise ValueError(f"{key!r} is not an HTTP header name")
            if len(item) > 8000 or any(c in item for c in "\r\n\x00"):
                raise ValueError(f"the value of header {key} is too long or has a line break")
        return value

    @field_validator("tools")
    @classmethod
    def _tools(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not all(_TOOL_NAME.match(t) for t in value):
            raise ValueError("tool names are 1-64 letters, digits, '_', '.' or '-'")
        return value

    @model_validator(mode="after")
    def _transport_fields(self) -> McpServer:
        if self.transport == "stdio":
            if not self.command or not self.command.strip() or "\x00" in self.command:
                raise ValueError("a stdio server needs a command")
            if self.url or self.headers:
                raise ValueError("url and headers are for http/sse servers, not stdio")
        else:
            if not self.url or not re.match(r"^https?://[^\s/]+", self.url):
                raise ValueError(f"an {self.transport} server needs an http(s):// url")
            if self.command or self.args or self.env:
                raise ValueError("command, args and env are for stdio servers")
        return self

    @property
    def allowed_tools(self) -> set[str] | None:
        return set(self.tools) if self.tools is not None else None


def parse_servers(raw: list[Any]) -> list[McpServer]:
    """Validated servers (422 naming the first problem); names are unique per agent."""
    if not isinstance(raw, list):
        raise InvalidInput("mcp_servers is a list of servers")
    if len(raw) > MAX_SERVERS:
        raise InvalidInput(f"an agent may have at most {MAX_SERVERS} MCP servers")
    servers: list[McpServer] = []
    for index, item in enumerate(raw):
        try:
            servers.append(McpServer.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()) if p != "__root__")
            message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
            label = f"mcp_servers[{index}]" + (f".{where}" if where else "")
            raise InvalidInput(f"{label}: {message}") from None
    names = [s.name for s in servers]
    if len(set(names)) != len(names):
        raise InvalidInput("mcp_servers: server names must be unique")
    return servers


def stored_servers(raw: list[dict[str, Any]] | None) -> list[McpServer]:
    """Servers from the DB; one that no longer validates is skipped, not fatal to the agent."""
    servers: list[McpServer] = []
    for item in raw or []:
        try:
            servers.append(McpServer.model_validate(item))
        except ValidationError:
            continue
    return servers


def check_servers(
    raw: list[Any],
    *,
    allowed_commands: list[str],
    allow_stdio: bool,
    previous: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """What to store for a create/update: validated, secrets restored, stdio rules enforced."""
    servers = parse_servers(raw)
    before = {s.name: s for s in stored_servers(previous)}
    result: list[dict[str, Any]] = []
    for server in servers:
        server = _unmasked(server, before.get(server.name))
        if server.transport == "stdio":
            unchanged = before.get(server.name) == server
            if not allow_stdio and not unchanged:
                raise PermissionDenied("only a superuser may add or change stdio MCP servers")
            assert server.command is not None
            if not command_allowed(server.command, allowed_commands):
                raise PermissionDenied(
                    f"the command {server.command!r} is not allowed for stdio MCP servers; "
                    f"an operator can allow it in {ALLOWED_SETTING} (now "
                    f"{'empty: no stdio servers' if not allowed_commands else 'set to other commands'})"
                )
        result.append(server.model_dump(exclude_none=True, exclude_defaults=True))
    return result


def _unmasked(server: McpServer, old: McpServer | None) -> McpServer:
    def restore(new: dict[str, str], kept: dict[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in new.items():
            if value == MASK:
                if key not in kept:
                    raise InvalidInput(f"mcp server {server.name!r}: {key} has no stored value")
                value = kept[key]
            out[key] = value
        return out

    env = restore(server.env, old.env if old else {})
    headers = restore(server.headers, old.headers if old else {})
    return server.model_copy(update={"env": env, "headers": headers})


def command_allowed(command: str, allowed: list[str]) -> bool:
    """A bare name must be listed as that name; a path must be listed, or be where a listed
    name resolves on PATH. Basenames alone never match: /tmp/x/python3 is not 'python3'."""
    command = command.strip()
    if not command or not allowed:
        return False
    if os.sep not in command:
        return command in allowed
    wanted = os.path.normpath(command)
    for entry in allowed:
        if os.sep in entry:
            if os.path.normpath(entry) == wanted:
                return True
        elif (found := shutil.which(entry)) and os.path.normpath(found) == wanted:
            return True
    return False


def masked(raw: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The servers as answers show them: env and header values replaced by MASK."""
    out: list[dict[str, Any]] = []
    for item in raw or []:
        if not isinstance(item, dict):
            continue
        shown = dict(item)
        for key in ("env", "headers"):
            if isinstance(shown.get(key), dict):
                shown[key] = dict.fromkeys(shown[key], MASK)
        out.append(shown)
    return out
