"""The inbox: a platform event is a ProcessedEvent row, with the parsed message, before the
platform hears "200" (or the long connection's ack frame).

A row is `received` until a process claims it with a lease and finishes it (`done`,
`ignored`, `rate_limited`, `failed`), together with the outbox rows of its replies. The
recovery pass (at start and periodically) claims every unfinished row whose lease is gone,
so a crash after the ack loses nothing; a redelivery of such an event resumes it.
"""

from __future__ import annotations

import uuid
from dataclasses import fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from avatarbot.bot.types import Attachment, Channel, IncomingMessage
from avatarbot.jobs.lease import dead_owners, free, lease_until, owner_is_dead
from avatarbot.storage.base import utcnow
from avatarbot.storage.models import ProcessedEvent

RECEIVED = "received"
FINAL = ("done", "ignored", "rate_limited", "failed")
MAX_ATTEMPTS = 5  # a message that crashed the process this often is poison: stop trying


def event_key(msg: IncomingMessage) -> str:
    if not msg.event_id:  # no platform id: still durable, just not deduplicated
        msg.event_id = f"local:{uuid.uuid4().hex}"
    return msg.event_id[:200]


def group_key(platform: str, event_id: str) -> str:
    return f"{platform}:{event_id}"


def to_payload(msg: IncomingMessage) -> dict[str, Any]:
    """Every field of the message as JSON (field by field, so a new field is never lost)."""
    data: dict[str, Any] = {f.name: getattr(msg, f.name) for f in fields(msg)}
    data["channel"] = msg.channel.value
    data["attachments"] = [
        {f.name: getattr(a, f.name) for f in fields(a)} | {"path": str(a.path) if a.path else None}
        for a in msg.attachments
    ]
    data["raw"] = _jsonable(msg.raw)
    return data


def from_payload(data: dict[str, Any]) -> IncomingMessage:
    known = {f.name for f in fields(IncomingMessage)} - {"channel", "attachments", "raw"}
    attachment_fields = {f.name for f in fields(Attachment)}
    attachments = []
    for item in data.get("attachments") or []:
        values = {k: v for k, v in item.items() if k in attachment_fields}
        values["path"] = Path(item["path"]) if item.get("path") else None
        attachments.append(Attachment(**values))
    return IncomingMessage(
        channel=Channel(data["channel"]),
        attachments=attachments,
        raw=dict(data.get("raw") or {}),
        **{k: v for k, v in data.items() if k in known},
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


async def receive(session: AsyncSession, msg: IncomingMessage) -> str:
    """Store the event: "new", "unfinished" (a redelivery to resume), "in_progress" (a live
    process is answering it) or "duplicate" (finished)."""
    key = event_key(msg)
    session.add(
        ProcessedEvent(
            platform=msg.channel.value,
            event_id=key,
            status=RECEIVED,
            payload=to_payload(msg),
            attempts=0,
        )
    )
    try:
        await session.commit()
        return "new"
    except IntegrityError:
        await session.rollback()
    row = await get(session, msg.channel.value, key)
    if row is None or row.status in FINAL:
        return "duplicate"
    leased = row.lease_until is not None and row.lease_until >= utcnow()
    if leased and not owner_is_dead(row.lease_owner):
        return "in_progress"  # a live process is answering it right now
    if row.payload is None:  # a row from before durable intake: keep what we now know
        row.payload = to_payload(msg)
        await session.commit()
    return "unfinished"


async def get(session: AsyncSession, platform: str, event_id: str) -> ProcessedEvent | None:
    stmt = select(ProcessedEvent).where(
        ProcessedEvent.platform == platform, ProcessedEvent.event_id == event_id[:200]
    )
    return (await session.scalars(stmt)).first()


async def claim(
    session: AsyncSession, platform: str, event_id: str, *, owner: str, lease_s: float
) -> ProcessedEvent | None:
    """Take the event for processing; None when finished or held by a live process."""
    # Fast path, one statement: a fresh event (no lease yet, or an expired one).
    now = utcnow()
    fast = await session.execute(
        update(ProcessedEvent)
        .where(
            ProcessedEvent.platform == platform,
            ProcessedEvent.event_id == event_id[:200],
            ProcessedEvent.status == RECEIVED,
            free(ProcessedEvent.lease_until, ProcessedEvent.lease_owner, now, []),
        )
        .values(
            lease_owner=owner,
            lease_until=lease_until(lease_s),
            attempts=ProcessedEvent.attempts + 1,
        )
        .returning(ProcessedEvent.id, ProcessedEvent.payload, ProcessedEvent.attempts)
    )
    taken = fast.first()
    await session.commit()
    if taken is not None:
        return ProcessedEvent(
            id=taken.id,
            platform=platform,
            event_id=event_id[:200],
            payload=taken.payload,
            attempts=taken.attempts,
            status=RECEIVED,
        )
    # Slow path: held by someone; take it only if that owner is a dead local process.
    row = await get(session, platform, event_id)
    if row is None or row.status in FINAL:
        return None
    now = utcnow()
    result = await session.execute(
        update(ProcessedEvent)
        .where(
            ProcessedEvent.id == row.id,
            ProcessedEvent.status == RECEIVED,
            free(
                ProcessedEvent.lease_until,
                ProcessedEvent.lease_owner,
                now,
                dead_owners([row.lease_owner]),
            ),
        )
        .values(
            lease_owner=owner,
            lease_until=lease_until(lease_s),
            attempts=ProcessedEvent.attempts + 1,
        )
    )
    await session.commit()
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    await session.refresh(row)
    return row


async def renew(session: AsyncSession, row_id: int, *, owner: str, lease_s: float) -> bool:
    result = await session.execute(
        update(ProcessedEvent)
        .where(ProcessedEvent.id == row_id, ProcessedEvent.lease_owner == owner)
        .values(lease_until=lease_until(lease_s))
    )
    await session.commit()
    return result.rowcount == 1  # type: ignore[attr-defined]


def finish(session: AsyncSession, row_id: int, status: str, error: str | None = None) -> Any:
    """The UPDATE that closes an event; run it in the transaction that adds its replies."""
    return session.execute(
        update(ProcessedEvent)
        .where(ProcessedEvent.id == row_id)
        .values(status=status[:16], error=error, lease_owner=None, lease_until=None)
    )


async def unfinished(session: AsyncSession, *, limit: int = 200) -> list[ProcessedEvent]:
    """Events received but not finished whose lease is gone (or was never taken)."""
    now = utcnow()
    stmt = (
        select(ProcessedEvent)
        .where(ProcessedEvent.status == RECEIVED, ProcessedEvent.payload.is_not(None))
        .order_by(ProcessedEvent.id)
        .limit(limit)
    )
    rows = list((await session.scalars(stmt)).all())
    dead = set(dead_owners(r.lease_owner for r in rows))
    return [
        r for r in rows if r.lease_until is None or r.lease_until < now or r.lease_owner in dead
    ]


def older_than(seconds: float) -> Any:
    return utcnow() - timedelta(seconds=seconds)
