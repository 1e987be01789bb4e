"""Schedule rows: validated create/read/update/delete and the run history."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from avatarbot.errors import InvalidInput, NotFound
from avatarbot.scheduler.validation import cron_trigger, validate_output, validate_target
from avatarbot.storage.models import Agent, Schedule, ScheduleRun

EDITABLE = ("name", "cron", "timezone", "agent", "prompt", "output", "target", "enabled")
MAX_PROMPT_CHARS = 5000


async def known_agent_names(session: AsyncSession) -> list[str]:
    return list((await session.scalars(select(Agent.name).order_by(Agent.name))).all())


async def _validate(session: AsyncSession, values: dict[str, Any]) -> dict[str, Any]:
    """Check every field; returns the cleaned values. Raises InvalidInput with the reason."""
    name = str(values.get("name") or "").strip()
    if not name:
        raise InvalidInput("name is required")
    if len(name) > 200:
        raise InvalidInput("name is too long (at most 200 characters)")
    prompt = str(values.get("prompt") or "").strip()
    if not prompt:
        raise InvalidInput("prompt is required")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidInput(f"prompt is too long (at most {MAX_PROMPT_CHARS} characters)")
    timezone = str(values.get("timezone") or "UTC")
    cron = str(values.get("cron") or "").strip()
    cron_trigger(cron, timezone)
    agent = str(values.get("agent") or "").strip()
    names = await known_agent_names(session)
    if agent not in names:
        known = ", ".join(names) if names else "none defined yet"
        raise InvalidInput(f"unknown agent {agent!r} (known agents: {known})")
    return {
        "name": name,
        "cron": cron,
        "timezone": timezone,
        "agent": agent,
        "prompt": prompt,
        "output": validate_output(str(values.get("output") or "text")),
        "target": validate_target(values.get("target")),
        "enabled": bool(values.get("enabled", True)),
    }


async def create(*, session: AsyncSession, values: dict[str, Any], user_id: int | None) -> Schedule:
    cleaned = await _validate(session, values)
    schedule = Schedule(user_id=user_id, **cleaned)
    session.add(schedule)
    await session.commit()
    await session.refresh(schedule)
    return schedule


async def get(*, session: AsyncSession, schedule_id: str, user_id: int | None = None) -> Schedule:
    """The schedule; other users' schedules look missing (user_id None = any owner). Chat-made
    schedules (no owner) are only for callers that may see any owner (superusers)."""
    schedule = await session.get(Schedule, schedule_id)
    if schedule is None or (user_id is not None and schedule.user_id != user_id):
        raise NotFound(f"schedule {schedule_id} not found")
    return schedule


async def list_schedules(
    *, session: AsyncSession, user_id: int | None = None, enabled: bool | None = None
) -> list[Schedule]:
    stmt = select(Schedule).order_by(Schedule.created_at)
    if user_id is not None:
        stmt = stmt.where(Schedule.user_id == user_id)
    if enabled is not None:
        stmt = stmt.where(Schedule.enabled.is_(enabled))
    return list((await session.scalars(stmt)).all())


async def update(*, session: AsyncSession, schedule: Schedule, changes: dict[str, Any]) -> Schedule:
    merged = {key: getattr(schedule, key) for key in EDITABLE}
    merged.update({k: v for k, v in changes.items() if k in EDITABLE and v is not None})
    cleaned = await _validate(session, merged)
    for key, value in cleaned.items():
        setattr(schedule, key, value)
    await session.commit()
    await session.refresh(schedule)
    return schedule


async def remove(*, session: AsyncSession, schedule: Schedule) -> None:
    # Runs go explicitly too: SQLite only cascades with foreign keys on, which we don't rely on.
    await session.execute(delete(ScheduleRun).where(ScheduleRun.schedule_id == schedule.id))
    await session.delete(schedule)
    await session.commit()


async def runs(*, session: AsyncSession, schedule_id: str, limit: int = 50) -> list[ScheduleRun]:
    stmt = (
        select(ScheduleRun)
        .where(ScheduleRun.schedule_id == schedule_id)
        .order_by(ScheduleRun.fire_time.desc(), ScheduleRun.id.desc())
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())
