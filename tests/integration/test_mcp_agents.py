"""Agents with real MCP servers (stdio, streamable HTTP, SSE) written in the test suite.

Configured through the agents API, answered by the LLM brain against the stand-in OpenAI
server (tests/helpers/fake_llm.py) or by the offline rule brain's `/tool` command.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from avatarbot.agents.manager import AgentManager
from avatarbot.bot.types import Channel, IncomingMessage
from tests.conftest import make_settings, register_and_login
from tests.helpers.fake_llm import FakeLLM, fake_llm_server, last_message
from tests.helpers.mcp_servers import RAW_SCRIPT, STDIO_SCRIPT, image_b64, serve_http

pytestmark = pytest.mark.slow

PYTHON = sys.executable
CALC = {"name": "calc", "transport": "stdio", "command": PYTHON, "args": [str(STDIO_SCRIPT)]}


@dataclass
class Env:
    app: FastAPI
    client: httpx.AsyncClient
    admin: dict[str, str]

    @property
    def manager(self) -> AgentManager:
        return self.app.state.services.agents

    async def create(self, name: str, servers: list[dict[str, Any]], **extra: Any) -> None:
        body = {"name": name, "capabilities": ["mcp"], "mcp_servers": servers, **extra}
        r = await self.client.post("/api/v1/agents/create", json=body, headers=self.admin)
        assert r.status_code == 201, r.text

    async def chat(self, agent: str, text: str) -> str:
        message = IncomingMessage(channel=Channel.WEB, chat_id="c1", user_id="u1", text=text)
        replies = await self.manager.handle(message, agent_name=agent)
        return replies[0].text

    async def health_of(self, key: str) -> dict[str, Any]:
        # As the superuser: /health hides paths and URLs from anyone else.
        body = (await self.client.get("/health", headers=self.admin)).json()
        return body["components"]["mcp"]["servers"][key]


@asynccontextmanager
async def mcp_env(tmp_path: Path, fake: FakeLLM | None = None, **mcp: Any) -> AsyncIterator[Env]:
    from avatarbot.app import create_app

    overrides: dict[str, Any] = {"mcp": {"allowed_commands": PYTHON, **mcp}}
    if fake is not None:
        overrides["llm"] = {"base_url": fake.base_url, "model": "fake", "timeout_s": 20}
    app = create_app(make_settings(tmp_path, **overrides))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Env(app, client, await register_and_login(client))


def tool_then_answer(tool: str, arguments: dict[str, Any]) -> Any:
    """The model calls `tool` for any user message, then answers quoting the tool's result."""

    def script(body: dict[str, Any], _n: int) -> dict[str, Any]:
        last = last_message(body)
        if last["role"] == "tool":
            return {"content": f"Result: {last['content']}"}
        if last["role"] == "user" and isinstance(last["content"], list):
            return {"content": "I see the chart."}
        return {"tool_calls": [{"name": tool, "arguments": arguments}]}

    return script


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): it has exited but is not reaped yet.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


async def test_llm_agent_calls_stdio_tools(tmp_path: Path) -> None:
    calls: dict[str, Any] = {"tool": "calc__add", "arguments": {"a": 2, "b": 40}}

    def script(body: dict[str, Any], n: int) -> dict[str, Any]:
        with_image = any(isinstance(m["content"], list) for m in body["messages"])
        if with_image and calls.get("text_only"):
            return {"status": 400}  # a text-only model refusing image parts
        return tool_then_answer(calls["tool"], calls["arguments"])(body, n)

    async with fake_llm_server(script) as fake, mcp_env(tmp_path, fake, call_timeout_s=1) as env:
        await env.create("numbers", [CALC])
        assert await env.chat("numbers", "what is 2 + 40?") == "Result: 42"
        # The model saw the server's tools as <server>__<tool> with their JSON schemas.
        tools = {t["function"]["name"]: t["function"] for t in fake.requests[0]["tools"]}
        assert {"calc__add", "calc__hang"} <= set(tools) and "make_video" not in tools
        schema = tools["calc__add"]["parameters"]
        assert schema["properties"]["a"]["type"] == "integer" and schema["required"] == ["a", "b"]
        assert tools["calc__add"]["description"] == "Add two integers."

        # Images go back to the model (as a user message: tool messages carry text only).
        calls.update(tool="calc__chart", arguments={})
        assert await env.chat("numbers", "show me the chart") == "I see the chart."
        parts = last_message(fake.requests[-1])["content"]
        assert parts[1]["image_url"]["url"] == f"data:image/png;base64,{image_b64()}"
        calls["text_only"] = True  # ...and a model that cannot see gets the text alone
        assert await env.chat("numbers", "the chart again") == "Result: [1 image(s) attached]"

        # A tool error is the tool's answer to the model, not a failed chat.
        calls.update(tool="calc__fail", arguments={"week": "2026-W48"})
        answer = await env.chat("numbers", "how was week 48?")
        assert answer.startswith("Result: ") and "no data for week 2026-W48" in answer

        # A tool that hangs times out; the model hears so and the agent still answers.
        calls.update(tool="calc__hang", arguments={})
        started = time.monotonic()
        answer = await env.chat("numbers", "wait for it")
        assert time.monotonic() - started < 15
        assert answer == 'Result: {"error": "calc__hang did not answer within 1 s"}'

        # Discovery: every tool with its source; the server's state in /health.
        r = await env.client.get("/api/v1/agents/numbers/tools", headers=env.admin)
        assert r.status_code == 200
        rows = {row["name"]: row for row in r.json()["data"]}
        assert rows["calc__add"]["source"] == "mcp:calc" and rows["calc__add"]["available"]
        assert rows["make_video"]["source"] == "builtin" and not rows["make_video"]["available"]
        assert any(row["source"].startswith("plugin:") for row in rows.values())
        assert r.json()["mcp_servers"][0]["status"] == "connected"
        health = await env.health_of("numbers/calc")
        assert health["status"] == "connected" and health["tools"] == 6

        calls.update(tool="calc__whoami", arguments={})
        pid = int((await env.chat("numbers", "who are you?")).split()[-1])
        assert _alive(pid)
    # Connections are closed with the app: the server process is gone.
    assert not _alive(pid)


async def test_stdio_server_killed_mid_chat_restarts_on_next_call(tmp_path: Path) -> None:
    calls = {"tool": "calc__whoami"}

    def script(body: dict[str, Any], n: int) -> dict[str, Any]:
        return tool_then_answer(calls["tool"], {})(body, n)

    async with fake_llm_server(script) as fake, mcp_env(tmp_path, fake) as env:
        await env.create("numbers", [CALC])
        first = int((await env.chat("numbers", "who?")).split()[-1])

        # The server dies in the middle of a call: a tool error, the chat still answers.
        calls["tool"] = "calc__crash"
        answer = await env.chat("numbers", "crash please")
        assert "the MCP server stopped during the call" in answer
        assert (await env.health_of("numbers/calc"))["status"] == "error"

        calls["tool"] = "calc__whoami"
        second = int((await env.chat("numbers", "who now?")).split()[-1])
        assert second != first and _alive(second)

        # Killed from outside between chats: noticed, then restarted by the next call.
        os.kill(second, 9)
        deadline = time.monotonic() + 10
        while (await env.health_of("numbers/calc"))["status"] != "error":
            assert time.monotonic() < deadline, "the dead server was not noticed"
            await asyncio.sleep(0.05)
        third = int((await env.chat("numbers", "and now?")).split()[-1])
        assert third not in (first, second)
        assert (await env.health_of("numbers/calc"))["starts"] == 3


async def test_llm_agent_calls_streamable_http_tool_with_secret_headers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "Bearer s3cret-token-0451"
    script = tool_then_answer("remote__add", {"a": 20, "b": 22})
    with serve_http() as server:
        async with fake_llm_server(script) as fake, mcp_env(tmp_path, fake) as env:
            remote = {
                "name": "remote",
                "transport": "http",
                "url": server.url,
                "headers": {"Authorization": secret},
            }
            await env.create("web", [remote])
            assert await env.chat("web", "add them") == "Result: 42"
            assert any(h.get("authorization") == secret for h in server.headers)

            # Answers mask the secret; sending the mask back keeps the stored value.
            r = await env.client.get("/api/v1/agents/web", headers=env.admin)
            assert r.json()["mcp_servers"][0]["headers"] == {"Authorization": "********"}
            assert "s3cret" not in r.text
            body = {"mcp_servers": r.json()["mcp_servers"], "prompt": "Be brief."}
            r = await env.client.put("/api/v1/agents/web", json=body, headers=env.admin)
            assert r.status_code == 200 and "s3cret" not in r.text
            server.headers.clear()
            assert await env.chat("web", "add again") == "Result: 42"
            assert any(h.get("authorization") == secret for h in server.headers)
    assert "s3cret" not in caplog.text


async def test_sse_transport_with_the_rule_brain(tmp_path: Path) -> None:
    with serve_http("sse") as server:
        async with mcp_env(tmp_path) as env:
            old = {"name": "legacy", "transport": "sse", "url": server.url}
            await env.create("old", [old], brain="rules")
            assert await env.chat("old", '/tool legacy__add {"a": 1, "b": 2}') == "3"
            answer = await env.chat("old", "/tool legacy__add {oops")
            assert answer.startswith("The arguments of /tool must be a JSON object")


async def test_malformed_tool_schemas_are_clear_errors(tmp_path: Path) -> None:
    raw = {"name": "raw", "transport": "stdio", "command": PYTHON, "args": [str(RAW_SCRIPT)]}
    script = tool_then_answer("raw__echo", {"text": "hi"})
    async with fake_llm_server(script) as fake, mcp_env(tmp_path, fake) as env:
        await env.create("odd", [raw])
        assert await env.chat("odd", "say hi") == "Result: echo: hi"
        offered = {t["function"]["name"] for t in fake.requests[0]["tools"]}
        assert "raw__echo" in offered and not offered & {"raw__stringy", "raw__props"}

        r = await env.client.get("/api/v1/agents/odd/tools", headers=env.admin)
        errors = r.json()["mcp_servers"][0]["errors"]
        assert errors == [
            "tool 'stringy' left out: inputSchema must be a JSON Schema object, got str",
            "tool 'props' left out: inputSchema.properties must be an object",
            "tool 'badtype' left out: inputSchema is not valid JSON Schema at properties/x/type: "
            "12 is not valid under any of the given schemas",
        ]
        health = await env.health_of("odd/raw")
        assert health["status"] == "connected" and health["errors"] == errors

        # Asked for anyway (a model that remembers it, or /tool): the reason, not a crash.
        script_calls = len(fake.requests)
        fake.script = tool_then_answer("raw__props", {})
        answer = await env.chat("odd", "use props")
        assert answer == (
            "Result: {\"error\": \"the MCP server 'raw' describes 'props' wrongly, so it is not "
            'offered: inputSchema.properties must be an object"}'
        )
        assert len(fake.requests) == script_calls + 2
        await env.create("odd_rules", [raw], brain="rules")
        answer = await env.chat("odd_rules", "/tool raw__stringy {}")
        assert answer == (
            "the MCP server 'raw' describes 'stringy' wrongly, so it is not offered: "
            "inputSchema must be a JSON Schema object, got str"
        )


async def test_unreachable_and_refused_servers_do_not_break_the_chat(tmp_path: Path) -> None:
    async with mcp_env(tmp_path, connect_timeout_s=2) as env:
        gone = {"name": "gone", "transport": "http", "url": "http://127.0.0.1:9/mcp"}
        await env.create("lonely", [gone], brain="rules")
        answer = await env.chat("lonely", "/tool gone__add {}")
        assert answer == "the MCP server 'gone' is unavailable: cannot connect to the server"
        health = await env.health_of("lonely/gone")
        assert health == {
            "status": "error",
            "transport": "http",
            "tools": 0,
            "starts": 1,
            "reason": "cannot connect to the server",
        }
        # A failed start is not retried on every message (fast answers meanwhile).
        await env.chat("lonely", "/tool gone__add {}")
        assert (await env.health_of("lonely/gone"))["starts"] == 1

        # A stdio command that is missing, or no longer allowed, is a clear state too.
        missing = {"name": "nope", "transport": "stdio", "command": "/nonexistent/mcp-server"}
        settings = env.app.state.config.settings
        settings.mcp.allowed_commands = f"{PYTHON},/nonexistent/mcp-server"
        await env.create("broken", [missing, CALC], brain="rules")
        settings.mcp.allowed_commands = "/nonexistent/mcp-server"  # python removed since
        answer = await env.chat("broken", "/tool")
        assert answer.startswith("Usage: /tool <name> {json arguments}. Tools: ")
        nope, calc = await env.health_of("broken/nope"), await env.health_of("broken/calc")
        assert nope["reason"] == "cannot start '/nonexistent/mcp-server': no such file or program"
        assert calc["reason"] == (
            f"the command {PYTHON!r} is not in AVATARBOT_MCP__ALLOWED_COMMANDS"
        )

        # A server that never answers the handshake: given up after the connect timeout.
        settings.mcp.allowed_commands = PYTHON
        mute = {**CALC, "name": "mute", "args": ["-c", "import sys; sys.stdin.read()"]}
        await env.create("quiet", [mute], brain="rules")
        started = time.monotonic()
        answer = await env.chat("quiet", "/tool mute__add {}")
        assert answer.startswith("the MCP server 'mute' is unavailable: no answer within 2 s")
        assert time.monotonic() - started < 12
        health = await env.health_of("quiet/mute")
        assert health["reason"] == "no answer within 2 s while starting"
