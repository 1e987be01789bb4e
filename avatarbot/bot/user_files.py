"""Files users send (text, markdown, CSV, PDF, Word): their text goes into the conversation's
memory; `/kb` then adds the file to the agent's knowledge base (bot/chat_knowledge.py)."""

from __future__ import annotations

from avatarbot.bot import router
from avatarbot.bot.types import IncomingMessage
from avatarbot.errors import AvatarbotError, InvalidInput
from avatarbot.services import Services

FILE_CONTEXT_CHARS = 7000  # one memory message holds 8000 (agents/memory.MAX_MESSAGE_CHARS)


def extract_text(name: str, data: bytes) -> str:
    """The file's text (blocking: run in a thread); InvalidInput naming the file otherwise.
    The same reader as the knowledge base: text, markdown, CSV, PDF and Word files."""
    from avatarbot.agents.knowledge.extract import UnsupportedDocument, read_file_text

    try:
        return read_file_text(name, data)
    except UnsupportedDocument:
        raise InvalidInput(
            f"I can read text, markdown, CSV, PDF and Word files; {name} is none of these."
        ) from None
    except AvatarbotError as exc:
        raise InvalidInput(f"{name}: {exc.message}") from None


async def remember_file(services: Services, msg: IncomingMessage, name: str, text: str) -> bool:
    """Store the text as a turn of the chat agent's conversation; False without agents."""
    agents = services.agents
    memory = getattr(agents, "memory", None)
    if agents is None or memory is None:
        return False
    route = await router.resolve(services, platform=msg.channel.value, chat_id=msg.chat_id)
    agent = await agents.get_agent(route.agent_name) or await agents.default_agent()
    conversation = msg.conversation
    await memory.append(
        agent.id,
        conversation,
        "user",
        f"[file {name}]\n{text}",
        {"user": msg.user_id, "file": name},
    )
    await memory.append(
        agent.id, conversation, "assistant", f"(I have read {name}.)", {"file": name}
    )
    return True
