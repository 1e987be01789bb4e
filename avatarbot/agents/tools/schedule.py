"""schedule_report: store a Schedule row with the same validation the scheduler API applies.

When the scheduler service is running it is told about the new row (it also re-reads the table
on start, so a schedule made while it is down is not lost).
"""

from __future__ import annotations

import inspect
import logging
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from avatarbot.bot.types import Channel, IncomingMessage
from avatarbot.errors import InvalidInput
from avatarbot.services import Services
from avatarbot.storage.models import Schedule

logger = logging.getLogger(__name__)

OUTPUTS = ("text", "markdown", "video")
PLATFORMS = ("feishu", "wecom", "webhook")
CHAT_DEFAULT_TIMEZONE = "Asia/Shanghai"  # Feishu/WeCom users mean local (China) time


def validate_cron(cron: str, timezone: str) -> str:
    expression = re.sub(r"\s+", " ", (cron or "").strip())
    if len(expression.split(" ")) != 5:
        raise InvalidInput(
            f"a cron expression has 5 fields (minute hour day month weekday): {cron!r}"
        )
    from avatarbot.scheduler.validation import cron_trigger

    cron_trigger(expression, timezone)  # the scheduler's own reading (crontab weekdays)
    return expression


def validate_timezone(timezone: str) -> str:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"unknown time zone {timezone!r} (use an IANA name like Asia/Shanghai)"
        ) from None
    return timezone


def default_target(message: IncomingMessage) -> dict[str, Any]:
    """This chat, in the shape the scheduler's delivery expects."""
    if message.channel == Channel.FEISHU:
        return {"platform": "feishu", "chat_id": message.chat_id}
    if message.channel == Channel.WECOM:
        if message.chat_type == "group":
            return {"platform": "wecom", "chat_id": message.chat_id}
        return {"platform": "wecom", "user_id": message.user_id}
    raise InvalidInput(
        "a scheduled report needs a Feishu/WeCom chat or a webhook URL as its target; "
        "ask from that chat, or give target {platform, chat_id | url}"
    )


def validate_target(target: dict[str, Any]) -> dict[str, Any]:
    platform = str(target.get("platform", ""))
    if platform not in PLATFORMS:
        raise InvalidInput(f"target platform must be one of {', '.join(PLATFORMS)}")
    if platform == "webhook":
        url = str(target.get("url", ""))
        if not url.startswith(("https://", "http://")):
            raise InvalidInput("a webhook target needs an http(s) url")
    elif not (target.get("chat_id") or target.get("user_id")):
        raise InvalidInput(f"a {platform} target needs a chat_id or user_id")
    return dict(target)


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
    tz = validate_timezone(
        timezone
        or (CHAT_DEFAULT_TIMEZONE if message.channel in (Channel.FEISHU, Channel.WECOM) else "UTC")
    )
    expression = validate_cron(cron, tz)
    prompt = (prompt or "").strip()
    if not prompt:
        raise InvalidInput("the report prompt is empty")
    if output not in OUTPUTS:
        raise InvalidInput(f"output must be one of {', '.join(OUTPUTS)}")
    chosen_target = validate_target(target) if target else default_target(message)
    values = {
        "name": (name or prompt)[:200],
        "cron": expression,
        "timezone": tz,
        "agent": agent,
        "prompt": prompt,
        "output": output,
        "target": chosen_target,
        "enabled": True,
    }
    async with services.db.session() as session:
        try:
            # The scheduler domain's own validation and insert, when that package is present.
            from avatarbot.scheduler import service as schedule_service
        except ImportError:
            row = Schedule(user_id=message.owner_id, **values)
            session.add(row)
            await session.commit()
            await session.refresh(row)
        else:
            row = await schedule_service.create(
                session=session, values=values, user_id=message.owner_id
            )
    await _notify_scheduler(services, row.id)
    return {
        "schedule_id": row.id,
        "name": row.name,
        "cron": expression,
        "timezone": tz,
        "output": output,
        "target": {k: v for k, v in chosen_target.items() if k != "url"},
    }


async def _notify_scheduler(services: Services, schedule_id: str) -> None:
    scheduler = services.scheduler
    if scheduler is None:
        return
    for method in ("schedule_added", "sync", "reload"):
        hook = getattr(scheduler, method, None)
        if callable(hook):
            try:
                result = hook(schedule_id) if method == "schedule_added" else hook()
                if inspect.isawaitable(result):
                    await result
            except Exception:  # the row is stored; the scheduler picks it up on its next sync
                logger.exception("scheduler did not accept schedule %s", schedule_id)
            return
