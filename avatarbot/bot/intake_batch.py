"""Group commit for the inbox: events that arrive together are stored in one transaction.

Every webhook waits for its inbox row to be committed before it answers the platform. One
transaction per event means, under a burst, 50 commits in a row, each a few round trips to
the SQLite thread (and on a busy process each round trip waits for the GIL). Here the first
event is written at once, alone; the events that arrive while that commit runs are written
together in the next one. Each caller still returns only after its own row is committed,
so the 200 keeps its promise.

A row whose key exists already (a redelivery) is not inserted (ON CONFLICT DO NOTHING) and
goes through `inbox.receive`, which tells a finished duplicate from an event to resume.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from avatarbot.bot import inbox
from avatarbot.bot.types import IncomingMessage
from avatarbot.storage.base import utcnow
from avatarbot.storage.models import ProcessedEvent

logger = logging.getLogger(__name__)

MAX_BATCH = 100

Pending = tuple[IncomingMessage, "asyncio.Future[str]"]


class IntakeBatcher:
    def __init__(
        self, session: Callable[[], Any], turn: Callable[[], Any], engine: AsyncEngine
    ) -> None:
        self._session = session  # the intake's (urgent) session factory, for redeliveries
        self._turn = turn  # the intake's turn at the write gate
        self._engine = engine
        self._dialect = engine.dialect.name
        self._pending: list[Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    async def receive(self, msg: IncomingMessage) -> str:
        """Store the event: the outcome of `inbox.receive` ("new", "unfinished", ...)."""
        if self._dialect not in ("sqlite", "postgresql"):
            async with self._session() as session:
                return await inbox.receive(session, msg)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending.append((msg, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="inbox-intake")
        return await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                await self._store(batch)
            except BaseException as exc:  # each waiter answers 503 (or is cancelled)
                for _msg, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise

    async def _store(self, batch: list[Pending]) -> None:
        keys = [(msg.channel.value, inbox.event_key(msg)) for msg, _ in batch]
        now = utcnow()
        rows = [
            {
                "platform": platform,
                "event_id": key,
                "status": inbox.RECEIVED,
                "payload": inbox.to_payload(msg),
                "attempts": 0,
                "received_at": now,
            }
            for (platform, key), (msg, _) in zip(keys, batch, strict=True)
        ]
        dialect = postgresql if self._dialect == "postgresql" else sqlite
        table = ProcessedEvent.__table__
        stmt = (
            dialect.insert(table)
            .on_conflict_do_nothing(index_elements=["platform", "event_id"])
            .returning(table.c.platform, table.c.event_id)
        )
        # One statement, one commit, on a bare connection (no ORM session to set up);
        # RETURNING names the rows that were new. Their callers are answered as soon as
        # the commit returns: putting the connection back (the pool's reset) is not theirs
        # to wait for.
        redelivered: list[Pending] = []
        async with self._turn(), self._engine.connect() as conn:
            async with conn.begin():
                result = await conn.execute(stmt, rows)
                inserted = {(r.platform, r.event_id) for r in result.all()}
            fresh = set(inserted)
            for key, (msg, future) in zip(keys, batch, strict=True):
                if key in inserted:
                    inserted.discard(key)
                    if not future.done():  # (done: its caller went away; the row is stored)
                        future.set_result("new")
                elif key in fresh:  # the same event twice in one batch: the first caller has it
                    if not future.done():
                        future.set_result("in_progress")
                else:
                    redelivered.append((msg, future))
        for msg, future in redelivered:  # finished, being answered, or to resume
            try:
                async with self._session() as session:
                    outcome = await inbox.receive(session, msg)
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
                continue
            if not future.done():
                future.set_result(outcome)
