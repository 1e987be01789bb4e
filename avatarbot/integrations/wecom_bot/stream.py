"""One streamed reply bubble: the text so far, pushed as full snapshots, finished exactly once.

A single pump task sends the frames, so one frame is in flight at a time and intermediate
snapshots that pile up while waiting for an ack are skipped (only the newest is sent);
the final snapshot is never skipped. Updates are spaced at least `min_interval_s`; an
unchanged snapshot is re-sent every `keepalive_s` so a long video job does not look idle;
after `max_age_s` the bubble is finished (WeCom closes it at 6 minutes) and the rest of the
reply goes out as separate messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger(__name__)

MAX_STREAM_BYTES = 20480

Push = Callable[[dict[str, Any]], Awaitable[None]]


def cut_utf8(text: str, limit: int = MAX_STREAM_BYTES) -> tuple[str, str]:
    """(head of at most `limit` UTF-8 bytes, the rest)."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text, ""
    head = data[:limit].decode("utf-8", errors="ignore")
    return head, text[len(head) :]


class ReplyStream:
    def __init__(
        self,
        push: Push,
        *,
        min_interval_s: float = 0.5,
        keepalive_s: float = 60.0,
        max_age_s: float = 330.0,
    ) -> None:
        self.push = push
        self.min_interval_s = min_interval_s
        self.keepalive_s = keepalive_s
        self.max_age_s = max_age_s
        self.stream_id = f"s{int(time.time() * 1000)}{secrets.token_hex(4)}"
        self.parts: list[str] = []
        self.live = ""  # tokens of the answer being generated
        self.progress = ""  # the last line while a video is being made
        self.finished = False  # the final frame was acked (or failed)
        self.overflow = ""  # text beyond 20 480 bytes, for the caller to send separately
        self.frames = 0
        self.error = ""
        self._finish_requested = False
        self._changed = asyncio.Event()
        self._done = asyncio.Event()
        self._started = 0.0
        self._pump: asyncio.Task[None] | None = None

    # --- what the bot says -----------------------------------------------------------

    def add_token(self, text: str) -> None:
        self.live += text
        self._touch()

    def add_text(self, text: str) -> None:
        """A finished reply text; it replaces the tokens streamed for it."""
        self.live = ""
        if text:
            self.parts.append(text)
        self._touch()

    def set_progress(self, text: str) -> None:
        self.progress = text
        self._touch()

    def snapshot(self) -> str:
        pieces = [*self.parts, self.live.strip(), self.progress]
        return "\n\n".join(p for p in pieces if p)

    @property
    def started(self) -> bool:
        return self._pump is not None

    @property
    def open(self) -> bool:
        return not self._finish_requested

    async def finish(self, timeout: float = 120.0) -> None:
        """Send the final frame (`finish: true`) and wait until it was acked."""
        self._finish_requested = True
        self._touch()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._done.wait(), timeout)

    def abandon(self) -> None:
        """Never started and not needed: later text goes as separate messages."""
        self._finish_requested = True
        self.finished = True
        self._done.set()

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(BaseException):
                await self._pump

    # --- the pump --------------------------------------------------------------------

    def _touch(self) -> None:
        self._changed.set()
        if self._pump is None:
            self._pump = asyncio.create_task(self._run(), name=f"wecom-bot-{self.stream_id}")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last_push = 0.0
        self._started = loop.time()  # WeCom's 6 minutes run from the first frame
        try:
            while True:
                age_left = self.max_age_s - (loop.time() - self._started)
                # Nothing new for a while: re-send the same snapshot to keep the bubble alive.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._changed.wait(), max(0.0, min(self.keepalive_s, age_left))
                    )
                if loop.time() - self._started >= self.max_age_s:
                    self._finish_requested = True
                wait = self.min_interval_s - (loop.time() - last_push)
                if wait > 0 and not self._finish_requested:
                    await asyncio.sleep(wait)  # pace intermediate updates; the final goes at once
                self._changed.clear()
                final = self._finish_requested
                text, rest = cut_utf8(self.snapshot())
                if final:
                    self.overflow = rest
                await self.push(
                    {
                        "msgtype": "stream",
                        "stream": {"id": self.stream_id, "finish": final, "content": text},
                    }
                )
                self.frames += 1
                last_push = loop.time()
                if final:
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the channel falls back to separate messages
            self.error = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            logger.warning("WeCom AI bot stream %s failed: %s", self.stream_id, self.error)
        finally:
            self.finished = True
            self._finish_requested = True
            self._done.set()
