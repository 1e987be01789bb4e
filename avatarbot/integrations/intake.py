"""Durable intake shared by the webhooks: store the message, then answer the platform."""

from __future__ import annotations

import logging
from typing import Any

from starlette.background import BackgroundTask

from avatarbot.bot.types import IncomingMessage

logger = logging.getLogger(__name__)


async def intake(bot: Any, msg: IncomingMessage) -> BackgroundTask | None:
    """Store the message durably; the returned task (run after the answer) handles it."""
    if bot is None:
        logger.warning("%s event %s dropped: the bot is not running", msg.channel, msg.event_id)
        return None
    if not await bot.accept(msg):
        return None  # a duplicate of a finished event

    async def _kick() -> None:  # async: Starlette would run a plain function in a thread
        bot.kick(msg.channel.value, msg.event_id, msg.chat_id)

    return BackgroundTask(_kick)
