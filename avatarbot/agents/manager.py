"""AgentManager: agent profiles in the Agent table, and `handle(message)`, the one entry point
every channel (Feishu, WeCom, the web console's WebSocket, the scheduler) uses to talk to one.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from avatarbot.agents.brains.base import Brain, BrainContext, BrainResult
from avatarbot.agents.brains.factory import build_brain, choose_brain_kind
from avatarbot.agents.brains.rules import detect_language
from avatarbot.agents.knowledge.tool import knowledge_tools
from avatarbot.agents.locks import KeyedLocks
from avatarbot.agents.mcp.pool import McpPool
from avatarbot.agents.mcp.servers import check_servers
from avatarbot.agents.memory import ConversationMemory, MemoryBudget
from avatarbot.agents.profile import (
    DEFAULT_AGENT_NAME,
    DEFAULT_AGENT_PROMPT,
    KNOWN_CAPABILITIES,
    AgentProfile,
    validate_brain,
    validate_capabilities,
    validate_name,
)
from avatarbot.agents.tools.builtin import ToolCallContext, builtin_tools
from avatarbot.agents.tools.toolbox import Toolbox
from avatarbot.bot.types import Channel, IncomingMessage, Reply, ReplyKind
from avatarbot.config import Settings
from avatarbot.errors import AvatarbotError, Conflict, InvalidInput, NotFound
from avatarbot.services import Services
from avatarbot.storage.models import Agent, ConversationMessage, DigitalHuman
from avatarbot.tools import ToolSpec

logger = logging.getLogger(__name__)

EventCallback = Callable[[dict[str, Any]], Any]  # sync or async; gets token/tool/task events
RESET_COMMANDS = ("/reset", "/重置", "/清空")
SCHEDULED_RUN_BLOCKED = frozenset({"schedule_report"})


class AgentManager:
    def __init__(
        self,
        services: Services,
        *,
        brain_factory: Callable[[str, Settings], Brain] = build_brain,
    ) -> None:
        self.services = services
        self.memory = ConversationMemory(services.db)
        self._brain_factory = brain_factory
        self.mcp = McpPool(lambda: services.settings)  # MCP connections of this process
        # One message at a time per conversation keeps memory in order.
        self._locks = KeyedLocks()

    async def start(self) -> None:
        await self.ensure_default_agent()

    async def stop(self) -> None:
        await self.mcp.close()

    # -- profiles (seed API) ----------------------------------------------------------------
    async def ensure_default_agent(self) -> AgentProfile:
        async with self.services.db.session() as session:
            row = (await session.scalars(select(Agent).where(Agent.is_default.is_(True)))).first()
            if row is None:
                row = (
                    await session.scalars(select(Agent).where(Agent.name == DEFAULT_AGENT_NAME))
                ).first()
                if row is not None:
                    row.is_default = True
                    await session.commit()
            if row is not None:
                return AgentProfile.of(row, self)
            row = Agent(
                name=DEFAULT_AGENT_NAME,
                description="Default assistant: videos, voice, plugins and scheduled reports.",
                prompt=DEFAULT_AGENT_PROMPT,
                capabilities=list(KNOWN_CAPABILITIES),
                brain="auto",
                is_default=True,
            )
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:  # another replica created it first
                await session.rollback()
                row = (
                    await session.scalars(select(Agent).where(Agent.name == DEFAULT_AGENT_NAME))
                ).one()
            return AgentProfile.of(row, self)

    async def create_agent(
        self,
        name: str,
        system_prompt: str = "",
        capabilities: list[str] | None = None,
        *,
        brain: str = "auto",
        description: str = "",
        config: dict[str, Any] | None = None,
        digital_human_id: str | None = None,
        mcp_servers: list[Any] | None = None,
        allow_stdio: bool = False,
    ) -> AgentProfile:
        """allow_stdio: the caller may add stdio MCP servers (a superuser or the local CLI)."""
        row = Agent(
            name=validate_name(name),
            prompt=system_prompt or "",
            capabilities=validate_capabilities(capabilities or [], self._plugin_capabilities()),
            brain=validate_brain(brain),
            description=description or "",
            config=dict(config or {}),
            digital_human_id=digital_human_id,
            mcp_servers=self._checked_mcp(mcp_servers or [], allow_stdio, None),
        )
        async with self.services.db.session() as session:
            await _check_human(session, digital_human_id)
            if await self._row(session, row.name) is not None:
                raise Conflict(f"an agent named {row.name!r} already exists")
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:
                raise Conflict(f"an agent named {row.name!r} already exists") from None
            await session.refresh(row)
            return AgentProfile.of(row, self)

    async def update_agent(
        self,
        name: str,
        system_prompt: str | None = None,
        capabilities: list[str] | None = None,
        *,
        brain: str | None = None,
        description: str | None = None,
        config: dict[str, Any] | None = None,
        digital_human_id: str | None = None,
        mcp_servers: list[Any] | None = None,
        allow_stdio: bool = False,
    ) -> AgentProfile:
        async with self.services.db.session() as session:
            row = await self._row_or_raise(session, name)
            mcp_before = row.mcp_servers
            if mcp_servers is not None:
                row.mcp_servers = self._checked_mcp(mcp_servers, allow_stdio, row.mcp_servers)
            if system_prompt is not None:
                row.prompt = system_prompt
            if capabilities is not None:
                row.capabilities = validate_capabilities(capabilities, self._plugin_capabilities())
            if brain is not None:
                row.brain = validate_brain(brain)
            if description is not None:
                row.description = description
            if config is not None:
                row.config = dict(config)
            if digital_human_id is not None:
                await _check_human(session, digital_human_id or None)
                row.digital_human_id = digital_human_id or None
            await session.commit()
            await session.refresh(row)
        if row.mcp_servers != mcp_before:
            await self.mcp.forget(row.id)  # reconnect with the new setting on next use
        return AgentProfile.of(row, self)

    async def delete_agent(self, name: str) -> bool:
        async with self.services.db.session() as session:
            row = await self._row(session, name)
            if row is None:
                return False
            if row.is_default:
                raise Conflict("the default agent cannot be deleted")
            # Memory explicitly too: SQLite cascades only with foreign keys switched on.
            await session.execute(
                delete(ConversationMessage).where(ConversationMessage.agent_id == row.id)
            )
            agent_id = row.id
            await session.delete(row)
            await session.commit()
        await self.mcp.forget(agent_id)
        return True

    async def list_agents(self) -> list[str]:
        return [p.name for p in await self.list_profiles()]

    async def list_profiles(self) -> list[AgentProfile]:
        async with self.services.db.session() as session:
            rows = await session.scalars(select(Agent).order_by(Agent.name))
            return [AgentProfile.of(r, self) for r in rows.all()]

    async def get_agent(self, name: str) -> AgentProfile | None:
        async with self.services.db.session() as session:
            row = await self._row(session, name)
            return AgentProfile.of(row, self) if row is not None else None

    async def default_agent(self) -> AgentProfile:
        return await self.ensure_default_agent()

    async def update_prompt(self, name: str, new_prompt: str) -> AgentProfile:
        return await self.update_agent(name, system_prompt=new_prompt)

    async def add_capability(self, name: str, capability: str) -> AgentProfile:
        agent = await self._require(name)
        return await self.update_agent(name, capabilities=[*agent.capabilities, capability])

    async def remove_capability(self, name: str, capability: str) -> AgentProfile:
        agent = await self._require(name)
        remaining = [c for c in agent.capabilities if c != capability.strip().lower()]
        return await self.update_agent(name, capabilities=remaining)

    # -- memory ---------------------------------------------------------------------------------
    async def reset(self, agent: str | None, conversation: str | None = None) -> int:
        """Forget a conversation (the chat's /reset); returns how many messages were removed.

        `reset(agent, conversation)` clears one agent's memory of it; `reset(conversation)` or
        `reset(None, conversation)` clears it for every agent (the chat switched agents maybe).
        """
        if conversation is None:
            agent, conversation = None, agent or ""
        if agent:
            profile = await self._require(agent)
            return await self.memory.reset(profile.id, conversation)
        return await self.memory.reset(None, conversation)

    # -- tools ----------------------------------------------------------------------------------
    def plugin_tools(self) -> list[ToolSpec]:
        plugins = self.services.plugins
        if plugins is None:
            return []
        try:
            return list(plugins.all_tools())
        except Exception:  # a broken plugin must not take the agents down
            logger.exception("could not list plugin tools")
            return []

    def _plugin_capabilities(self) -> set[str]:
        return {t.capability for t in self.plugin_tools() if t.capability}

    def tools_for(self, ctx: ToolCallContext) -> list[ToolSpec]:
        return [*builtin_tools(ctx), *knowledge_tools(ctx), *self.plugin_tools()]

    def _checked_mcp(
        self, servers: list[Any], allow_stdio: bool, previous: list[dict[str, Any]] | None
    ) -> list[dict[str, Any]]:
        return check_servers(
            servers,
            allowed_commands=self.services.settings.mcp.allowed_command_list,
            allow_stdio=allow_stdio,
            previous=previous,
        )

    # -- talking --------------------------------------------------------------------------------
    async def handle(
        self,
        message: IncomingMessage,
        *,
        agent_name: str | None = None,
        on_event: EventCallback | None = None,
    ) -> list[Reply]:
        """Answer one message: text first, then media replies (pending ones carry a task_id)."""
        agent = await self._agent_for(message, agent_name)
        text = (message.text or "").strip()
        language = detect_language(text)
        if text.lower() in RESET_COMMANDS:
            await self.memory.reset(agent.id, message.conversation)
            return [Reply.of_text("对话已清空。" if language == "zh" else "Conversation cleared.")]
        if not text:
            return [
                Reply.of_text(
                    "请发送文字消息。" if language == "zh" else "Please send a text message."
                )
            ]
        emit = _safe_emitter(on_event)
        async with self._locks.hold((agent.id, message.conversation)):
            settings = self.services.settings
            kind = choose_brain_kind(agent.brain, settings)
            brain = self._brain_factory(kind, settings)
            tool_ctx = ToolCallContext(self.services, agent, message, language)
            toolbox = Toolbox(
                [*self.tools_for(tool_ctx), *await self.mcp.tools_for(agent)],
                agent,
                unavailable=self.mcp.unavailable(agent) if agent.can("mcp") else None,
                emit=emit,
                language=language,
                # A scheduled run creating schedules would multiply itself on every fire.
                blocked=SCHEDULED_RUN_BLOCKED
                if message.channel == Channel.SCHEDULER
                else frozenset(),
            )
            ctx = BrainContext(
                agent=agent,
                text=text,
                history=await self.memory.history(agent.id, message.conversation),
                toolbox=toolbox,
                emit=emit,
                settings=settings,
                language=language,
                channel=message.channel.value,
                images=[str(i) for i in (message.raw or {}).get("images") or []],
            )
            try:
                result = await brain.respond(ctx)
            except AvatarbotError as exc:
                logger.warning("agent %s (%s brain) failed: %s", agent.name, kind, exc.message)
                await emit({"type": "error", "detail": exc.message})
                sorry = "抱歉，出错了：" if language == "zh" else "Sorry, something went wrong: "
                result = BrainResult(text=sorry + exc.message)
            replies = self._replies(agent, kind, result, toolbox)
            await self._remember(agent, message, text, result, toolbox)
            await self.memory.compact(
                agent.id,
                message.conversation,
                MemoryBudget.from_config(agent.config),
                summarizer=brain.summarize if kind == "llm" else None,
            )
        return replies

    def _replies(
        self, agent: AgentProfile, kind: str, result: BrainResult, toolbox: Toolbox
    ) -> list[Reply]:
        replies: list[Reply] = []
        if result.text:
            meta = {"agent": agent.name, "brain": kind, "steps": result.steps}
            if result.stopped_at_limit:
                meta["stopped_at_limit"] = True
            replies.append(Reply(ReplyKind.TEXT, text=result.text, meta=meta))
        replies.extend(toolbox.replies)
        return replies

    async def _remember(
        self,
        agent: AgentProfile,
        message: IncomingMessage,
        text: str,
        result: BrainResult,
        toolbox: Toolbox,
    ) -> None:
        conversation = message.conversation
        await self.memory.append(agent.id, conversation, "user", text, {"user": message.user_id})
        media = [f"{r.kind.value} (task {r.task_id})" for r in toolbox.replies if r.task_id]
        answer = result.text + (f"\n[sent: {', '.join(media)}]" if media else "")
        data = {
            "tools": [{"name": o.name, "ok": o.ok} for o in toolbox.outcomes],
            "task_ids": [r.task_id for r in toolbox.replies if r.task_id],
        }
        await self.memory.append(agent.id, conversation, "assistant", answer, data)

    async def _agent_for(self, message: IncomingMessage, agent_name: str | None) -> AgentProfile:
        if agent_name:
            return await self._require(agent_name)
        # Hints in raw: the chat's binding (bot: "agent_name") or a schedule's agent ("agent").
        # A hint naming a since-deleted agent falls back to the default rather than failing.
        raw = message.raw or {}
        hinted = raw.get("agent_name") or raw.get("agent")
        if isinstance(hinted, str) and hinted:
            agent = await self.get_agent(hinted)
            if agent is not None:
                return agent
            logger.warning("agent %r from the chat binding no longer exists; using default", hinted)
        return await self.default_agent()

    async def _require(self, name: str) -> AgentProfile:
        agent = await self.get_agent(name)
        if agent is None:
            raise NotFound(f"agent {name!r} not found")
        return agent

    @staticmethod
    async def _row(session: Any, name: str) -> Agent | None:
        return (await session.scalars(select(Agent).where(Agent.name == name))).first()

    async def _row_or_raise(self, session: Any, name: str) -> Agent:
        row = await self._row(session, name)
        if row is None:
            raise NotFound(f"agent {name!r} not found")
        return row


async def _check_human(session: Any, human_id: str | None) -> None:
    if human_id and await session.get(DigitalHuman, human_id) is None:
        raise InvalidInput(f"digital human {human_id!r} does not exist")


def _safe_emitter(on_event: EventCallback | None) -> Callable[[dict[str, Any]], Any]:
    """Events are best effort: a closed WebSocket must not abort work already started."""

    async def emit(event: dict[str, Any]) -> None:
        if on_event is None:
            return
        try:
            result = on_event(event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.debug("event listener failed; continuing", exc_info=True)

    return emit
