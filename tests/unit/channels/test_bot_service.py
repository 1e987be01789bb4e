"""BotService: dedup, per-chat order, mentions, rate limit, commands, agents hook, media delivery."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from avatarbot.auth.ratelimit import RateLimiter
from avatarbot.bot.channel import ChannelSender, ChatTarget
from avatarbot.bot.service import BotService
from avatarbot.bot.types import Channel, IncomingMessage, Reply, ReplyKind
from avatarbot.config import Settings
from avatarbot.errors import InvalidInput
from avatarbot.jobs import handlers
from avatarbot.services import Services
from avatarbot.storage.models import Agent, TaskType
from tests.helpers.chat_media import fake_video_handler, probe


class RecordingSender:
    """A ChannelSender that records what it was asked to send."""

    name = "feishu"
    max_video_bytes: int | None = 30 * 1024 * 1024

    def __init__(self, edits: bool = False) -> None:
        self.edits_messages = edits
        self.sent: list[tuple[str, str, Any]] = []  # (kind, chat_id, payload)
        self.gates: dict[str, asyncio.Event] = {}  # text -> wait before "sending" it

    async def send_text(self, target: ChatTarget, text: str, *, key: str = "") -> None:
        for marker, gate in self.gates.items():
            if marker in text:
                await gate.wait()
        self.sent.append(("text", target.chat_id, text))

    async def send_markdown(self, target: ChatTarget, text: str, *, key: str = "") -> None:
        self.sent.append(("markdown", target.chat_id, text))

    async def send_video(
        self,
        target: ChatTarget,
        path: Path,
        *,
        cover: Path | None,
        duration_s: float,
        key: str = "",
    ) -> None:
        self.sent.append(
            (
                "video",
                target.chat_id,
                {"path": path, "cover": cover, "duration": duration_s, "key": key},
            )
        )

    async def send_audio(
        self, target: ChatTarget, path: Path, *, duration_s: float, key: str = ""
    ) -> None:
        self.sent.append(("audio", target.chat_id, path))

    async def send_image(self, target: ChatTarget, path: Path, *, key: str = "") -> None:
        self.sent.append(("image", target.chat_id, path))

    async def start_progress(self, target: ChatTarget, text: str, *, key: str = "") -> str | None:
        self.sent.append(("progress", target.chat_id, text))
        return "card-1" if self.edits_messages else None

    async def update_progress(self, handle: str, text: str, percent: float) -> None:
        self.sent.append(("update", handle, (text, percent)))

    def texts(self, chat_id: str | None = None) -> list[str]:
        return [p for k, c, p in self.sent if k == "text" and (chat_id is None or c == chat_id)]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'avatarbot.db'}",
        auth={"secret_key": "test-secret-key-0123456789abcdef0123456789"},
        bot={"user_messages_per_minute": 100},
    )


@pytest.fixture
def services(app: Any) -> Services:
    return app.state.services


@pytest.fixture
def sender(services: Services) -> RecordingSender:
    recorder = RecordingSender()
    services.bot.register_sender("feishu", recorder)
    return recorder


def msg(
    text: str, event_id: str, *, chat: str = "oc_1", user: str = "ou_1", **kw: Any
) -> IncomingMessage:
    return IncomingMessage(
        channel=Channel.FEISHU, chat_id=chat, user_id=user, text=text, event_id=event_id, **kw
    )


async def test_sender_satisfies_the_protocol(sender: RecordingSender) -> None:
    assert isinstance(sender, ChannelSender)


async def test_commands(services: Services, sender: RecordingSender) -> None:
    bot: BotService = services.bot
    await bot.handle_incoming(msg("/help", "e1"))
    assert "/video" in sender.texts()[-1] and "/agent" in sender.texts()[-1]
    await bot.handle_incoming(msg("/agent nobody", "e2"))
    assert "no agent called 'nobody'" in sender.texts()[-1]
    async with services.db.session() as session:
        session.add(Agent(name="helper", prompt="be brief"))
        await session.commit()
    await bot.handle_incoming(msg("/agent helper", "e3"))
    assert "now talks to the agent 'helper'" in sender.texts()[-1]
    await bot.handle_incoming(msg("/status", "e4"))
    assert "Agent: helper" in sender.texts()[-1]
    await bot.handle_incoming(msg("/status", "e5", chat="oc_other"))
    assert "(default)" in sender.texts()[-1]
    await bot.handle_incoming(msg("/reset", "e6"))
    assert "forgotten our conversation" in sender.texts()[-1]
    await bot.handle_incoming(msg("/frobnicate", "e7"))
    assert "Unknown command /frobnicate" in sender.texts()[-1]
    await bot.handle_incoming(msg("/video", "e8"))
    assert sender.texts()[-1].startswith("Usage: /video")


async def test_duplicates_are_dropped_even_by_a_new_service(
    services: Services, sender: RecordingSender
) -> None:
    assert await services.bot.handle_incoming(msg("hello", "dup-1")) is not None
    assert await services.bot.handle_incoming(msg("hello", "dup-1")) is None
    fresh = BotService(services, {"feishu": sender})  # what a restarted process would build
    assert await fresh.handle_incoming(msg("hello", "dup-1")) is None
    assert len(sender.texts()) == 1


async def test_group_messages_need_a_mention(services: Services, sender: RecordingSender) -> None:
    assert (
        await services.bot.handle_incoming(msg("/help", "g1", chat="oc_g", chat_type="group"))
        is None
    )
    assert sender.sent == []
    await services.bot.handle_incoming(
        msg("/help", "g2", chat="oc_g", chat_type="group", mentioned=True)
    )
    assert sender.texts("oc_g")


async def test_rate_limit_answers_kindly(services: Services, sender: RecordingSender) -> None:
    services.bot.limiter = RateLimiter(5, 60.0)
    for i in range(6):
        await services.bot.handle_incoming(msg("hi", f"rl-{i}"))
    assert "a bit fast" in sender.texts()[-1]
    assert sum("a bit fast" in t for t in sender.texts()) == 1
    await services.bot.handle_incoming(msg("hi", "rl-other", user="ou_2"))
    assert "a bit fast" not in sender.texts()[-1]  # another user is answered by the agent
    assert "offline" in sender.texts()[-1]


async def test_one_chat_is_answered_in_order_without_blocking_others(
    services: Services, sender: RecordingSender
) -> None:
    class EchoAgents:  # answers at once, so only the channel's ordering is measured
        async def handle(self, message: IncomingMessage) -> list[Reply]:
            return [Reply.of_text(f"You said: {message.text}")]

        async def stop(self) -> None:
            pass

    services.agents = EchoAgents()
    gate = asyncio.Event()
    sender.gates["first"] = gate
    bot: BotService = services.bot
    bot.submit(msg("first", "o1"))
    bot.submit(msg("second", "o2"))
    bot.submit(msg("elsewhere", "o3", chat="oc_2", user="ou_9"))
    await _wait_for(lambda: sender.texts("oc_2"))
    assert sender.texts("oc_1") == []  # the chat waits for its first message...
    gate.set()
    await _wait_for(lambda: len(sender.texts("oc_1")) >= 2)
    first, second = sender.texts("oc_1")
    assert "first" in first and "second" in second  # ... and keeps the order


async def test_agents_replace_the_default_answer(
    services: Services, sender: RecordingSender
) -> None:
    seen: list[IncomingMessage] = []

    class FakeAgents:
        async def handle(self, message: IncomingMessage) -> list[Reply]:
            seen.append(message)
            return [Reply.of_text("from the agent")]

    services.agents = FakeAgents()
    try:
        await services.bot.handle_incoming(msg("what is new?", "ag-1"))
        async with services.db.session() as session:
            session.add(Agent(name="analyst", prompt="numbers"))
            await session.commit()
        await services.bot.handle_incoming(msg("/agent analyst", "ag-2"))
        await services.bot.handle_incoming(msg("and now?", "ag-3"))
    finally:
        services.agents = None
    assert sender.texts()[0] == "from the agent"
    assert "agent_name" not in seen[0].raw  # unbound: the agents layer picks its default
    assert seen[0].raw["max_video_bytes"] == sender.max_video_bytes
    assert seen[1].raw["agent_name"] == "analyst"


async def _wait_for(predicate: Any, timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - polling a plain recorder with a deadline
            await asyncio.sleep(0.02)


async def test_video_with_progress_card(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(handlers._HANDLERS, TaskType.VIDEO_GENERATION, fake_video_handler)
    sender = RecordingSender(edits=True)
    services.bot.register_sender("feishu", sender)
    await services.bot.handle_incoming(msg("/video 你好", "v1"))
    await _wait_for(lambda: any(k == "video" for k, _, _ in sender.sent))
    kinds = [k for k, _, _ in sender.sent]
    assert kinds[0] == "text" and kinds.index("progress") < kinds.index("video")
    video = next(p for k, _, p in sender.sent if k == "video")
    assert probe(video["path"]).video_codec == "h264"
    assert video["cover"].read_bytes()[:2] == b"\xff\xd8"
    assert abs(video["duration"] - probe(video["path"]).duration) < 0.05
    await _wait_for(lambda: sender.sent[-1][0] == "update" and sender.sent[-1][2][1] == 100.0)


async def test_failed_task_reaches_the_user(
    services: Services, sender: RecordingSender, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(ctx: handlers.JobContext) -> dict[str, Any]:
        raise InvalidInput("the portrait has no face")

    monkeypatch.setitem(handlers._HANDLERS, TaskType.VIDEO_GENERATION, broken)
    await services.bot.handle_incoming(msg("/video hi", "f1"))
    await _wait_for(lambda: any("could not make the video" in t for t in sender.texts()))
    assert "the portrait has no face" in sender.texts()[-1]


async def test_restart_resumes_delivery_of_unfinished_videos(
    services: Services, sender: RecordingSender, monkeypatch: pytest.MonkeyPatch
) -> None:
    from avatarbot.jobs import service as task_service

    monkeypatch.setitem(handlers._HANDLERS, TaskType.VIDEO_GENERATION, fake_video_handler)
    source = {"channel": "feishu", "chat_id": "oc_resume", "chat_type": "p2p", "user_id": "ou_1"}
    async with services.db.session() as session:  # what the previous process left behind
        task = await task_service.create(
            session=session,
            task_type=TaskType.VIDEO_GENERATION,
            params={"text": "hi", "source": source},
        )
        await task_service.create(
            session=session, task_type=TaskType.VIDEO_GENERATION, params={"text": "api"}
        )
    assert await services.bot.resume_deliveries() == 1
    await services.executor.submit(task.id)
    await _wait_for(lambda: any(k == "video" and c == "oc_resume" for k, c, _ in sender.sent))


async def test_old_inbox_entries_are_pruned(services: Services) -> None:
    from datetime import timedelta

    from sqlalchemy import select

    from avatarbot.storage.base import utcnow
    from avatarbot.storage.models import ProcessedEvent

    async with services.db.session() as session:
        session.add(
            ProcessedEvent(
                platform="feishu", event_id="old", received_at=utcnow() - timedelta(days=8)
            )
        )
        session.add(ProcessedEvent(platform="feishu", event_id="new"))
        await session.commit()
    assert await services.bot.prune_inbox() == 1
    async with services.db.session() as session:
        left = list((await session.scalars(select(ProcessedEvent.event_id))).all())
    assert left == ["new"]


async def test_respond_gives_replies_without_sending(
    services: Services, sender: RecordingSender
) -> None:
    web = IncomingMessage(
        channel=Channel.WEB, chat_id="session-1", user_id="7", text="/help", owner_id=7
    )
    replies = await services.bot.respond(web)
    assert replies[0].kind == ReplyKind.TEXT and "/video" in replies[0].text
    assert sender.sent == []
