"""The webhook intake's group commit and the intake-first write gate, on a real SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from sqlalchemy import event, select, update

from avatarbot.bot.intake_batch import IntakeBatcher
from avatarbot.bot.types import Channel, IncomingMessage
from avatarbot.bot.write_gate import WriteGate
from avatarbot.storage.base import Base
from avatarbot.storage.db import Database
from avatarbot.storage.models import ProcessedEvent


def _msg(index: int) -> IncomingMessage:
    return IncomingMessage(
        channel=Channel.FEISHU,
        chat_id="oc_1",
        user_id="ou_1",
        text=f"hi {index}",
        event_id=f"ev{index}",
    )


async def _setup(url: str) -> tuple[Database, IntakeBatcher, list[int]]:
    db = Database(url)
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    commits: list[int] = []
    event.listen(db.engine.sync_engine, "commit", lambda _conn: commits.append(1))
    gate = WriteGate()

    def session() -> Any:
        @contextlib.asynccontextmanager
        async def gated() -> Any:
            async with gate.urgent(), db.session() as s:
                yield s

        return gated()

    return db, IntakeBatcher(session, gate.urgent, db.engine), commits


def test_a_burst_is_stored_in_few_commits_and_every_row_is_there(any_database_url: str) -> None:
    async def run() -> None:
        db, batcher, commits = await _setup(any_database_url)
        outcomes = await asyncio.gather(*(batcher.receive(_msg(i)) for i in range(30)))
        assert outcomes == ["new"] * 30
        assert len(commits) <= 2  # the first alone, the 29 that queued behind it together
        async with db.session() as s:
            rows = (await s.scalars(select(ProcessedEvent))).all()
            assert sorted(r.event_id for r in rows) == sorted(f"ev{i}" for i in range(30))
            assert all(r.status == "received" and r.payload for r in rows)
            # Redeliveries in a burst: an unfinished one resumes, a finished one is a duplicate.
            await s.execute(
                update(ProcessedEvent).where(ProcessedEvent.event_id == "ev1").values(status="done")
            )
            await s.commit()
        again = await asyncio.gather(*(batcher.receive(_msg(i)) for i in (0, 1, 0, 99)))
        assert again == ["unfinished", "duplicate", "unfinished", "new"]
        await db.dispose()

    asyncio.run(run())


def test_the_intake_goes_ahead_of_queued_background_writes() -> None:
    async def run() -> list[str]:
        gate, order = WriteGate(), []
        release = asyncio.Event()

        async def background(name: str, hold: asyncio.Event | None = None) -> None:
            async with gate:
                order.append(name)
                if hold is not None:
                    await hold.wait()

        async def intake() -> None:
            async with gate.urgent():
                order.append("intake")

        first = asyncio.create_task(background("claim", release))
        await asyncio.sleep(0)  # the claim holds the gate
        queued = [asyncio.create_task(background(f"finish{i}")) for i in range(3)]
        await asyncio.sleep(0)
        urgent = asyncio.create_task(intake())
        await asyncio.sleep(0)
        release.set()
        await asyncio.gather(first, urgent, *queued)
        return order

    order = asyncio.run(run())
    assert order[:2] == ["claim", "intake"]  # only the write in progress was waited for
    assert sorted(order[2:]) == ["finish0", "finish1", "finish2"]
