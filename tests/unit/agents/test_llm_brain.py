"""The LLM brain against a real local OpenAI-compatible server (tests/helpers/fake_llm.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from avatarbot.agents.manager import AgentManager
from avatarbot.bot.types import Channel, IncomingMessage, ReplyKind
from avatarbot.storage.models import Task, TaskStatus
from tests.conftest import make_settings
from tests.helpers.fake_llm import FakeLLM, fake_llm_server, last_message
from tests.helpers.task_handlers import media_handlers

API_KEY = "sk-test-secret-123"


@pytest.fixture(autouse=True)
def handlers() -> Iterator[None]:
    with media_handlers():
        yield


@asynccontextmanager
async def llm_app(tmp_path: Path, fake: FakeLLM, steps: int = 4) -> AsyncIterator[FastAPI]:
    from avatarbot.app import create_app

    settings = make_settings(
        tmp_path,
        llm={"base_url": fake.base_url, "model": "fake-model", "api_key": API_KEY,
             "max_tool_steps": steps, "timeout_s": 10},
    )  # fmt: skip
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


def msg(text: str, user: str = "u1") -> IncomingMessage:
    return IncomingMessage(channel=Channel.FEISHU, chat_id="oc_1", user_id=user, text=text)


def video_then_answer(body: dict[str, Any], _n: int) -> dict[str, Any]:
    if body["messages"][0]["content"].startswith("Summarise"):
        return {"content": "SUMMARY: earlier chat"}
    if last_message(body)["role"] == "tool":
        return {"content": "Here is your video about the launch."}
    if "video" in last_message(body)["content"]:
        return {
            "tool_calls": [{"name": "make_video", "arguments": {"text": "We launch on Monday"}}]
        }
    return {"content": f"echo: {last_message(body)['content']}"}


async def test_tool_call_makes_a_video_and_answers(tmp_path: Path) -> None:
    async with fake_llm_server(video_then_answer) as fake, llm_app(tmp_path, fake) as app:
        manager: AgentManager = app.state.services.agents
        events: list[dict[str, Any]] = []
        replies = await manager.handle(
            msg("please make a video about our launch"), on_event=events.append
        )
        assert [r.kind for r in replies] == [ReplyKind.TEXT, ReplyKind.VIDEO]
        assert replies[0].text == "Here is your video about the launch."
        task_id = replies[1].task_id
        assert task_id and replies[1].meta["url"] == f"/api/v1/tasks/{task_id}/result"
        status = await app.state.services.executor.wait(task_id, timeout=30)
        assert status == TaskStatus.COMPLETED
        async with app.state.services.db.session() as session:
            task = await session.get(Task, task_id)
            assert task is not None and task.params["text"] == "We launch on Monday"
        # The model saw the tools, then the tool result naming the task.
        first, second = fake.requests
        names = {t["function"]["name"] for t in first["tools"]}
        assert {"make_video", "speak", "list_digital_humans", "schedule_report"} <= names
        assert first["stream"] is True and first["model"] == "fake-model"
        tool_message = second["messages"][-1]
        assert tool_message["role"] == "tool" and task_id in tool_message["content"]
        assert fake.headers[0]["Authorization"] == f"Bearer {API_KEY}"
        # Streamed tokens, in order, are exactly the answer.
        tokens = "".join(e["text"] for e in events if e["type"] == "token")
        assert tokens == replies[0].text
        kinds = [e["type"] for e in events if e["type"] != "token"]
        assert kinds == ["tool_call", "task", "tool_result"]


async def test_loop_stops_at_step_limit(tmp_path: Path) -> None:
    def always_tools(_body: dict[str, Any], _n: int) -> dict[str, Any]:
        return {"tool_calls": [{"name": "list_digital_humans", "arguments": {}}]}

    async with fake_llm_server(always_tools) as fake, llm_app(tmp_path, fake, steps=3) as app:
        replies = await app.state.services.agents.handle(msg("loop forever"))
        assert len(fake.requests) == 3
        assert replies[0].meta["stopped_at_limit"] is True
        assert (
            "limit of 3 tool steps" in replies[0].text and "list_digital_humans" in replies[0].text
        )


async def test_agent_without_video_cannot_make_videos_via_llm(tmp_path: Path) -> None:
    def insists_on_video(body: dict[str, Any], _n: int) -> dict[str, Any]:
        if last_message(body)["role"] == "tool":
            return {"content": "I can't make videos here."}
        return {"tool_calls": [{"name": "make_video", "arguments": {"text": "hi"}}]}

    async with fake_llm_server(insists_on_video) as fake, llm_app(tmp_path, fake) as app:
        manager: AgentManager = app.state.services.agents
        await manager.create_agent("talker", "Talk only.", ["voice"])
        replies = await manager.handle(msg("make a video"), agent_name="talker")
        assert [r.kind for r in replies] == [ReplyKind.TEXT]
        advertised = {t["function"]["name"] for t in fake.requests[0]["tools"]}
        assert "make_video" not in advertised and "speak" in advertised
        assert "not allowed to make videos" in fake.requests[1]["messages"][-1]["content"]
        async with app.state.services.db.session() as session:
            assert await session.scalar(select(func.count()).select_from(Task)) == 0


async def test_retries_a_server_error(tmp_path: Path) -> None:
    def flaky(body: dict[str, Any], n: int) -> dict[str, Any]:
        return {"status": 503} if n == 1 else {"content": "recovered"}

    async with fake_llm_server(flaky) as fake, llm_app(tmp_path, fake) as app:
        replies = await app.state.services.agents.handle(msg("hi"))
        assert replies[0].text == "recovered" and len(fake.requests) == 2


async def test_client_error_becomes_a_clear_message(tmp_path: Path) -> None:
    async with (
        fake_llm_server(lambda _b, _n: {"status": 400}) as fake,
        llm_app(tmp_path, fake) as app,
    ):
        replies = await app.state.services.agents.handle(msg("hi"))
        assert (
            replies[0].text
            == "Sorry, something went wrong: the language model server answered HTTP 400"
        )
        assert API_KEY not in replies[0].text


async def test_memory_is_replayed_summarised_and_survives_restart(tmp_path: Path) -> None:
    async with fake_llm_server(video_then_answer) as fake:
        async with llm_app(tmp_path, fake) as app:
            manager: AgentManager = app.state.services.agents
            await manager.update_agent("assistant", config={"memory_turns": 1})
            await manager.handle(msg("my name is Lin"))
        async with llm_app(tmp_path, fake) as app:  # a restart: same database, new app
            manager = app.state.services.agents
            await manager.handle(msg("what is my name?"))
            chats = [r for r in fake.requests if not is_summary(r)]
            replayed = chats[-1]["messages"]
            assert replayed[-1] == {"role": "user", "content": "what is my name?"}
            assert {"role": "user", "content": "my name is Lin"} in replayed
            assert {"role": "assistant", "content": "echo: my name is Lin"} in replayed
            # Over budget now (2 turns > 1): the oldest turn was summarised by the model.
            summaries = [r for r in fake.requests if is_summary(r)]
            assert len(summaries) == 1
            assert "my name is Lin" in summaries[0]["messages"][1]["content"]
            await manager.handle(msg("and now?"))
            latest = [r for r in fake.requests if not is_summary(r)][-1]["messages"]
            notes = [m["content"] for m in latest if m["role"] == "system"]
            assert any("SUMMARY: earlier chat" in n for n in notes)
            assert {"role": "user", "content": "my name is Lin"} not in latest


def is_summary(body: dict[str, Any]) -> bool:
    return body["messages"][0]["content"].startswith("Summarise")


class FakePlugins:
    """Stands in for services.plugins: one plugin tool that writes a real file."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.calls: list[dict[str, Any]] = []

    def all_tools(self) -> list[Any]:
        from avatarbot.tools import ToolSpec

        def trim(input_path: str, start: float = 0.0) -> dict[str, Any]:
            self.calls.append({"input_path": input_path, "start": start})
            out = self.out_dir / "trimmed.mp4"
            out.write_bytes(b"trimmed")
            return {"output_path": str(out)}

        return [
            ToolSpec(
                name="video_editor.trim",
                description="Trim a video",
                handler=trim,
                parameters={
                    "type": "object",
                    "properties": {"input_path": {"type": "string"}, "start": {"type": "number"}},
                    "required": ["input_path"],
                },
                source="plugin:video_editor",
            )
        ]


async def test_plugin_tools_are_offered_and_called(tmp_path: Path) -> None:
    def use_plugin(body: dict[str, Any], _n: int) -> dict[str, Any]:
        if last_message(body)["role"] == "tool":
            return {"content": "Trimmed."}
        args = {"input_path": "/tmp/in.mp4", "start": 1.5, "invented": True}
        return {"tool_calls": [{"name": "video_editor__trim", "arguments": args}]}

    async with fake_llm_server(use_plugin) as fake, llm_app(tmp_path, fake) as app:
        services = app.state.services
        real_plugins, services.plugins = services.plugins, FakePlugins(tmp_path)
        manager: AgentManager = services.agents
        replies = await manager.handle(msg("trim my video"))
        assert "video_editor__trim" in {t["function"]["name"] for t in fake.requests[0]["tools"]}
        assert services.plugins.calls == [{"input_path": "/tmp/in.mp4", "start": 1.5}]
        assert [r.kind for r in replies] == [ReplyKind.TEXT, ReplyKind.VIDEO]
        assert replies[1].path == tmp_path / "trimmed.mp4"
        # Without the "plugins" capability the tool is neither offered nor callable.
        await manager.create_agent("plain", "", ["video"])
        await manager.handle(msg("trim my video"), agent_name="plain")
        offered = {t["function"]["name"] for t in fake.requests[-2]["tools"]}
        assert "video_editor__trim" not in offered
        assert "lacks the 'plugins' capability" in fake.requests[-1]["messages"][-1]["content"]
        assert len(services.plugins.calls) == 1
        services.plugins = real_plugins


async def test_builtin_plugins_are_offered_and_confined(tmp_path: Path) -> None:
    def peek(body: dict[str, Any], _n: int) -> dict[str, Any]:
        if last_message(body)["role"] == "tool":
            return {"content": "No."}
        args = {"path": "/etc/passwd"}
        return {"tool_calls": [{"name": "image_processor__info", "arguments": args}]}

    async with fake_llm_server(peek) as fake, llm_app(tmp_path, fake) as app:
        await app.state.services.agents.handle(msg("what is in /etc/passwd"))
        offered = {t["function"]["name"] for t in fake.requests[0]["tools"]}
        assert {"video_editor__trim", "image_processor__info"} <= offered
        # Needs the "models" capability, which the default agent does not have.
        assert "model_downloader__download" not in offered
        assert "outside the media folder" in fake.requests[1]["messages"][-1]["content"]


async def test_non_streaming_mode_and_timeout(tmp_path: Path) -> None:
    from avatarbot.agents.brains.llm import LLMBrain
    from avatarbot.agents.manager import AgentManager

    async with fake_llm_server(video_then_answer) as fake, llm_app(tmp_path, fake) as app:
        services = app.state.services
        plain = AgentManager(services, brain_factory=lambda _k, s: LLMBrain(s.llm, stream=False))
        events: list[dict[str, Any]] = []
        replies = await plain.handle(msg("a video please"), on_event=events.append)
        assert fake.requests[0].get("stream") in (None, False)
        assert replies[0].text == "Here is your video about the launch."
        assert replies[1].kind == ReplyKind.VIDEO and replies[1].task_id
        assert "".join(e["text"] for e in events if e["type"] == "token") == replies[0].text
        assert await services.executor.wait(replies[1].task_id, timeout=30) == TaskStatus.COMPLETED

    async def slow(request: Any) -> Any:
        import asyncio

        await asyncio.sleep(5)

    from aiohttp import web

    server = web.Application()
    server.router.add_post("/v1/chat/completions", slow)
    runner = web.AppRunner(server)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        slow_fake = FakeLLM(video_then_answer, base_url=f"http://127.0.0.1:{port}/v1")
        async with llm_app(tmp_path / "slow", slow_fake) as app:
            services = app.state.services
            services.config.settings.llm.timeout_s = 0.3
            quick = AgentManager(
                services, brain_factory=lambda _k, s: LLMBrain(s.llm, max_retries=0)
            )
            replies = await quick.handle(msg("hi"))
            assert replies[0].text.endswith("the language model did not answer within 0.3 s")
    finally:
        await runner.cleanup()
