"""Agents answer from their knowledge base: the offline rule brain quotes passages with their
source, the LLM brain gets `search_knowledge` (capability `knowledge`) and cites, and a
scheduled report's prompt goes through the same tool."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from avatarbot.agents.knowledge.store import knowledge_base
from avatarbot.agents.manager import AgentManager
from avatarbot.bot.types import Channel, IncomingMessage
from avatarbot.config import Settings
from avatarbot.services import Services
from tests.conftest import make_settings
from tests.helpers.documents import EN_HANDBOOK, ZH_HANDBOOK, docx_bytes
from tests.helpers.fake_llm import fake_llm_server, last_message
from tests.helpers.fake_robot import FakeRobotServer


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The stand-in group robot listens on 127.0.0.1, a private address schedules refuse by default.
    return make_settings(tmp_path, scheduler={"allow_private_urls": True})


def msg(text: str) -> IncomingMessage:
    return IncomingMessage(channel=Channel.WEB, chat_id="s1", user_id="u1", text=text)


async def _with_handbooks(services: Services, agent: str) -> None:
    profile = await services.agents.get_agent(agent)
    kb = knowledge_base(services)
    await kb.add_document(agent_id=profile.id, filename="handbook.txt", data=EN_HANDBOOK.encode())
    await kb.add_document(
        agent_id=profile.id, filename="员工手册.docx", data=docx_bytes(ZH_HANDBOOK.split("\n\n"))
    )


async def test_rule_brain_quotes_passages_with_their_source(app: Any) -> None:
    services: Services = app.state.services
    manager: AgentManager = services.agents
    await _with_handbooks(services, "assistant")

    [reply] = await manager.handle(msg("What does the handbook say about remote work?"))
    assert reply.text.startswith('What the documents say about "remote work":')
    assert "1. handbook.txt, passage" in reply.text
    assert "work from home on Tuesdays and Thursdays" in reply.text

    [reply] = await manager.handle(msg("手册里关于年假怎么说？"))
    assert reply.text.startswith("知识库中关于“年假”的内容：")
    assert "《员工手册.docx》第" in reply.text and "十五天带薪年假" in reply.text

    [reply] = await manager.handle(msg("员工手册中对加班有什么规定"))
    assert "一点五倍工资" in reply.text
    [reply] = await manager.handle(msg("what does the handbook say about volcanoes"))
    assert reply.text == 'I found nothing about "volcanoes" in the knowledge base.'

    # An agent without the capability refuses, and its help does not offer it.
    await manager.create_agent("sales", "", ["video"], brain="rules")
    [reply] = await manager.handle(msg("手册里关于年假怎么说"), agent_name="sales")
    assert "knowledge" in reply.text and "十五天" not in reply.text
    [reply] = await manager.handle(msg("help"), agent_name="sales")
    assert "handbook" not in reply.text
    [reply] = await manager.handle(msg("help"))
    assert "what does the handbook say about" in reply.text


def _search_then_cite(body: dict[str, Any], _n: int) -> dict[str, Any]:
    last = last_message(body)
    if last["role"] == "tool":
        import json

        best = json.loads(last["content"])["results"][0]
        return {"content": f"Employees get 25 days [{best['cite']}]."}
    return {"tool_calls": [{"name": "search_knowledge", "arguments": {"query": "annual leave"}}]}


async def test_llm_brain_searches_and_cites(tmp_path: Path) -> None:
    from avatarbot.app import create_app
    from tests.conftest import make_settings

    async with fake_llm_server(_search_then_cite) as fake:
        settings = make_settings(tmp_path, llm={"base_url": fake.base_url, "model": "m"})
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            services: Services = app.state.services
            await _with_handbooks(services, "assistant")
            [reply] = await services.agents.handle(msg("How much leave do I get?"))
            first, second = fake.requests
            assert "search_knowledge" in {t["function"]["name"] for t in first["tools"]}
            tool_message = second["messages"][-1]
            assert tool_message["role"] == "tool"
            assert '"document": "handbook.txt"' in tool_message["content"]
            assert "twenty-five days" in tool_message["content"]
            assert reply.text.startswith("Employees get 25 days [handbook.txt #")

            # Without the capability the tool is not offered at all.
            await services.agents.create_agent("plain", "", ["video"])
            await services.agents.handle(msg("How much leave do I get?"), agent_name="plain")
            names = {t["function"]["name"] for t in fake.requests[-1].get("tools", [])}
            assert "search_knowledge" not in names


async def test_scheduled_report_answers_from_the_handbook(
    app: Any, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    await _with_handbooks(app.state.services, "assistant")
    with FakeRobotServer() as robot:
        body = {
            "name": "weekly policy reminder",
            "cron": "0 9 * * 1",
            "timezone": "Asia/Shanghai",
            "agent": "assistant",
            "prompt": "手册里关于报销怎么说",
            "output": "text",
            "target": {"platform": "webhook", "url": robot.wecom_url},
        }
        r = await client.post("/api/v1/scheduler/create", json=body, headers=admin_headers)
        assert r.status_code == 201, r.text
        r = await client.post(f"/api/v1/scheduler/{r.json()['id']}/run", headers=admin_headers)
        assert r.status_code == 200 and r.json()["status"] == "done", r.text
        [push] = robot.received()
    text = str(push["body"])
    assert "《员工手册.docx》" in text and "三十天内提交发票报销" in text
