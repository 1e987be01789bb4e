"""Which agent and digital human answer a chat (ChatBinding), default agent otherwise."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from avatarbot.services import Services
from avatarbot.storage.models import ChatBinding

DEFAULT_AGENT = "default"


@dataclass(frozen=True)
class Route:
    agent_name: str
    digital_human_id: str | None = None
    bound: bool = False


async def get_binding(services: Services, *, platform: str, chat_id: str) -> ChatBinding | None:
    async with services.db.session() as session:
        stmt = select(ChatBinding).where(
            ChatBinding.platform == platform, ChatBinding.chat_id == chat_id
        )
        return (await session.scalars(stmt)).first()


async def resolve(services: Services, *, platform: str, chat_id: str) -> Route:
    binding = await get_binding(services, platform=platform, chat_id=chat_id)
    if binding is None:
        return Route(agent_name=default_agent_name(services))
    return Route(binding.agent_name, binding.digital_human_id, bound=True)


def default_agent_name(services: Services) -> str:
    agents = services.agents
    name = getattr(agents, "default_agent_name", None) if agents is not None else None
    return str(name) if isinstance(name, str) and name else DEFAULT_AGENT


async def bind(
    services: Services,
    *,
    platform: str,
    chat_id: str,
    agent_name: str,
    digital_human_id: str | None = None,
) -> ChatBinding:
    """Bind a chat to an agent (replacing an earlier binding)."""
    async with services.db.session() as session:
        stmt = select(ChatBinding).where(
            ChatBinding.platform == platform, ChatBinding.chat_id == chat_id
        )
        binding = (await session.scalars(stmt)).first()
        if binding is None:
            binding = ChatBinding(platform=platform, chat_id=chat_id, agent_name=agent_name)
            session.add(binding)
        binding.agent_name = agent_name
        if digital_human_id is not None:
            binding.digital_human_id = digital_human_id
        await session.commit()
        await session.refresh(binding)
        return binding
