"""`/tool <name> {json args}`: call one tool directly, for the offline rule brain.

This is how MCP tools (`<server>__<tool>`) are used without an LLM, e.g. in a scheduled report's
prompt; any other tool the agent may use works too. Capabilities are enforced by the toolbox.
"""

from __future__ import annotations

import json
import re
from typing import Any

from avatarbot.agents.brains.base import BrainContext
from avatarbot.agents.tools.toolbox import ToolOutcome, refusal_text

_COMMAND = re.compile(r"^\s*/tool(?:\s+(?P<name>\S+))?(?P<args>.*)$", re.DOTALL)


def is_tool_command(text: str) -> bool:
    return bool(re.match(r"^\s*/tool(?:\s|$)", text))


async def run_tool_command(ctx: BrainContext) -> ToolOutcome | str | None:
    """None: not a /tool command; a str: what to tell the user instead; else the tool's outcome."""
    if not is_tool_command(ctx.text):
        return None
    match = _COMMAND.match(ctx.text)
    assert match is not None
    zh = ctx.language == "zh"
    name, args_text = match.group("name"), (match.group("args") or "").strip()
    if not name:
        return _usage(ctx, zh)
    try:
        arguments: Any = json.loads(args_text) if args_text else {}
    except json.JSONDecodeError as exc:
        return (
            f"/tool 的参数必须是 JSON 对象：{exc.msg}（第 {exc.colno} 列）。"
            if zh
            else f"The arguments of /tool must be a JSON object: {exc.msg} at column {exc.colno}."
        )
    if not isinstance(arguments, dict):
        return (
            '/tool 的参数必须是 JSON 对象，例如 {"week": "2026-W48"}。'
            if zh
            else 'The arguments of /tool must be a JSON object, e.g. {"week": "2026-W48"}.'
        )
    if ctx.toolbox.get(name) is None:
        if "__" in name and not ctx.agent.can("mcp"):
            return refusal_text(ctx.agent, "mcp", ctx.language)
        if why := ctx.toolbox.why_unavailable(name):
            return why
        return (f"没有名为“{name}”的工具。" if zh else f"There is no tool named {name!r}. ") + (
            _names(ctx, zh)
        )
    return await ctx.toolbox.call(name, arguments)


def _names(ctx: BrainContext, zh: bool) -> str:
    names = ", ".join(t.name for t in ctx.toolbox.allowed()) or ("无" if zh else "none")
    return f"可用的工具：{names}" if zh else f"Tools: {names}"


def _usage(ctx: BrainContext, zh: bool) -> str:
    usage = "用法：/tool <工具名> {JSON 参数}。" if zh else "Usage: /tool <name> {json arguments}. "
    return usage + _names(ctx, zh)
