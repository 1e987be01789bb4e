"""Toolbox: the tools one agent may use for one message, their LLM schemas, and safe calls.

Capabilities are enforced here, once, for every brain: a tool whose capability the agent lacks
is never advertised to an LLM and, if asked for anyway, answers with a clear refusal.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avatarbot.agents.profile import AgentProfile
from avatarbot.bot.types import Reply, ReplyKind
from avatarbot.errors import AvatarbotError
from avatarbot.tools import ToolSpec

logger = logging.getLogger(__name__)

EventSink = Callable[[dict[str, Any]], Awaitable[None]]

CAPABILITY_WORDS = {
    "video": ("make videos", "生成视频"),
    "voice": ("make audio", "生成语音"),
    "plugins": ("use plugin tools", "使用插件工具"),
    "schedule": ("schedule reports", "创建定时任务"),
    "mcp": ("use MCP server tools", "使用 MCP 工具"),
}
_SUFFIX_KINDS = {
    ".mp4": ReplyKind.VIDEO,
    ".mov": ReplyKind.VIDEO,
    ".webm": ReplyKind.VIDEO,
    ".mp3": ReplyKind.AUDIO,
    ".wav": ReplyKind.AUDIO,
    ".ogg": ReplyKind.AUDIO,
    ".opus": ReplyKind.AUDIO,
    ".m4a": ReplyKind.AUDIO,
    ".amr": ReplyKind.AUDIO,
    ".png": ReplyKind.IMAGE,
    ".jpg": ReplyKind.IMAGE,
    ".jpeg": ReplyKind.IMAGE,
    ".webp": ReplyKind.IMAGE,
}
MAX_RESULT_CHARS = 4000  # what an LLM gets back from one tool call


@dataclass
class ToolOutcome:
    name: str
    ok: bool
    result: Any = None
    error: str | None = None
    refused: bool = False
    replies: list[Reply] = field(default_factory=list)

    def for_model(self) -> str:
        """The tool message content an LLM sees (JSON, bounded)."""
        body: Any = {"error": self.error} if not self.ok else self.result
        if self.ok and hasattr(body, "for_model"):  # MCP results: text, images sent apart
            body = body.for_model()
        text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False, default=str)
        if len(text) > MAX_RESULT_CHARS:
            text = text[:MAX_RESULT_CHARS] + "…(truncated)"
        return text


def required_capabilities(tool: ToolSpec) -> list[str]:
    caps = [tool.capability] if tool.capability else []
    if tool.source.startswith("plugin") and "plugins" not in caps:
        caps.append("plugins")
    return caps


def refusal_text(agent: AgentProfile, capability: str, language: str) -> str:
    en, zh = CAPABILITY_WORDS.get(
        capability, (f"use '{capability}' tools", f"使用“{capability}”工具")
    )
    if language == "zh":
        return (
            f"抱歉，智能体“{agent.name}”没有“{capability}”能力，不能{zh}。"
            f"管理员可以通过 PUT /api/v1/agents/{agent.name} 为它添加该能力。"
        )
    return (
        f"Sorry, the agent '{agent.name}' is not allowed to {en}: it lacks the '{capability}' "
        f"capability. An admin can add it with PUT /api/v1/agents/{agent.name}."
    )


class Toolbox:
    def __init__(
        self,
        tools: list[ToolSpec],
        agent: AgentProfile,
        *,
        emit: EventSink | None = None,
        language: str = "en",
        blocked: frozenset[str] = frozenset(),
        unavailable: dict[str, str] | None = None,
    ) -> None:
        self.agent = agent
        # Why a name is missing ("srv__tool", or "srv__" for a whole MCP server that is down).
        self.unavailable = dict(unavailable or {})
        self.blocked = blocked  # tools not offered in this context at all
        self.language = language
        self._emit = emit
        self._tools: dict[str, ToolSpec] = {}
        for tool in tools:
            self._tools.setdefault(tool.name, tool)  # built-ins come first and win
        self._llm_names = _llm_names(list(self._tools))
        self.replies: list[Reply] = []
        self.outcomes: list[ToolOutcome] = []

    # -- what is available ------------------------------------------------------------------
    def missing_capability(self, tool: ToolSpec) -> str | None:
        for cap in required_capabilities(tool):
            if not self.agent.can(cap):
                return cap
        return None

    def allowed(self) -> list[ToolSpec]:
        return [
            t
            for t in self._tools.values()
            if t.name not in self.blocked and self.missing_capability(t) is None
        ]

    def get(self, name: str) -> ToolSpec | None:
        if name in self._tools:
            return self._tools[name]
        original = {v: k for k, v in self._llm_names.items()}.get(name)
        return self._tools.get(original) if original else None

    def why_unavailable(self, name: str) -> str | None:
        if name in self.unavailable:
            return self.unavailable[name]
        prefixes = (k for k in self.unavailable if k.endswith("__") and name.startswith(k))
        return next((self.unavailable[k] for k in prefixes), None)

    def llm_schemas(self) -> list[dict[str, Any]]:
        """OpenAI `tools` entries for the allowed tools (names made [a-zA-Z0-9_-] safe)."""
        return [
            {
                "type": "function",
                "function": {
                    "name": self._llm_names[t.name],
                    "description": t.description,
                    "parameters": t.parameters
                    or {"type": "object", "properties": {}, "required": []},
                },
            }
            for t in self.allowed()
        ]

    # -- calling ----------------------------------------------------------------------------
    async def call(self, name: str, arguments: dict[str, Any] | None = None) -> ToolOutcome:
        arguments = dict(arguments or {})
        tool = self.get(name)
        await self._send(
            {"type": "tool_call", "name": tool.name if tool else name, "arguments": arguments}
        )
        if tool is None:
            why = self.why_unavailable(name) or f"unknown tool {name!r}"
            outcome = ToolOutcome(name, ok=False, error=why)
        elif tool.name in self.blocked:
            outcome = ToolOutcome(tool.name, ok=False, error=f"{tool.name} is not available here")
        elif (cap := self.missing_capability(tool)) is not None:
            outcome = ToolOutcome(
                tool.name,
                ok=False,
                refused=True,
                error=refusal_text(self.agent, cap, self.language),
            )
        else:
            outcome = await self._invoke(tool, arguments)
        self.outcomes.append(outcome)
        self.replies.extend(outcome.replies)
        event: dict[str, Any] = {"type": "tool_result", "name": outcome.name, "ok": outcome.ok}
        if outcome.error:
            event["error"] = outcome.error
        await self._send(event)
        return outcome

    async def _invoke(self, tool: ToolSpec, arguments: dict[str, Any]) -> ToolOutcome:
        try:
            kwargs = _checked_arguments(tool, arguments)
            if inspect.iscoroutinefunction(tool.handler):
                result = await tool.handler(**kwargs)
            else:
                import asyncio

                # Plugin tools may block (ffmpeg...): never on the event loop.
                result = await asyncio.to_thread(tool.handler, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
        except AvatarbotError as exc:
            return ToolOutcome(tool.name, ok=False, error=exc.message)
        except Exception as exc:
            logger.exception("tool %s failed", tool.name)
            return ToolOutcome(tool.name, ok=False, error=f"the tool failed ({type(exc).__name__})")
        replies = _media_replies(tool.name, result)
        for reply in replies:
            if reply.task_id:
                await self._send(
                    {"type": "task", "task_id": reply.task_id, "kind": reply.kind.value}
                )
        return ToolOutcome(tool.name, ok=True, result=result, replies=replies)

    async def _send(self, event: dict[str, Any]) -> None:
        if self._emit is not None:
            await self._emit(event)


def _llm_names(names: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        safe = re.sub(r"[^a-zA-Z0-9_-]", "__", name)[:60] or "tool"
        candidate, n = safe, 2
        while candidate in used:
            candidate, n = f"{safe}_{n}", n + 1
        used.add(candidate)
        mapping[name] = candidate
    return mapping


def _checked_arguments(tool: ToolSpec, arguments: dict[str, Any]) -> dict[str, Any]:
    from avatarbot.errors import InvalidInput

    schema = tool.parameters or {}
    properties = schema.get("properties") or {}
    missing = [key for key in schema.get("required") or [] if arguments.get(key) in (None, "")]
    if missing:
        raise InvalidInput(f"missing argument(s) for {tool.name}: {', '.join(missing)}")
    if properties and not schema.get("additionalProperties", False):
        # Models invent extra keys; a handler with fixed keyword arguments would crash on them.
        arguments = {k: v for k, v in arguments.items() if k in properties}
    return arguments


def _media_replies(tool_name: str, result: Any) -> list[Reply]:
    if not isinstance(result, dict):
        return []
    kind = result.get("kind")
    if result.get("task_id") and kind in (ReplyKind.VIDEO.value, ReplyKind.AUDIO.value):
        return [
            Reply(
                ReplyKind(kind),
                text=str(result.get("message") or ""),
                task_id=str(result["task_id"]),
                meta={"tool": tool_name, "url": result.get("url")},
            )
        ]
    path = result.get("path") or result.get("output_path")
    if isinstance(path, str) and path:
        file = Path(path)
        reply_kind = _SUFFIX_KINDS.get(file.suffix.lower())
        if reply_kind is not None and file.is_file():
            return [Reply(reply_kind, path=file, meta={"tool": tool_name})]
    return []
