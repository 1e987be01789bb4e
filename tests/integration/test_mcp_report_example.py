"""The README's worked example: a weekly report from the local MCP server in examples/mcp,
run by a schedule and pushed to a Feishu group as a video (fake Feishu platform on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from avatarbot.jobs import handlers
from avatarbot.storage.models import Task, TaskType
from tests.conftest import make_settings, register_and_login
from tests.helpers.chat_media import fake_video_handler
from tests.helpers.fake_feishu import FakeFeishu

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mcp"
REPORT = (
    "Weekly report for 2026-W48: revenue 69,519 yuan from 341 units, +12% on the week before. "
    "Best seller: Smart Speaker (30,498 yuan). Best region: North."
)
SALES = {
    "name": "sales",
    "transport": "stdio",
    "command": sys.executable,
    "args": [str(EXAMPLE / "sales_report_server.py"), "--csv", str(EXAMPLE / "sales.csv")],
}


@pytest.fixture
def fake_feishu() -> Iterator[FakeFeishu]:
    import avatarbot.pipeline.tasks  # noqa: F401  (the real handlers first, then the stand-in)

    saved = dict(handlers._HANDLERS)
    handlers.register_handler(TaskType.VIDEO_GENERATION, fake_video_handler)
    fake = FakeFeishu().start()
    try:
        yield fake
    finally:
        fake.stop()
        handlers._HANDLERS.clear()
        handlers._HANDLERS.update(saved)


async def _eventually(predicate: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
    return value


async def test_weekly_report_from_a_local_mcp_server_as_a_feishu_video(
    tmp_path: Path, fake_feishu: FakeFeishu
) -> None:
    from avatarbot.app import create_app

    settings = make_settings(
        tmp_path,
        mcp={"allowed_commands": sys.executable},
        feishu={"app_id": fake_feishu.app_id, "app_secret": fake_feishu.app_secret,
                "base_url": fake_feishu.base_url},
    )  # fmt: skip
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            admin = await register_and_login(client)
            agent = {"name": "sales", "brain": "rules", "capabilities": ["mcp", "video"],
                     "mcp_servers": [SALES]}  # fmt: skip
            r = await client.post("/api/v1/agents/create", json=agent, headers=admin)
            assert r.status_code == 201, r.text
            schedule = {
                "name": "weekly sales",
                "cron": "0 9 * * 1",
                "timezone": "Asia/Shanghai",
                "agent": "sales",
                "prompt": '/tool sales__weekly_report {"week": "latest"}',
                "output": "video",
                "target": {"platform": "feishu", "chat_id": "oc_sales_group"},
            }
            r = await client.post("/api/v1/scheduler/create", json=schedule, headers=admin)
            assert r.status_code == 201, r.text
            r = await client.post(f"/api/v1/scheduler/{r.json()['id']}/run", headers=admin)
            assert r.status_code == 200 and r.json()["error"] is None, r.text

            media = await _eventually(lambda: fake_feishu.sent("media"))
            assert media[0]["receive_id"] == "oc_sales_group"
            texts = [m["content"]["text"] for m in fake_feishu.sent("text")]
            assert REPORT in texts
            async with app.state.services.db.session() as session:
                task = (await session.scalars(select(Task))).one()
            assert task.task_type == TaskType.VIDEO_GENERATION and task.params["text"] == REPORT


async def test_example_server_in_chinese_and_its_errors(tmp_path: Path) -> None:
    from avatarbot.app import create_app
    from avatarbot.bot.types import Channel, IncomingMessage

    app = create_app(make_settings(tmp_path, mcp={"allowed_commands": sys.executable}))
    async with app.router.lifespan_context(app):
        manager = app.state.services.agents
        await manager.create_agent(
            "sales", capabilities=["mcp"], brain="rules", mcp_servers=[SALES], allow_stdio=True
        )

        async def ask(text: str) -> str:
            message = IncomingMessage(channel=Channel.WEB, chat_id="c", user_id="u", text=text)
            return (await manager.handle(message, agent_name="sales"))[0].text

        answer = await ask('/tool sales__weekly_report {"week": "2026-W47", "language": "zh"}')
        assert answer.startswith("2026-W47 周报：销售额 ") and "比上周+" in answer
        assert await ask("/tool sales__list_weeks") == "2026-W46\n2026-W47\n2026-W48"
        answer = await ask('/tool sales__weekly_report {"week": "2025-W01"}')
        assert "no sales in week 2025-W01; the file covers 2026-W46 to 2026-W48" in answer
