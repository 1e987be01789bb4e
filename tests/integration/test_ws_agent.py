"""WS /api/v1/ws/agent over a real uvicorn server on 127.0.0.1 with a real WebSocket client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.helpers.task_handlers import media_handlers


@pytest.fixture(autouse=True)
def handlers() -> Iterator[None]:
    with media_handlers():
        yield


@pytest.fixture
async def ws_base(app: Any) -> AsyncIterator[str]:
    # The app fixture already ran the lifespan; uvicorn only serves it.
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    deadline = asyncio.get_running_loop().time() + 10
    while not server.started:
        assert asyncio.get_running_loop().time() < deadline, "uvicorn did not start"
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"ws://127.0.0.1:{port}/api/v1/ws/agent"
    server.should_exit = True
    await serving


def token_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].split(" ", 1)[1]


async def recv(ws: ClientConnection, timeout: float = 15) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def test_unauthenticated_is_closed_with_1008(ws_base: str) -> None:
    async with connect(ws_base) as ws:
        await ws.send(json.dumps({"type": "message", "text": "hi"}))
        frame = await recv(ws)
        assert frame == {"type": "error", "code": "unauthorized", "detail": "not authenticated"}
        with pytest.raises(ConnectionClosed):
            await recv(ws)
        assert ws.close_code == 1008
    async with connect(f"{ws_base}?token=not-a-jwt") as ws:
        await recv(ws)
        with pytest.raises(ConnectionClosed):
            await recv(ws)
        assert ws.close_code == 1008


async def test_huge_message_rejected_connection_kept(
    ws_base: str, admin_headers: dict[str, str]
) -> None:
    async with connect(ws_base, max_size=2**20) as ws:
        await ws.send(json.dumps({"type": "auth", "token": token_of(admin_headers)}))
        assert (await recv(ws))["type"] == "ready"
        huge = json.dumps({"type": "message", "text": "a" * (1024 * 1024)})
        await ws.send(huge)
        frame = await recv(ws)
        assert frame["type"] == "error" and frame["code"] == "too_large"
        assert "65536" in frame["detail"]
        await ws.send(json.dumps({"type": "ping"}))
        assert await recv(ws) == {"type": "pong"}


async def test_streamed_answer_tool_events_and_progress_in_order(
    ws_base: str, admin_headers: dict[str, str], client: httpx.AsyncClient
) -> None:
    async with connect(f"{ws_base}?token={token_of(admin_headers)}") as ws:
        ready = await recv(ws)
        assert ready["type"] == "ready"
        live = (await client.get("/api/v1/ws/connections", headers=admin_headers)).json()
        assert live["total"] == 1 and live["connections"][0]["id"] == ready["connection_id"]
        assert live["connections"][0]["username"] == "admin@example.com"

        await ws.send(json.dumps({"type": "message", "text": "make a video saying hello team"}))
        frames: list[dict[str, Any]] = []
        while True:
            frame = await recv(ws)
            frames.append(frame)
            if frame["type"] == "progress" and frame["status"] in ("completed", "failed"):
                break
        types = [f["type"] for f in frames]
        answer_at = types.index("answer")
        answer = frames[answer_at]
        assert types.index("tool_call") < types.index("task") < answer_at
        tokens = [f["text"] for f in frames[:answer_at] if f["type"] == "token"]
        assert len(tokens) > 3 and "".join(tokens) == answer["text"]
        assert all(t != "token" for t in types[answer_at:])
        task_id = answer["media"][0]["task_id"]
        assert answer["media"] == [
            {
                "kind": "video",
                "task_id": task_id,
                "url": f"/api/v1/tasks/{task_id}/result",
                "name": None,
            }
        ]
        assert task_id in answer["text"] and "hello team" in answer["text"]
        progress = [f for f in frames if f["type"] == "progress"]
        assert all(p["task_id"] == task_id for p in progress)
        assert progress[-1]["status"] == "completed"
        assert progress[-1]["result"]["url"] == f"/api/v1/tasks/{task_id}/result"
        r = await client.get(answer["media"][0]["url"], headers=admin_headers)
        assert r.status_code == 200 and r.content == b"fake media for hello team"

        # The same socket keeps memory: /reset through a frame clears this conversation.
        await ws.send(json.dumps({"type": "reset"}))
        assert await recv(ws) == {"type": "reset", "removed": 2}
    deadline = asyncio.get_running_loop().time() + 5
    while (await client.get("/api/v1/ws/connections", headers=admin_headers)).json()["total"]:
        assert asyncio.get_running_loop().time() < deadline, "connection not unregistered"
        await asyncio.sleep(0.05)


async def test_unknown_agent_gives_error_frame(ws_base: str, admin_headers: dict[str, str]) -> None:
    async with connect(f"{ws_base}?token={token_of(admin_headers)}&agent=ghost") as ws:
        assert (await recv(ws))["type"] == "ready"
        await ws.send(json.dumps({"type": "message", "text": "hi"}))
        frame = await recv(ws)
        assert frame["type"] == "error" and frame["code"] == "not_found"
        await ws.send("not json")
        assert (await recv(ws))["code"] == "invalid_json"


async def test_messages_are_rate_limited_per_user(
    ws_base: str, admin_headers: dict[str, str], app: Any
) -> None:
    app.state.config.settings.bot.user_messages_per_minute = 2
    async with connect(f"{ws_base}?token={token_of(admin_headers)}") as ws:
        assert (await recv(ws))["type"] == "ready"
        answers = []
        for _ in range(3):
            await ws.send(json.dumps({"type": "message", "text": "help"}))
            while (frame := await recv(ws))["type"] == "token":
                pass
            answers.append(frame)
        assert [a["type"] for a in answers] == ["answer", "answer", "error"]
        assert answers[2]["code"] == "rate_limited"


async def test_llm_tokens_stream_in_order_over_the_socket(
    ws_base: str, admin_headers: dict[str, str], app: Any
) -> None:
    from tests.helpers.fake_llm import fake_llm_server

    words = [f"w{n} " for n in range(30)]

    async with fake_llm_server(lambda _b, _n: {"content": "".join(words)}) as fake:
        llm = app.state.config.settings.llm
        llm.base_url, llm.model = fake.base_url, "fake-model"
        async with connect(f"{ws_base}?token={token_of(admin_headers)}") as ws:
            assert (await recv(ws))["type"] == "ready"
            await ws.send(json.dumps({"type": "message", "text": "count for me"}))
            tokens: list[str] = []
            while (frame := await recv(ws))["type"] == "token":
                tokens.append(frame["text"])
        assert tokens == words  # one frame per streamed chunk, in order
        assert frame["type"] == "answer" and frame["text"] == "".join(words)
        assert fake.requests[0]["stream"] is True
