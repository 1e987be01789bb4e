"""Crash safety in one process: durable intake, the outbox, and leases on events and deliveries.

A "crash" here is a step that never runs (the kick after the ack, a dispatcher that
stops); the restart is a fresh BotService / Dispatcher on the same database. The chaos
suite (tests/e2e/test_chaos.py) does the same with real SIGKILLs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from avatarbot.bot import outbox
from avatarbot.bot.dispatch import Dispatcher
from avatarbot.bot.service import BotService
from avatarbot.bot.types import Reply, ReplyKind
from avatarbot.config import Settings
from avatarbot.integrations.http import RetryPolicy
from avatarbot.jobs import handlers
from avatarbot.jobs import service as task_service
from avatarbot.jobs.lease import HOST
from avatarbot.services import Services
from avatarbot.storage.base import utcnow
from avatarbot.storage.models import Delivery, ProcessedEvent, Task, TaskStatus, TaskType
from tests.helpers.chat_media import fake_video_handler
from tests.helpers.fake_feishu import FakeFeishu, message_event, signed_body

TOKEN, KEY = "tok", "enc-key"
CHAT = "oc_durable"


@pytest.fixture
def fake() -> Iterator[FakeFeishu]:
    platform = FakeFeishu().start()
    yield platform
    platform.stop()


@pytest.fixture
def settings(tmp_path: Path, fake: FakeFeishu) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'avatarbot.db'}",
        auth={"secret_key": "test-secret-key-0123456789abcdef0123456789"},
        bot={"delivery_backoff_s": 0.05, "delivery_max_attempts": 3},
        feishu={
            "app_id": fake.app_id,
            "app_secret": fake.app_secret,
            "verification_token": TOKEN,
            "encrypt_key": KEY,
            "base_url": fake.base_url,
        },
    )


@pytest.fixture
def services(app: Any, monkeypatch: pytest.MonkeyPatch) -> Services:
    monkeypatch.setattr(RetryPolicy, "delay", lambda self, attempt: 0.01)
    return app.state.services


async def _post(client: httpx.AsyncClient, event_id: str, text: str) -> httpx.Response:
    raw, headers = signed_body(
        message_event(event_id=event_id, chat_id=CHAT, text=text, token=TOKEN), KEY
    )
    return await client.post("/webhooks/feishu", content=raw, headers=headers)


async def _inbox(services: Services) -> list[ProcessedEvent]:
    async with services.db.session() as session:
        return list((await session.scalars(select(ProcessedEvent))).all())


def _texts(fake: FakeFeishu) -> list[str]:
    return [m["content"]["text"] for m in fake.sent("text") if m["receive_id"] == CHAT]


async def test_the_message_is_stored_before_the_ack_and_recovered_after_a_crash(
    services: Services, client: httpx.AsyncClient, fake: FakeFeishu, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot: BotService = services.bot
    monkeypatch.setattr(bot, "kick", lambda *args: None)  # dies after the 200
    assert (await _post(client, "ev-crash-1", "/help")).status_code == 200
    [row] = await _inbox(services)
    assert row.status == "received" and row.payload is not None
    assert row.payload["text"] == "/help" and row.payload["chat_id"] == CHAT
    assert fake.sent("text") == []
    monkeypatch.undo()
    restarted = BotService(services, senders=bot.senders)  # a new process, same database
    assert await restarted.recover_inbox() == 1
    await _wait_for(lambda: _texts(fake))
    await restarted.stop()
    assert len(_texts(fake)) == 1 and "/video" in _texts(fake)[0]
    [row] = await _inbox(services)
    assert row.status == "done"


async def test_a_redelivery_of_an_unfinished_event_resumes_it(
    services: Services, client: httpx.AsyncClient, fake: FakeFeishu, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot: BotService = services.bot
    with monkeypatch.context() as patch:
        patch.setattr(bot, "kick", lambda *args: None)
        assert (await _post(client, "ev-redeliver", "/help")).status_code == 200
    # Feishu retries (no success seen): the row is unfinished, so it is handled, not dropped.
    assert await bot.accept(bot_message := _message("ev-redeliver")) is True
    assert await bot.process_event("feishu", bot_message.event_id) is not None
    assert len(_texts(fake)) == 1
    # Once finished, a further retry is a duplicate.
    assert await bot.accept(_message("ev-redeliver")) is False
    assert bot.duplicates == 1


async def _wait_for(predicate: Any, timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - polling a recorder with a deadline
            await asyncio.sleep(0.02)


def _message(event_id: str) -> Any:
    from avatarbot.bot.types import Channel, IncomingMessage

    return IncomingMessage(Channel.FEISHU, CHAT, "ou_user_1", "/help", event_id=event_id)


async def test_an_event_held_by_a_live_process_is_left_alone(services: Services) -> None:
    bot: BotService = services.bot
    assert await bot.accept(_message("ev-leased"))
    async with services.db.session() as session:
        await session.execute(
            update(ProcessedEvent).values(
                lease_owner="other-host:77:x", lease_until=utcnow() + timedelta(seconds=60)
            )
        )
        await session.commit()
    assert await bot.process_event("feishu", "ev-leased") is None
    assert await bot.recover_inbox() == 0
    async with services.db.session() as session:  # the other process stops renewing
        await session.execute(
            update(ProcessedEvent).values(lease_until=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    assert await bot.process_event("feishu", "ev-leased") is not None


async def test_failed_sends_are_retried_with_backoff_then_given_up(
    services: Services, fake: FakeFeishu
) -> None:
    fake.failures.add("/open-apis/im/v1/messages", times=RetryPolicy().attempts + 1, status=503)
    bot: BotService = services.bot
    await bot.enqueue("feishu", {"chat_id": CHAT}, [Reply.of_text("hello")], group_key="g-retry")
    rows = await bot.dispatcher.wait_group("g-retry", timeout_s=60)
    assert rows[0].status == outbox.SENT and rows[0].attempts == 2  # one failed round, then ok
    assert _texts(fake) == ["hello"]

    fake.failures.add("/open-apis/im/v1/messages", times=1000, status=503)
    await bot.enqueue("feishu", {"chat_id": CHAT}, [Reply.of_text("never")], group_key="g-down")
    rows = await bot.dispatcher.wait_group("g-down", timeout_s=60)
    assert rows[0].status == outbox.FAILED and rows[0].attempts == 3
    assert "503" in (rows[0].last_error or "")


async def test_a_completed_but_undelivered_task_is_sent_after_a_restart(
    services: Services, fake: FakeFeishu, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The render finished, then the process died before the upload: the next one sends it."""
    monkeypatch.setitem(handlers._HANDLERS, TaskType.VIDEO_GENERATION, fake_video_handler)
    bot: BotService = services.bot
    await bot.dispatcher.stop()  # the old process stops delivering
    async with services.db.session() as session:
        task = await task_service.create(
            session=session, task_type=TaskType.VIDEO_GENERATION, params={"text": "hi"}
        )
    await bot.enqueue(
        "feishu",
        {"chat_id": CHAT},
        [Reply(ReplyKind.VIDEO, text="Got it", task_id=task.id)],
        group_key="g-video",
    )
    await services.executor.submit(task.id)
    assert await services.executor.wait(task.id, timeout=60) == TaskStatus.COMPLETED
    assert fake.sent("media") == []
    fresh = Dispatcher(services, bot._sender_for_row, owner="new-process")
    rows = await fresh.wait_group("g-video", timeout_s=60)
    assert [r.status for r in rows] == [outbox.SENT] * 3  # ack, progress card, video
    assert len(fake.sent("media")) == 1
    card = fake.sent("interactive")[0]["message_id"]
    assert any(p["message_id"] == card for p in fake.patches)  # the card was closed


async def test_a_failed_task_tells_the_user_and_closes_the_card(
    services: Services, fake: FakeFeishu
) -> None:
    bot: BotService = services.bot
    async with services.db.session() as session:
        task = await task_service.create(
            session=session, task_type=TaskType.VIDEO_GENERATION, params={"text": "hi"}
        )
        await task_service.finish(
            session=session, task_id=task.id, status=TaskStatus.FAILED, error="no face found"
        )
    await bot.enqueue(
        "feishu", {"chat_id": CHAT}, [Reply(ReplyKind.VIDEO, task_id=task.id)], group_key="g-f"
    )
    rows = await bot.dispatcher.wait_group("g-f", timeout_s=30)
    assert all(r.status == outbox.SENT for r in rows)
    assert any("could not make the video: no face found" in t for t in _texts(fake))
    card = fake.sent("interactive")[0]["message_id"]
    closing = [p for p in fake.patches if p["message_id"] == card]
    assert closing and "Failed" in str(closing[-1])


async def test_a_delivery_held_by_a_live_process_is_not_sent_twice(
    services: Services, fake: FakeFeishu
) -> None:
    bot: BotService = services.bot
    await bot.dispatcher.stop()
    async with services.db.session() as session:
        [row] = outbox.add_rows(
            session,
            group_key="g-lease",
            platform="feishu",
            target={"chat_id": CHAT},
            rows=[{"kind": "text", "text": "only once"}],
        )
        await session.commit()
        assert await outbox.claim(session, row.id, owner="other-host:1:x", lease_s=60, dead=[])
    second = Dispatcher(services, bot._sender_for_row, owner="second")
    assert await second.run_once() == []  # held by a live process
    async with services.db.session() as session:
        await session.execute(update(Delivery).values(lease_until=utcnow() - timedelta(seconds=1)))
        await session.commit()
    rows = await second.wait_group("g-lease", timeout_s=30)
    assert rows[0].status == outbox.SENT and _texts(fake) == ["only once"]


async def test_a_task_killed_too_often_is_failed_and_the_user_told(
    services: Services, fake: FakeFeishu
) -> None:
    """The issue's case: killed three times -> failed, the user hears it, the card closes."""
    dead = await asyncio.create_subprocess_exec("true")  # a pid of this host, now gone
    await dead.wait()
    async with services.db.session() as session:
        task = await task_service.create(
            session=session, task_type=TaskType.VIDEO_GENERATION, params={"text": "hi"}
        )
        await task_service.claim(session=session, task_id=task.id, worker=f"{HOST}:{dead.pid}:x")
        await session.execute(update(Task).values(attempts=services.settings.jobs.max_attempts))
        await session.commit()
    bot: BotService = services.bot
    await bot.enqueue(
        "feishu", {"chat_id": CHAT}, [Reply(ReplyKind.VIDEO, task_id=task.id)], group_key="g-k"
    )
    await services.executor.recover()  # what the next start does
    rows = await bot.dispatcher.wait_group("g-k", timeout_s=30)
    assert all(r.status == outbox.SENT for r in rows)
    assert any("could not make the video" in t and "giving up" in t for t in _texts(fake))
    card = fake.sent("interactive")[0]["message_id"]
    assert any(p["message_id"] == card and "Failed" in str(p) for p in fake.patches)
