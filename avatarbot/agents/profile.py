"""AgentProfile: a plain snapshot of an Agent row that brains, tools and the API use."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from avatarbot.agents.mcp.servers import masked
from avatarbot.errors import InvalidInput
from avatarbot.storage.models import Agent

if TYPE_CHECKING:
    from avatarbot.agents.manager import AgentManager

# What an agent may be allowed to do; plugin tools may declare further capabilities.
KNOWN_CAPABILITIES = ("video", "voice", "plugins", "schedule", "knowledge", "mcp")
BRAIN_KINDS = ("auto", "rules", "llm")
DEFAULT_AGENT_NAME = "assistant"
DEFAULT_AGENT_PROMPT = (
    "You are avatarbot's assistant in a Feishu/WeCom chat. Answer briefly and in the user's "
    "language (Chinese or English). You can make talking digital-human videos (make_video), read "
    "text aloud (speak), list the available digital humans, schedule recurring reports and use "
    "plugin tools. When the user asks for a video or audio, call the tool instead of describing "
    "it; the media is delivered to the chat when it is ready.\n"
    "你是 avatarbot 的助手。请用用户的语言简洁回答。用户要视频或语音时，直接调用工具"
    "（make_video / speak），生成后会自动发送到会话中。"
)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_CAPABILITY_RE = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")


@dataclass
class AgentProfile:
    id: str
    name: str
    prompt: str
    capabilities: list[str]
    brain: str = "auto"
    description: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    digital_human_id: str | None = None
    is_default: bool = False
    mcp_servers: list[dict[str, Any]] = field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    _manager: AgentManager | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, row: Agent, manager: AgentManager | None = None) -> AgentProfile:
        return cls(
            id=row.id,
            name=row.name,
            prompt=row.prompt or "",
            capabilities=list(row.capabilities or []),
            brain=row.brain or "auto",
            description=row.description or "",
            config=dict(row.config or {}),
            digital_human_id=row.digital_human_id,
            is_default=bool(row.is_default),
            mcp_servers=list(row.mcp_servers or []),
            created_at=row.created_at,
            updated_at=row.updated_at,
            _manager=manager,
        )

    # Seed API (Agent.update_prompt / add_capability / remove_capability): persisted at once.
    @property
    def system_prompt(self) -> str:
        return self.prompt

    async def update_prompt(self, new_prompt: str) -> None:
        updated = await self._require_manager().update_prompt(self.name, new_prompt)
        self.prompt = updated.prompt

    async def add_capability(self, capability: str) -> None:
        updated = await self._require_manager().add_capability(self.name, capability)
        self.capabilities = updated.capabilities

    async def remove_capability(self, capability: str) -> None:
        updated = await self._require_manager().remove_capability(self.name, capability)
        self.capabilities = updated.capabilities

    def can(self, capability: str) -> bool:
        return not capability or capability in self.capabilities

    def _require_manager(self) -> AgentManager:
        if self._manager is None:
            raise RuntimeError("this AgentProfile is detached from an AgentManager")
        return self._manager

    def to_public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "prompt": self.prompt,
            "capabilities": list(self.capabilities),
            "brain": self.brain,
            "config": dict(self.config),
            "digital_human_id": self.digital_human_id,
            "is_default": self.is_default,
            "mcp_servers": masked(self.mcp_servers),  # env/header values never leave
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def validate_name(name: str) -> str:
    cleaned = (name or "").strip()
    if not _NAME_RE.match(cleaned):
        raise InvalidInput(
            "an agent name is 1-64 characters of letters, digits, '_' or '-', "
            "starting with a letter or digit"
        )
    return cleaned


def validate_capabilities(
    capabilities: list[str], extra_known: set[str] | None = None
) -> list[str]:
    known = set(KNOWN_CAPABILITIES) | (extra_known or set())
    result: list[str] = []
    for raw in capabilities:
        cap = (raw or "").strip().lower()
        if not _CAPABILITY_RE.match(cap) or cap not in known:
            raise InvalidInput(
                f"unknown capability {raw!r}; choose from: {', '.join(sorted(known))}"
            )
        if cap not in result:
            result.append(cap)
    return result


def validate_brain(brain: str) -> str:
    value = (brain or "auto").strip().lower()
    if value not in BRAIN_KINDS:
        raise InvalidInput(f"unknown brain {brain!r}; choose one of: {', '.join(BRAIN_KINDS)}")
    return value
