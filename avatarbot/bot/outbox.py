"""The outbox: every reply a chat is owed is a Delivery row before anything is sent.

Rows are added in the same transaction that finishes the incoming event (or schedule run),
so a crash either leaves the event unfinished (the inbox recovery answers it again) or
leaves rows that the dispatcher (bot/dispatch.py) sends after the restart. A reply whose
media a task is still making becomes: the acknowledgement, a progress card (platforms that
edit messages), and a media row that waits for the task and then sends its file, or tells
the user that it failed.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from avatarbot.bot.channel import ChatTarget
from avatarbot.bot.types import Reply, ReplyKind
from avatarbot.bot.write_gate import WriteGate
from avatarbot.jobs.lease import free, lease_until
from avatarbot.services import Services
from avatarbot.storage.base import utcnow
from avatarbot.storage.models import Delivery

PENDING, SENT, FAILED, EXPIRED = "pending", "sent", "failed", "expired"
PROGRESS = "progress"
MEDIA_KINDS = ("video", "audio", "image", "file")
MAX_AGE_S = 24 * 3600  # a reply older than this is no use to anyone; media: after the task


def target_dict(target: ChatTarget | dict[str, Any]) -> dict[str, Any]:
    if isinstance(target, dict):
        return dict(target)
    return {
        "chat_id": target.chat_id,
        "chat_type": target.chat_type,
        "user_id": target.user_id,
        "reply_to": target.reply_to,
        "thread_id": target.thread_id,  # a Feishu topic thread: replies stay in it
    }


def chat_target(data: dict[str, Any]) -> ChatTarget:
    return ChatTarget(
        chat_id=str(data.get("chat_id") or ""),
        chat_type=str(data.get("chat_type") or ("group" if data.get("chat_id") else "p2p")),
        user_id=str(data.get("user_id") or ""),
        reply_to=str(data.get("reply_to") or ""),
        thread_id=str(data.get("thread_id") or ""),
    )


def idempotency_key(row: Delivery, part: str = "") -> str:
    """Stable per row (and part): Feishu's `uuid` (≤ 50 chars) makes a re-send a no-op."""
    digest = hashlib.sha256(f"{row.group_key}\x00{row.seq}\x00{part}".encode()).hexdigest()
    return digest[:32]


def plan(replies: list[Reply], *, edits_messages: bool) -> list[dict[str, Any]]:
    """The rows for a list of replies, in the order the user should see them."""
    rows: list[dict[str, Any]] = []
    for reply in replies:
        if reply.pending:
            what = "video" if reply.kind == ReplyKind.VIDEO else "audio"
            if reply.text:
                rows.append({"kind": "text", "text": reply.text})
            if edits_messages:
                rows.append(
                    {"kind": PROGRESS, "text": f"Making your {what}…", "task_id": reply.task_id}
                )
            rows.append({"kind": reply.kind.value, "task_id": reply.task_id})
        elif reply.kind in (ReplyKind.TEXT, ReplyKind.MARKDOWN):
            rows.append({"kind": reply.kind.value, "text": reply.text})
        elif reply.path is not None:
            rows.append({"kind": reply.kind.value, "path": str(reply.path), "text": reply.text})
        elif reply.text:
            rows.append({"kind": "text", "text": reply.text})
    return rows


def add_rows(
    session: AsyncSession,
    *,
    group_key: str,
    platform: str,
    target: ChatTarget | dict[str, Any],
    rows: list[dict[str, Any]],
    first_seq: int = 0,
    max_age_s: float = MAX_AGE_S,
) -> list[Delivery]:
    """Add rows to the session (the caller commits them with the rest of its work)."""
    now = utcnow()
    added = []
    for index, spec in enumerate(rows):
        row = Delivery(
            group_key=group_key[:250],
            seq=first_seq + index,
            platform=platform,
            target=target_dict(target),
            kind=spec["kind"],
            text=spec.get("text") or "",
            path=spec.get("path"),
            task_id=spec.get("task_id"),
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            expires_at=now + timedelta(seconds=max_age_s),
        )
        session.add(row)
        added.append(row)
    return added


def heads(rows: list[Delivery], *, dead: list[str]) -> list[Delivery]:
    """Of pending rows (ordered by group and seq), the first of each group when it is due
    and nobody alive holds it: later rows of a group wait for the earlier ones."""
    now = utcnow()
    first: dict[str, Delivery] = {}
    for row in rows:
        first.setdefault(row.group_key, row)
    ready = []
    for row in first.values():
        leased = row.lease_until is not None and row.lease_until >= now
        if row.next_attempt_at <= now and (not leased or row.lease_owner in dead):
            ready.append(row)
    return sorted(ready, key=lambda r: r.id)


async def claim(
    session: AsyncSession, row_id: int, *, owner: str, lease_s: float, dead: list[str]
) -> bool:
    now = utcnow()
    result = await session.execute(
        update(Delivery)
        .where(
            Delivery.id == row_id,
            Delivery.status == PENDING,
            free(Delivery.lease_until, Delivery.lease_owner, now, dead),
        )
        .values(lease_owner=owner, lease_until=lease_until(lease_s), attempts=Delivery.attempts + 1)
    )
    await session.commit()
    return result.rowcount == 1  # type: ignore[attr-defined]


async def update_row(session: AsyncSession, row_id: int, owner: str, **values: Any) -> bool:
    """Change a row we hold; False when the lease was lost to another process."""
    result = await session.execute(
        update(Delivery)
        .where(Delivery.id == row_id, Delivery.lease_owner == owner)
        .values(**values)
    )
    await session.commit()
    return result.rowcount == 1  # type: ignore[attr-defined]


async def group_rows(session: AsyncSession, group_key: str) -> list[Delivery]:
    stmt = select(Delivery).where(Delivery.group_key == group_key).order_by(Delivery.seq)
    return list((await session.scalars(stmt)).all())


async def progress_handle(session: AsyncSession, row: Delivery) -> str | None:
    """The progress card sent for the same task in the same group, if any."""
    stmt = select(Delivery).where(
        Delivery.group_key == row.group_key,
        Delivery.kind == PROGRESS,
        Delivery.task_id == row.task_id,
        Delivery.status == SENT,
    )
    card = (await session.scalars(stmt)).first()
    handle = (card.state or {}).get("handle") if card is not None else None
    return str(handle) if handle else None


def db_gate(services: Services) -> WriteGate | None:
    """SQLite: one writer at a time in this process, intake first (bot.write_gate).

    PostgreSQL needs none.
    """
    return WriteGate() if services.db.dialect == "sqlite" else None


def gate_turn(gate: WriteGate | None, *, urgent: bool = False) -> Any:
    """A turn at the write gate (none without a gate); `urgent` for the intake (somebody
    waits on it)."""
    if gate is None:
        return contextlib.nullcontext()
    return gate.urgent() if urgent else gate


@contextlib.asynccontextmanager
async def gated_session(
    services: Services, gate: WriteGate | None, *, urgent: bool = False
) -> AsyncIterator[Any]:
    """A session that holds its turn at the write gate (`gate_turn`)."""
    async with gate_turn(gate, urgent=urgent), services.db.session() as session:
        yield session
