"""Text, markdown and PDF files users send: their text goes into the conversation's memory."""

from __future__ import annotations

import io
from pathlib import Path

from avatarbot.bot import router
from avatarbot.bot.types import IncomingMessage
from avatarbot.errors import InvalidInput
from avatarbot.services import Services

TEXT_SUFFIXES = {".txt", ".text", ".md", ".markdown", ".csv", ".log"}
FILE_CONTEXT_CHARS = 7000  # one memory message holds 8000 (agents/memory.MAX_MESSAGE_CHARS)
PDF_MAX_PAGES = 50


def extract_text(name: str, data: bytes) -> str:
    """The file's text (blocking: run in a thread); InvalidInput for other kinds of file."""
    suffix = Path(name).suffix.lower()
    if data.startswith(b"%PDF") or suffix == ".pdf":
        return _pdf_text(name, data)
    if suffix in TEXT_SUFFIXES or (not suffix and b"\x00" not in data[:4096]):
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                continue
        raise InvalidInput(f"{name} is not readable text (neither UTF-8 nor GB18030).")
    raise InvalidInput(f"I can read text, markdown and PDF files; {name} is none of these.")


def _pdf_text(name: str, data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages[:PDF_MAX_PAGES]]
    except (PdfReadError, Exception) as exc:  # hostile PDFs break parsers in many ways
        raise InvalidInput(f"{name} is not a PDF I can read ({type(exc).__name__}).") from exc
    return "\n\n".join(p.strip() for p in pages if p.strip())


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
