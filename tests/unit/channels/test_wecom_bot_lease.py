"""Two replicas, one WeCom AI bot: only the lease holder connects; the other takes over on a crash."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from avatarbot.integrations.wecom_bot.lease import Lease
from avatarbot.integrations.wecom_bot.link import Link
from avatarbot.storage.base import Base
from avatarbot.storage.db import Database
from avatarbot.storage.models import ChannelLease
from tests.helpers.fake_wecom_bot import BOT_ID, SECRET, FakeWecomBot

TTL = 0.6


@pytest.fixture
def fake() -> Iterator[FakeWecomBot]:
    server = FakeWecomBot().start()
    yield server
    server.stop()


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'lease.db'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield database
    await database.dispose()


async def _nothing(frame: dict[str, Any]) -> None:
    return None


def _link(fake: FakeWecomBot, db: Database, holder: str) -> Link:
    return Link(
        url=fake.url,
        bot_id=BOT_ID,
        secret=SECRET,
        on_callback=_nothing,
        lease=Lease(db, f"wecom_bot:{BOT_ID}", holder, TTL),
        ping_interval_s=0.1,
        backoff_max_s=0.1,
        backoff_base_s=0.05,
    )


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - polling another thread's state
            await asyncio.sleep(0.02)


async def test_one_connection_per_bot_and_takeover_after_a_crash(
    fake: FakeWecomBot, db: Database
) -> None:
    first, second = _link(fake, db, "replica-a"), _link(fake, db, "replica-b")
    first.start()
    await _until(lambda: first.state == "connected")
    second.start()
    await _until(lambda: second.state == "waiting_lease")
    # Several lease periods: the waiting replica never subscribes, nobody is kicked.
    with contextlib.suppress(TimeoutError):
        await _until(lambda: fake.subscribes > 1, timeout=4 * TTL)
    assert fake.subscribes == 1 and first.state == "connected" and first.reconnects == 0

    assert first._task is not None
    first._task.cancel()  # a crash: the socket dies, the lease row stays until it expires
    with contextlib.suppress(asyncio.CancelledError):
        await first._task
    await _until(lambda: second.state == "connected")
    assert fake.subscribes == 2
    async with db.session() as session:
        holder = await session.scalar(select(ChannelLease.holder))
    assert holder == "replica-b"
    await second.stop()
    async with db.session() as session:
        assert await session.scalar(select(ChannelLease.holder)) is None  # released on stop
