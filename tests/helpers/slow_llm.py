"""An OpenAI-compatible chat-completions server that streams its answer word by word, slowly.

Runs aiohttp on its own loop in a thread (the app under test runs in uvicorn's thread), so
a chat channel can be watched receiving tokens one update at a time. Records when each
request arrived and when its first token left, for time-to-first-token comparisons.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from aiohttp import web


class SlowLLM:
    def __init__(self, answer: str, *, gap_s: float = 0.3) -> None:
        self.answer = answer
        self.gap_s = gap_s
        self.timings: list[tuple[float, float]] = []  # (request arrived, first token sent)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def start(self) -> SlowLLM:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/v1"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        body = await request.json()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def chunk(delta: dict[str, Any], finish: str | None = None) -> None:
            payload = {
                "id": "chatcmpl-slow",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body.get("model", "slow"),
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            await response.write(f"data: {json.dumps(payload)}\n\n".encode())

        words = self.answer.split(" ")
        for index, word in enumerate(words):
            await chunk({"content": word if index == 0 else f" {word}"})
            if index == 0:
                self.timings.append((arrived, time.monotonic()))
            await asyncio.sleep(self.gap_s)  # the model "thinking" between tokens
        await chunk({}, "stop")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response
