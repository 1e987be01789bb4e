"""WeCom has no idempotency key, only a content-based duplicate check: how the outbox uses it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import update

from avatarbot.bot import outbox
from avatarbot.bot.channel import ChatTarget
from avatarbot.config import WecomSettings
from avatarbot.integrations.http import RetryPolicy
from avatarbot.integrations.wecom.channel import WecomChannel
from avatarbot.integrations.wecom.client import DUPLICATE_CHECK_INTERVAL_S
from avatarbot.services import Services
from avatarbot.storage.models import Delivery
from tests.helpers.fake_wecom import CORP_ID, FakeWecom

FAST = RetryPolicy(attempts=2, base_delay_s=0.01, max_delay_s=0.02)
USER = ChatTarget(chat_id="lisi", user_id="lisi")


@pytest.fixture
def fake() -> Iterator[FakeWecom]:
    server = FakeWecom().start()
    yield server
    server.stop()


@pytest.fixture
def channel(fake: FakeWecom) -> WecomChannel:
    settings = WecomSettings(
        corp_id=CORP_ID, agent_id="1000002", secret=fake.secret, base_url=fake.base_url
    )
    return WecomChannel(settings, retry=FAST)


async def test_a_resent_upload_is_dropped_but_a_repeated_first_text_is_not(
    fake: FakeWecom, channel: WecomChannel
) -> None:
    handles = {"media_id": "media-1", "title": "avatarbot", "description": "1.0 s"}
    await channel.send_uploaded(USER, "video", handles)
    await channel.send_uploaded(USER, "video", handles)  # a retry after a lost answer
    videos = fake.sent("video")
    assert len(videos) == 1 and fake.duplicates_dropped == 1
    assert videos[0]["enable_duplicate_check"] == 1
    assert videos[0]["duplicate_check_interval"] == DUPLICATE_CHECK_INTERVAL_S
    # Two /video requests get the same acknowledgement: both must arrive.
    await channel.send_text(USER, "Got it, making your video.")
    await channel.send_text(USER, "Got it, making your video.")
    assert len(fake.sent("text")) == 2
    await channel.stop()


async def test_the_outbox_turns_the_check_on_when_a_text_is_retried(
    app: Any, fake: FakeWecom, channel: WecomChannel
) -> None:
    services: Services = app.state.services
    bot = services.bot
    bot.register_sender("wecom", channel)
    await bot.dispatcher.stop()  # this test drives the rows itself
    await channel.send_text(USER, "your report")  # an earlier attempt that did land
    async with services.db.session() as session:
        outbox.add_rows(
            session,
            group_key="g-wecom",
            platform="wecom",
            target=USER,
            rows=[{"kind": "text", "text": "your report"}],
        )
        await session.commit()
        # ... but its process died before marking the row sent: one attempt on record.
        await session.execute(update(Delivery).values(attempts=1))
        await session.commit()
    rows = await bot.dispatcher.wait_group("g-wecom", timeout_s=30)
    assert rows[0].status == outbox.SENT and rows[0].attempts == 2
    texts = fake.sent("text")
    assert len(texts) == 1 and fake.duplicates_dropped == 1
    await channel.stop()
