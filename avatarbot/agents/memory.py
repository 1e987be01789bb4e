"""Conversation memory per (agent, conversation), persisted in ConversationMessage.

Only user messages and final assistant answers are kept (tool chatter is not replayed). When a
conversation grows past its turn or token budget, the oldest turns are condensed by the brain's
summariser into one "summary" row (LLM brain) or dropped (offline brain).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, delete, func, select

from avatarbot.storage.db import Database
from avatarbot.storage.models import ConversationMessage

Summarizer = Callable[[str, list[dict[str, str]]], Awaitable[str | None]]
MAX_MESSAGE_CHARS = 8000  # one stored message; a 64 KB paste is cut, not replayed forever
MAX_CONVERSATION_CHARS = 200  # the column's length (ConversationMessage.conversation)


@dataclass
class MemoryBudget:
    max_turns: int = 12  # user+assistant pairs kept verbatim
    max_tokens: int = 3000  # estimated tokens of the verbatim history

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MemoryBudget:
        return cls(
            max_turns=int(config.get("memory_turns", cls.max_turns)),
            max_tokens=int(config.get("memory_tokens", cls.max_tokens)),
        )


def estimate_tokens(text: str) -> int:
    """Rough count without a tokenizer: a CJK character ~1 token, other text ~4 chars a token."""
    cjk = len(re.findall(r"[\u3000-\u9fff\uff00-\uffef]", text))
    return cjk + (len(text) - cjk + 3) // 4


def _key(conversation: str) -> str:
    """The stored form of a conversation id: every read, write and delete uses the same one."""
    return conversation[:MAX_CONVERSATION_CHARS]


def _messages_of(agent_id: str, conversation: str) -> Select[tuple[ConversationMessage]]:
    """SELECT one agent's messages in one conversation, oldest first."""
    return (
        select(ConversationMessage)
        .where(
            ConversationMessage.agent_id == agent_id,
            ConversationMessage.conversation == _key(conversation),
        )
        .order_by(ConversationMessage.id)
    )


class ConversationMemory:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def history(self, agent_id: str, conversation: str) -> list[dict[str, str]]:
        """Messages for a brain, oldest first; a summary comes first as a system note."""
        async with self.db.session() as session:
            rows = (await session.scalars(_messages_of(agent_id, conversation))).all()
        # A summary row is newer than the turns it replaced but stands for older ones: put it first.
        summaries = [
            {"role": "system", "content": f"Summary of the earlier conversation: {r.content}"}
            for r in rows
            if r.role == "summary"
        ]
        turns = [
            {"role": r.role, "content": r.content} for r in rows if r.role in ("user", "assistant")
        ]
        return summaries[-1:] + turns

    async def append(
        self,
        agent_id: str,
        conversation: str,
        role: str,
        content: str,
        data: dict[str, Any] | None = None,
    ) -> None:
        async with self.db.session() as session:
            session.add(
                ConversationMessage(
                    agent_id=agent_id,
                    conversation=_key(conversation),
                    role=role,
                    content=content[:MAX_MESSAGE_CHARS],
                    data=data,
                )
            )
            await session.commit()

    async def reset(self, agent_id: str | None, conversation: str) -> int:
        """Delete a conversation's messages: one agent's, or every agent's when agent_id is None."""
        stmt = delete(ConversationMessage).where(
            ConversationMessage.conversation == _key(conversation)
        )
        if agent_id is not None:
            stmt = stmt.where(ConversationMessage.agent_id == agent_id)
        async with self.db.session() as session:
            result = await session.execute(stmt)
            await session.commit()
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def count(self, agent_id: str, conversation: str) -> int:
        async with self.db.session() as session:
            value = await session.scalar(
                select(func.count())
                .select_from(ConversationMessage)
                .where(
                    ConversationMessage.agent_id == agent_id,
                    ConversationMessage.conversation == _key(conversation),
                )
            )
            return int(value or 0)

    async def compact(
        self,
        agent_id: str,
        conversation: str,
        budget: MemoryBudget,
        summarizer: Summarizer | None = None,
    ) -> bool:
        """Fold the oldest turns into a summary (or drop them) when over budget; True if it did."""
        async with self.db.session() as session:
            rows = list((await session.scalars(_messages_of(agent_id, conversation))).all())
            summaries = [r for r in rows if r.role == "summary"]
            turns = [r for r in rows if r.role != "summary"]
            keep = _messages_to_keep(turns, budget)
            if keep >= len(turns):
                return False
            old, _recent = turns[: len(turns) - keep], turns[len(turns) - keep :]
            summary_text: str | None = None
            if summarizer is not None:
                previous = summaries[-1].content if summaries else ""
                summary_text = await summarizer(
                    previous, [{"role": r.role, "content": r.content} for r in old]
                )
            for row in old:
                await session.delete(row)
            if summary_text:
                for row in summaries:
                    await session.delete(row)
                session.add(
                    ConversationMessage(
                        agent_id=agent_id,
                        conversation=_key(conversation),
                        role="summary",
                        content=summary_text[:MAX_MESSAGE_CHARS],
                        data={"summarised_messages": len(old)},
                    )
                )
            await session.commit()
            return True


def _messages_to_keep(turns: list[ConversationMessage], budget: MemoryBudget) -> int:
    keep, tokens = 0, 0
    for row in reversed(turns):
        cost = estimate_tokens(row.content)
        if keep >= budget.max_turns * 2 or (keep and tokens + cost > budget.max_tokens):
            break
        keep += 1
        tokens += cost
    # Start the kept part at a user turn, so no answer is replayed without its question.
    while keep and turns[len(turns) - keep].role != "user":
        keep -= 1
    return keep
