"""A stand-in for services.agents with a fixed answer, recording what it was asked."""

from __future__ import annotations

from typing import Any

from avatarbot.bot.types import IncomingMessage, Reply


class StubAgents:
    def __init__(self, replaced: Any = None, prefix: str = "Report: ") -> None:
        self.replaced = replaced  # the real manager, still stopped by the app's lifespan
        self.prefix = prefix
        self.messages: list[IncomingMessage] = []

    async def handle(self, message: IncomingMessage, **_kwargs: Any) -> list[Reply]:
        self.messages.append(message)
        return [Reply.of_text(f"{self.prefix}{message.text}")]

    async def stop(self) -> None:
        if self.replaced is not None and hasattr(self.replaced, "stop"):
            await self.replaced.stop()
