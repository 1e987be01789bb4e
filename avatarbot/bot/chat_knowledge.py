"""`/kb`: the file a user just sent goes into the chat agent's knowledge base.

A file message is read into the conversation (bot/user_files.py) and kept for an hour as the
conversation's last file (bot/last_media.py). `/kb` (or "add to knowledge", "加入知识库") then
indexes that file for the chat's agent, the same way as
`POST /api/v1/agents/{name}/knowledge`: a file of the same name is replaced, the size caps hold.
Only agents with the `knowledge` capability take files, and `AVATARBOT_KNOWLEDGE__CHAT_UPLOADS`
(default true) can switch chat uploads off.
"""

from __future__ import annotations

from pathlib import Path

from avatarbot.bot import last_media, router
from avatarbot.bot.types import IncomingMessage, Reply
from avatarbot.errors import AvatarbotError
from avatarbot.services import Services

KB_PHRASES = ("add to knowledge", "add to the knowledge base", "加入知识库", "存入知识库")


def wants_knowledge(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered == "/kb" or lowered.startswith(("/kb ", "/kb@")):
        return True
    return any(phrase in lowered for phrase in KB_PHRASES)


async def add_last_file(services: Services, msg: IncomingMessage) -> list[Reply]:
    import asyncio

    from avatarbot.agents.knowledge.store import knowledge_base

    if not services.settings.knowledge.chat_uploads:
        return [
            Reply.of_text(
                "Adding files to the knowledge base from a chat is switched off here; "
                "an administrator can upload them in the console."
            )
        ]
    agents = services.agents
    if agents is None:
        return [Reply.of_text("No agent is running here to keep a knowledge base.")]
    route = await router.resolve(services, platform=msg.channel.value, chat_id=msg.chat_id)
    agent = await agents.get_agent(route.agent_name) or await agents.default_agent()
    if "knowledge" not in agent.capabilities:
        return [
            Reply.of_text(
                f"The agent {agent.name} of this chat has no knowledge base (it needs the "
                "`knowledge` capability, set in the console's agent page)."
            )
        ]
    kept = await asyncio.to_thread(last_media.last, services, msg, "file")
    if kept is None:
        return [
            Reply.of_text(
                "Send me a document first (txt, md, pdf or docx), then /kb (or “加入知识库”) "
                "within the hour, and it goes into the knowledge base."
            )
        ]
    name, data = kept.name, await asyncio.to_thread(kept.read_bytes)
    try:
        info, replaced = await knowledge_base(services).add_document(
            agent_id=agent.id, filename=name, data=data
        )
    except AvatarbotError as exc:
        return [Reply.of_text(f"I could not add {name} to the knowledge base: {exc.message}")]
    stem = Path(info.filename).stem
    how = "replaced the earlier copy" if replaced else "added"
    return [
        Reply.of_text(
            f"{name}: {how} in the knowledge base of {agent.name} ({info.chunk_count} "
            f"passages). Ask me “what does {stem} say about …” / “{stem}里关于…怎么说”."
        )
    ]
