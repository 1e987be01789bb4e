"""A fake OpenAI-compatible chat-completions server on 127.0.0.1 (aiohttp), scripted per test.

`script(request_json, call_number)` returns a turn: {"content": "..."} and/or
{"tool_calls": [{"name": ..., "arguments": {...}}]}, or {"status": 500} for a failure.
Both streaming (SSE chunks, tool-call arguments split across chunks) and plain JSON answers.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Script = Callable[[dict[str, Any], int], dict[str, Any]]


@dataclass
class FakeLLM:
    script: Script
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    base_url: str = ""
    chunk_delay_s: float = 0.0  # pause between streamed words (a model that types)
    first_token_s: float = 0.0  # pause before the first word (the model's time to first token)
    arrivals: list[float] = field(default_factory=list)  # monotonic time of each request
    first_tokens: list[float] = field(default_factory=list)  # ... and of its first word sent

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.arrivals.append(time.monotonic())
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        turn = self.script(body, len(self.requests))
        if turn.get("status"):
            return web.json_response(
                {"error": {"message": "scripted failure"}}, status=turn["status"]
            )
        calls = [
            {
                "id": f"call_{len(self.requests)}_{n}",
                "type": "function",
                "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments", {}))},
            }
            for n, c in enumerate(turn.get("tool_calls", []))
        ]
        content = turn.get("content")
        finish = "tool_calls" if calls else "stop"
        model = body.get("model", "fake")
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if calls:
                message["tool_calls"] = calls
            return web.json_response(
                {
                    "id": f"chatcmpl-{len(self.requests)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> None:
            payload = {
                "id": f"chatcmpl-{len(self.requests)}",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }
            await response.write(f"data: {json.dumps(payload)}\n\n".encode())

        await chunk({"role": "assistant", "content": ""})
        for n, word in enumerate(_pieces(content or "")):
            pause = self.first_token_s if n == 0 else self.chunk_delay_s
            if pause:
                await asyncio.sleep(pause)
            await chunk({"content": word})
            if n == 0:
                self.first_tokens.append(time.monotonic())
        for index, call in enumerate(calls):
            args = call["function"]["arguments"]
            half = len(args) // 2
            await chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call["id"],
                            "type": "function",
                            "function": {
                                "name": call["function"]["name"],
                                "arguments": args[:half],
                            },
                        }
                    ]
                }
            )
            await chunk({"tool_calls": [{"index": index, "function": {"arguments": args[half:]}}]})
        await chunk({}, finish)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _pieces(text: str) -> list[str]:
    import re

    return re.findall(r"\S+\s*|\s+", text)


@asynccontextmanager
async def fake_llm_server(script: Script, **options: float) -> AsyncIterator[FakeLLM]:
    fake = FakeLLM(script, **options)
    app = web.Application()
    app.router.add_post("/v1/chat/completions", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.base_url = f"http://127.0.0.1:{port}/v1"
    try:
        yield fake
    finally:
        await runner.cleanup()


def last_message(body: dict[str, Any]) -> dict[str, Any]:
    return body["messages"][-1]


@contextmanager
def fake_llm_thread(script: Script, **options: float) -> Iterator[FakeLLM]:
    """The same fake on its own loop in a thread, for sync tests (the app runs under uvicorn)."""
    loop = asyncio.new_event_loop()
    ready: queue.Queue[FakeLLM | BaseException] = queue.Queue()
    stop = asyncio.Event()

    async def serve() -> None:
        try:
            async with fake_llm_server(script, **options) as fake:
                ready.put(fake)
                await stop.wait()
        except BaseException as exc:  # start-up failure: tell the waiting test
            ready.put(exc)

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    started = ready.get(timeout=20)
    if isinstance(started, BaseException):
        raise started
    try:
        yield started
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
        loop.close()
