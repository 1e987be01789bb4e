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


async def test_a_replica_without_the_link_relays_pushes_through_the_holder(
    fake: FakeWecomBot, db: Database, tmp_path: Path
) -> None:
    from types import SimpleNamespace

    from avatarbot.bot.channel import ChatTarget
    from avatarbot.config import WecomBotSettings
    from avatarbot.errors import ExternalServiceError
    from avatarbot.integrations.wecom_bot.channel import WecomBotChannel
    from tests.helpers.chat_media import make_test_video

    settings = WecomBotSettings(
        bot_id=BOT_ID, secret=SECRET, ws_url=fake.url, ping_interval_s=0.2, lease_ttl_s=TTL
    )
    services = SimpleNamespace(db=db)
    holder, other = (WecomBotChannel(settings, services=services) for _ in range(2))
    await holder.start()
    await _until(lambda: holder.link is not None and holder.link.state == "connected")
    await other.start()
    await _until(lambda: other.link is not None and other.link.state == "waiting_lease")
    try:
        await asyncio.to_thread(fake.user_says, "u1", "hi")  # u1 wrote to the bot first

        await other.send_text(ChatTarget("u1", "p2p"), "scheduled hello")
        video = await asyncio.to_thread(make_test_video, tmp_path / "r.mp4", 0.5)
        await other.send_video(ChatTarget("u1", "p2p"), video, cover=None, duration_s=0.5)
        with pytest.raises(ExternalServiceError, match="written to the bot first"):
            await other.send_text(ChatTarget("stranger", "p2p"), "hello?")
    finally:
        await other.stop()
        await holder.stop()
    pushes = [m for m in fake.messages if m["push"]]
    assert [m["body"]["msgtype"] for m in pushes] == ["markdown", "video"]
    assert pushes[0]["body"]["markdown"]["content"] == "scheduled hello"
    assert fake.media[pushes[1]["body"]["video"]["media_id"]]["data"] == video.read_bytes()
    assert fake.subscribes == 1 and holder.relay.relayed == 3


async def test_a_refused_subscribe_backs_off_and_never_shows_the_secret(fake: FakeWecomBot) -> None:
    link = Link(
        url=fake.url,
        bot_id=BOT_ID,
        secret="wrong-secret-value",
        on_callback=_nothing,
        ping_interval_s=0.1,
        backoff_max_s=0.2,
        backoff_base_s=0.05,
    )
    link.start()
    try:
        await _until(lambda: link.reconnects >= 3)
        status = link.status()
        assert status["state"] != "connected" and "subscribe refused" in status["last_error"]
        assert "wrong-secret-value" not in str(status)
        assert fake.subscribes == 0
    finally:
        await link.stop()
