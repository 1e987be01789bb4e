"""schedule_report: store a Schedule row with the same validation the scheduler API applies.

When the scheduler service is running it is told about the new row (it also re-reads the table
on start, so a schedule made while it is down is not lost).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from avatarbot.auth.access import caller_of
from avatarbot.bot.types import Channel, IncomingMessage
from avatarbot.errors import InvalidInput
from avatarbot.scheduler import service as schedule_service
from avatarbot.scheduler.target_access import check_target
from avatarbot.services import Services

logger = logging.getLogger(__name__)

CHAT_DEFAULT_TIMEZONE = "Asia/Shanghai"  # Feishu/WeCom users mean local (China) time


def default_target(message: IncomingMessage) -> dict[str, Any]:
    """This chat, in the shape the scheduler's delivery expects."""
    if message.channel == Channel.FEISHU:
        return {"platform": "feishu", "chat_id": message.chat_id}
    if message.channel == Channel.WECOM:
        if message.chat_type == "group":
            return {"platform": "wecom", "chat_id": message.chat_id}
        return {"platform": "wecom", "user_id": message.user_id}
    if message.channel == Channel.WECOM_BOT:
        chat_type = "group" if message.chat_type == "group" else "single"
        return {"platform": "wecom_bot", "chat_id": message.chat_id, "chat_type": chat_type}
    raise InvalidInput(
        "a scheduled report needs a Feishu/WeCom chat or a webhook URL as its target; "
        "ask from that chat, or give target {platform, chat_id | url}"
    )


async def create_schedule(
    services: Services,
    *,
    agent: str,
    message: IncomingMessage,
    cron: str,
    prompt: str,
    name: str | None = None,
    timezone: str | None = None,
    output: str = "text",
    target: dict[str, Any] | None = None,
) -> dict[str, Any]:
    tz = timezone or (
        CHAT_DEFAULT_TIMEZONE
        if message.channel in (Channel.FEISHU, Channel.WECOM, Channel.WECOM_BOT)
        else "UTC"
    )
    prompt = (prompt or "").strip()
    if not prompt:
        raise InvalidInput("the report prompt is empty")
    values = {
        "name": (name or prompt)[:200],
        "cron": re.sub(r"\s+", " ", (cron or "").strip()),
        "timezone": tz,
        "agent": agent,
        "prompt": prompt,
        "output": output,
        "target": target if target else default_target(message),
        "enabled": True,
    }
    # Where the chat may post: its own chat, robots on public hosts; accounts by their rights.
    async with services.db.session() as session:
        caller = await caller_of(session, message.owner_id)
    try:
        origin: dict[str, Any] | None = default_target(message)
    except InvalidInput:
        origin = None  # the web console: no chat of its own
    await check_target(values["target"], caller=caller, settings=services.settings, origin=origin)
    # The scheduler domain validates every field (cron, timezone, output, target, agent).
    async with services.db.session() as session:
        row = await schedule_service.create(
            session=session, values=values, user_id=message.owner_id
        )
    await _notify_scheduler(services, row.id)
    return {
        "schedule_id": row.id,
        "name": row.name,
        "cron": row.cron,
        "timezone": row.timezone,
        "output": row.output,
        # the robot URL and signing secret are credentials: never echoed into the chat
        "target": {k: v for k, v in row.target.items() if k not in ("url", "secret")},
    }


async def _notify_scheduler(services: Services, schedule_id: str) -> None:
    if services.scheduler is None:
        return
    try:
        await services.scheduler.sync()
    except Exception:  # the row is stored; the scheduler picks it up on its next sync
        logger.exception("scheduler did not accept schedule %s", schedule_id)
