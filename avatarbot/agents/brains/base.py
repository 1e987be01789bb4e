"""The Brain protocol and what a brain gets to work with for one message."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from avatarbot.agents.profile import AgentProfile
from avatarbot.agents.tools.toolbox import Toolbox
from avatarbot.config import Settings

EventSink = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class BrainContext:
    agent: AgentProfile
    text: str  # the user's message
    history: list[dict[str, str]]  # earlier turns, oldest first: {"role", "content"}
    toolbox: Toolbox
    emit: EventSink  # streamed tokens and tool events go here
    settings: Settings
    language: str = "en"  # "zh" when the message is mostly Chinese
    channel: str = ""  # feishu | wecom | web | scheduler
    images: list[str] = field(default_factory=list)  # data: URLs of photos the user sent


@dataclass
class BrainResult:
    text: str
    steps: int = 0  # model calls (LLM) or rules applied
    stopped_at_limit: bool = False
    meta: dict[str, Any] = field(default_factory=dict)


class Brain(Protocol):
    name: str

    async def respond(self, ctx: BrainContext) -> BrainResult:
        """Answer ctx.text, calling tools through ctx.toolbox; stream text through ctx.emit."""
        ...

    async def summarize(self, previous_summary: str, messages: list[dict[str, str]]) -> str | None:
        """Condense old turns for memory; None means "just drop them"."""
        ...
