from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from avatarbot.agents.manager import AgentManager
from avatarbot.agents.profile import KNOWN_CAPABILITIES
from avatarbot.bot.types import Channel, IncomingMessage, ReplyKind
from avatarbot.errors import Conflict, InvalidInput, NotFound
from avatarbot.services import Services
from avatarbot.storage.models import Schedule, Task, TaskStatus, TaskType
from tests.conftest import make_settings
from tests.helpers.task_handlers import media_handlers


@pytest.fixture
def handlers() -> Iterator[None]:
    with media_handlers():
        yield


@pytest.fixture
def services(app: Any) -> Services:
    return app.state.services


@pytest.fixture
def manager(services: Services) -> AgentManager:
    return services.agents


def msg(
    text: str, channel: Channel = Channel.WEB, chat: str = "c1", user: str = "u1"
) -> IncomingMessage:
    return IncomingMessage(channel=channel, chat_id=chat, user_id=user, text=text)


async def count_tasks(services: Services) -> int:
    async with services.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Task)) or 0)


async def test_default_agent_exists_on_start(manager: AgentManager) -> None:
    assert await manager.list_agents() == ["assistant"]
    agent = await manager.get_agent("assistant")
    assert agent is not None and agent.is_default
    # Every known capability (video, voice, plugins, schedule, knowledge, mcp).
    assert (
        set(agent.capabilities) == set(KNOWN_CAPABILITIES) >= {"video", "voice", "knowledge", "mcp"}
    )
    assert "视频" in agent.prompt and "video" in agent.prompt
    with pytest.raises(Conflict):
        await manager.delete_agent("assistant")


async def test_crud_and_seed_methods(manager: AgentManager) -> None:
    created = await manager.create_agent("writer", "You write.", ["voice"], brain="rules")
    assert created.id and created.name == "writer" and created.capabilities == ["voice"]
    with pytest.raises(Conflict):
        await manager.create_agent("writer", "again", [])
    with pytest.raises(InvalidInput):
        await manager.create_agent("bad name!", "", [])
    with pytest.raises(InvalidInput):
        await manager.create_agent("x", "", ["teleport"])
    with pytest.raises(InvalidInput):
        await manager.create_agent("y", "", [], brain="gpt")
    await created.update_prompt("You write poems.")
    await created.add_capability("video")
    await created.remove_capability("voice")
    again = await manager.get_agent("writer")
    assert again is not None
    assert again.prompt == "You write poems." and again.capabilities == ["video"]
    assert sorted(await manager.list_agents()) == ["assistant", "writer"]
    assert await manager.delete_agent("writer") is True
    assert await manager.delete_agent("writer") is False
    with pytest.raises(NotFound):
        await manager.update_agent("writer", "x")


async def test_offline_brain_makes_video_tasks_in_both_languages(
    manager: AgentManager, services: Services, handlers: None
) -> None:
    events: list[dict[str, Any]] = []
    replies = await manager.handle(msg("帮我生成一个视频，内容是大家好"), on_event=events.append)
    video = [r for r in replies if r.kind == ReplyKind.VIDEO]
    assert len(video) == 1 and video[0].pending and video[0].task_id
    assert await services.executor.wait(video[0].task_id, timeout=30) == TaskStatus.COMPLETED
    assert "视频" in replies[0].text and video[0].task_id in replies[0].text
    assert [e["type"] for e in events if e["type"] != "token"] == [
        "tool_call",
        "task",
        "tool_result",
    ]
    assert "".join(e["text"] for e in events if e["type"] == "token") == replies[0].text

    replies_en = await manager.handle(msg("make a video saying hello team", user="u2"))
    task_id = next(r.task_id for r in replies_en if r.kind == ReplyKind.VIDEO)
    assert task_id is not None
    assert await services.executor.wait(task_id, timeout=30) == TaskStatus.COMPLETED
    async with services.db.session() as session:
        task = await session.get(Task, task_id)
        assert task is not None
        assert task.task_type == TaskType.VIDEO_GENERATION
        assert task.params["text"] == "hello team"
        data = await asyncio.to_thread(Path(task.result_path or "").read_bytes)
        assert data == b"fake media for hello team"
    assert await count_tasks(services) == 2


async def test_speak_makes_an_audio_task(
    manager: AgentManager, services: Services, handlers: None
) -> None:
    replies = await manager.handle(msg("read this aloud: good morning", channel=Channel.FEISHU))
    audio = next(r for r in replies if r.kind == ReplyKind.AUDIO)
    assert audio.task_id is not None
    assert await services.executor.wait(audio.task_id, timeout=30) == TaskStatus.COMPLETED
    async with services.db.session() as session:
        task = await session.get(Task, audio.task_id)
        assert task is not None and task.task_type == TaskType.VOICE_SYNTHESIS
        assert task.params["text"] == "good morning" and task.params["format"] == "opus"


async def test_unknown_text_gets_a_helpful_answer(
    manager: AgentManager, services: Services
) -> None:
    replies = await manager.handle(msg("what's the weather like in Paris"))
    assert len(replies) == 1 and replies[0].kind == ReplyKind.TEXT
    text = replies[0].text
    assert "make a video saying" in text and "AVATARBOT_LLM__BASE_URL" in text
    zh = (await manager.handle(msg("今天吃什么")))[0].text
    assert "生成一个视频" in zh and "AVATARBOT_LLM__MODEL" in zh
    assert await count_tasks(services) == 0


async def test_agent_without_video_capability_refuses(
    manager: AgentManager, services: Services
) -> None:
    await manager.create_agent("talker", "Just talk.", ["voice"])
    replies = await manager.handle(msg("make a video saying hello team"), agent_name="talker")
    assert [r.kind for r in replies] == [ReplyKind.TEXT]
    assert "not allowed to make videos" in replies[0].text and "'video'" in replies[0].text
    zh = await manager.handle(msg("生成一个视频说你好"), agent_name="talker")
    assert "没有“video”能力" in zh[0].text
    assert await count_tasks(services) == 0
    help_text = (await manager.handle(msg("help"), agent_name="talker"))[0].text
    assert "read text aloud" in help_text and "make a talking" not in help_text


async def test_list_digital_humans(manager: AgentManager) -> None:
    replies = await manager.handle(msg("list digital humans"))
    assert "Available digital humans" in replies[0].text and "Grace" in replies[0].text


async def test_schedule_from_a_feishu_chat(manager: AgentManager, services: Services) -> None:
    replies = await manager.handle(msg("每天早上9点发日报", channel=Channel.FEISHU, chat="oc_1"))
    assert "0 9 * * *" in replies[0].text
    async with services.db.session() as session:
        row = (await session.scalars(select(Schedule))).one()
    assert row.cron == "0 9 * * *" and row.timezone == "Asia/Shanghai" and row.agent == "assistant"
    assert row.target["platform"] == "feishu" and row.target["chat_id"] == "oc_1"
    # From the web console there is no chat to post to: a clear message, no row.
    web = await manager.handle(msg("every day at 9am send the summary"))
    assert "target" in web[0].text
    async with services.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Schedule)) == 1


async def test_schedule_tool_validates_in_the_scheduler_and_hides_robot_credentials(
    services: Services,
) -> None:
    from avatarbot.agents.tools.schedule import create_schedule

    chat = msg("", channel=Channel.FEISHU, chat="oc_1")
    robot = {
        "platform": "webhook",
        "url": "https://open.feishu.cn/open-apis/bot/v2/hook/tok",
        "secret": "s3cr3t-value",
    }
    out = await create_schedule(
        services, agent="assistant", message=chat, cron="0  9 * * *", prompt="daily", target=robot
    )
    assert out["cron"] == "0 9 * * *" and out["timezone"] == "Asia/Shanghai"
    assert out["target"] == {"platform": "webhook", "robot": "feishu"}
    assert "s3cr3t-value" not in str(out)
    with pytest.raises(InvalidInput, match="5 fields"):
        await create_schedule(services, agent="assistant", message=chat, cron="daily", prompt="x")
    with pytest.raises(InvalidInput, match="timezone"):
        await create_schedule(
            services, agent="assistant", message=chat, cron="0 9 * * *", prompt="x", timezone="Mars"
        )


async def test_memory_reset_and_survives_restart(tmp_path: Path) -> None:
    from avatarbot.app import create_app

    settings = make_settings(tmp_path)
    first = create_app(settings)
    async with first.router.lifespan_context(first):
        manager: AgentManager = first.state.services.agents
        await manager.handle(msg("help"))
        await manager.handle(msg("hello there"))
        agent = await manager.default_agent()
        history = await manager.memory.history(agent.id, msg("").conversation)
        assert [h["role"] for h in history] == ["user", "assistant", "user", "assistant"]
    second = create_app(make_settings(tmp_path))
    async with second.router.lifespan_context(second):
        manager = second.state.services.agents
        agent = await manager.default_agent()
        history = await manager.memory.history(agent.id, msg("").conversation)
        assert [h["content"] for h in history if h["role"] == "user"] == ["help", "hello there"]
        cleared = await manager.handle(msg("/reset"))
        assert cleared[0].text == "Conversation cleared."
        assert await manager.memory.history(agent.id, msg("").conversation) == []
        # The bot's /reset calls reset(conversation): every agent's memory of this chat goes.
        await manager.create_agent("other", "", [])
        await manager.handle(msg("hi"))
        await manager.handle(msg("hi"), agent_name="other")
        await manager.handle(msg("hi", chat="elsewhere"))
        assert await manager.reset(msg("").conversation) == 4
        assert await manager.reset("other", msg("").conversation) == 0
        assert await manager.memory.count(agent.id, msg("", chat="elsewhere").conversation) == 2


async def test_memory_budget_truncates_offline(manager: AgentManager) -> None:
    await manager.create_agent("short", "", [], config={"memory_turns": 2})
    for n in range(5):
        await manager.handle(msg(f"message number {n}"), agent_name="short")
    agent = await manager.get_agent("short")
    assert agent is not None
    history = await manager.memory.history(agent.id, msg("").conversation)
    assert [h["content"] for h in history if h["role"] == "user"] == [
        "message number 3",
        "message number 4",
    ]


async def test_memory_of_a_conversation_id_longer_than_its_column(manager: AgentManager) -> None:
    # Stored ids are cut to the column's 200 characters; reads and deletes must cut the same way.
    agent = await manager.get_agent("assistant")
    assert agent is not None
    long_id = "feishu:" + "c" * 300
    await manager.memory.append(agent.id, long_id, "user", "hello")
    assert await manager.memory.count(agent.id, long_id) == 1
    assert [h["content"] for h in await manager.memory.history(agent.id, long_id)] == ["hello"]
    assert await manager.memory.reset(agent.id, long_id) == 1


async def test_unknown_agent_is_not_found(manager: AgentManager) -> None:
    with pytest.raises(NotFound):
        await manager.handle(msg("hi"), agent_name="ghost")


async def test_profiles_and_memory_on_each_database(any_database_url: str, tmp_path: Path) -> None:
    from avatarbot.app import create_app

    app = create_app(make_settings(tmp_path, database_url=any_database_url))
    async with app.router.lifespan_context(app):
        manager: AgentManager = app.state.services.agents
        agent = await manager.create_agent("pg", "prompt", ["video", "voice"], config={"k": 1})
        await manager.handle(msg("你好"), agent_name="pg")
        history = await manager.memory.history(agent.id, msg("").conversation)
        assert [h["role"] for h in history] == ["user", "assistant"]
        assert await manager.delete_agent("pg")
        # Memory goes with the agent.
        assert await manager.memory.count(agent.id, msg("").conversation) == 0


async def test_messages_of_one_conversation_run_in_order(manager: AgentManager) -> None:
    results = await asyncio.gather(*(manager.handle(msg(f"note {n}")) for n in range(4)))
    assert all(r[0].kind == ReplyKind.TEXT for r in results)
    agent = await manager.default_agent()
    history = await manager.memory.history(agent.id, msg("").conversation)
    roles = [h["role"] for h in history]
    assert roles == ["user", "assistant"] * 4  # never two user turns in a row
    assert len(manager._locks) == 0  # per-conversation locks are released


async def test_scheduler_messages_offline(manager: AgentManager, handlers: None) -> None:
    report = IncomingMessage(
        channel=Channel.SCHEDULER,
        chat_id="oc_1",
        user_id="schedule:s1",
        text="Daily stand-up at 10:00 in room 3",
        raw={"agent": "assistant", "schedule_id": "s1"},
    )
    replies = await manager.handle(report)
    assert [r.text for r in replies] == ["Daily stand-up at 10:00 in room 3"]
    video = await manager.handle(
        IncomingMessage(
            Channel.SCHEDULER, "oc_1", "schedule:s2", "make a video saying good morning"
        )
    )
    assert video[-1].kind == ReplyKind.VIDEO and video[-1].task_id
    status = await manager.services.executor.wait(video[-1].task_id, timeout=30)
    assert status == TaskStatus.COMPLETED


async def test_token_budget_keeps_whole_turns(manager: AgentManager) -> None:
    await manager.create_agent("tight", "", [], config={"memory_tokens": 150})
    for n in range(3):
        await manager.handle(msg(f"turn {n} " + "word " * 40), agent_name="tight")
    agent = await manager.get_agent("tight")
    assert agent is not None
    history = await manager.memory.history(agent.id, msg("").conversation)
    assert history and history[0]["role"] == "user"
    assert history[0]["content"].startswith("turn 2")
