"""A streamed agent answer on Feishu: a CardKit card entity updated while the brain writes.

Flow (shared/spec/PROTOCOLS-CHAT2.md §2): create the card with streaming_mode on -> send it by
card_id -> PUT the answer element's full text so far (at most 5 a second; snapshots that
arrive meanwhile are coalesced into the latest) -> final full card PUT -> PATCH settings to
end streaming. Every card call carries the card's own strictly increasing `sequence` and a
uuid derived from card id + sequence, so an HTTP retry of a call that did land is a no-op
instead of a 300317. One pump task per card is the only sender, so calls never race.

Failures: if create or send fails nothing reached the chat and `finish` returns False (the
bot sends one plain message). If a later call fails, updates stop, streaming is ended if
possible and `finish` returns False as well: the card keeps its partial text and the whole
answer goes as one plain message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from avatarbot.errors import ExternalServiceError
from avatarbot.integrations.feishu.client import FeishuAPIError, FeishuClient

logger = logging.getLogger(__name__)

MIN_INTERVAL_S = 0.2  # <= 5 updates a second; the platform allows 10 ops/s per card
SEQUENCE_CONFLICT = 300317
TEXT_LIMIT_BYTES = 25_000  # the whole card must stay under 30 KB
ANSWER_ID = "answer"
STATUS_ID = "status"
PLACEHOLDER = "…"

SendCard = Callable[[dict[str, Any], str], Awaitable[str]]  # (content, uuid key) -> message_id


def card_json(answer: str, status: list[str], *, streaming: bool, summary: str) -> str:
    """Card JSON 2.0 as the string CardKit wants; the status element only when it has lines."""
    elements: list[dict[str, Any]] = []
    if streaming or status:
        elements.append(
            {
                "tag": "markdown",
                "element_id": STATUS_ID,
                "content": "\n".join(status) or PLACEHOLDER,
                "text_size": "notation",
            }
        )
    elements.append({"tag": "markdown", "element_id": ANSWER_ID, "content": answer or PLACEHOLDER})
    card = {
        "schema": "2.0",
        "config": {
            "streaming_mode": streaming,
            "update_multi": True,
            "summary": {"content": summary},
            "streaming_config": {
                "print_frequency_ms": {"default": 50},
                "print_step": {"default": 2},
                "print_strategy": "fast",
            },
        },
        "body": {"elements": elements},
    }
    return json.dumps(card, ensure_ascii=False)


class CardStream:
    """One answer streamed into one card (bot.streaming.AnswerStream)."""

    def __init__(self, client: FeishuClient, send_card: SendCard, key: str) -> None:
        self.client = client
        self._send_card = send_card
        self.key = key
        self.card_id = ""
        self.message_id = ""
        self.sequence = 0
        self.failed = False
        self.closed = False  # finished or aborted: nothing more goes to this card
        self.updates = 0  # content PUTs made (for tests and the benchmark)
        self._latest: tuple[str, list[str]] = ("", [])
        self._shown: tuple[str, str] = ("", "")  # answer, status as last sent
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_op = 0.0

    # --- AnswerStream ------------------------------------------------------------------

    def update(self, text: str, status: list[str]) -> None:
        if self.failed or self._closing.is_set():
            return
        self._latest = (text, status)
        self._wake.set()
        if self._task is None:
            self._task = asyncio.create_task(self._pump(), name=f"cardkit-{self.key}")

    async def finish(self, text: str, status: list[str]) -> bool:
        try:
            return await self._finish(text, status)
        finally:
            self.closed = True

    async def abort(self) -> None:
        """Shutdown mid-answer: stop updating and end streaming, so no card types forever."""
        if self.closed:
            return
        self.closed = True
        self._closing.set()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._end_quietly()

    async def _finish(self, text: str, status: list[str]) -> bool:
        self._closing.set()
        self._wake.set()
        if self._task is not None:
            await self._task
        elif not self.failed:  # nothing streamed (a one-shot answer): the card carries it whole
            try:
                await self._open(text, status)
            except ExternalServiceError as exc:
                self._fail("create/send", exc)
        if not self.message_id:
            return False  # nothing reached the chat: the caller sends one plain message
        if self.failed or len(text.encode()) > TEXT_LIMIT_BYTES:
            await self._end_quietly()
            return False
        try:
            final = card_json(text, status, streaming=False, summary=_summary(text))
            await self._op("PUT", "", {"card": {"type": "card_json", "data": final}})
            self._shown = (text, "\n".join(status))
        except ExternalServiceError as exc:
            self._fail("final update", exc)
            await self._end_quietly()
            return False
        await self._end_quietly()  # the card holds the answer even if this call fails
        return True

    # --- internals -----------------------------------------------------------------------

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            text, status = self._latest
            await self._open(text, status)
            while not self._closing.is_set():
                await self._wake.wait()
                self._wake.clear()
                wait = self._last_op + MIN_INTERVAL_S - loop.time()
                if wait > 0:  # pace: tokens arriving meanwhile are coalesced
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._closing.wait(), wait)
                if self._closing.is_set():
                    return  # finish() sends the final text itself
                await self._push(*self._latest)
        except ExternalServiceError as exc:
            self._fail("streaming", exc)

    async def _open(self, text: str, status: list[str]) -> None:
        data = await self.client.call(
            "POST",
            "/open-apis/cardkit/v1/cards",
            json_body={
                "type": "card_json",
                "data": card_json(text, status, streaming=True, summary="…"),
            },
        )
        self.card_id = str(data.get("card_id") or "")
        if not self.card_id:
            raise FeishuAPIError("Feishu card create answered without a card_id")
        self._shown = (text or PLACEHOLDER, "\n".join(status) or PLACEHOLDER)
        content = {"type": "card", "data": {"card_id": self.card_id}}
        self.message_id = await self._send_card(content, f"{self.key}:card")
        self._last_op = asyncio.get_running_loop().time()

    async def _push(self, text: str, status: list[str]) -> None:
        if len(text.encode()) > TEXT_LIMIT_BYTES:
            return  # too long for a card: finish() will hand the answer to a plain message
        lines = "\n".join(status) or PLACEHOLDER
        if lines != self._shown[1]:
            await self._content(STATUS_ID, lines)
            self._shown = (self._shown[0], lines)
        if text and text != self._shown[0]:
            await self._content(ANSWER_ID, text)
            self._shown = (text, self._shown[1])

    async def _content(self, element_id: str, content: str) -> None:
        path = f"/elements/{element_id}/content"
        await self._op("PUT", path, {"content": content})
        self.updates += 1

    async def _op(self, method: str, suffix: str, body: dict[str, Any]) -> None:
        """One sequenced call on the card; a 300317 jumps the counter and retries once."""
        for attempt in (1, 2):
            self.sequence += 1
            payload = {**body, "sequence": self.sequence, "uuid": f"{self.card_id}-{self.sequence}"}
            try:
                await self.client.call(
                    method, f"/open-apis/cardkit/v1/cards/{self.card_id}{suffix}", json_body=payload
                )
                self._last_op = asyncio.get_running_loop().time()
                return
            except FeishuAPIError as exc:
                if exc.code != SEQUENCE_CONFLICT or attempt == 2:
                    raise
                self.sequence += 10  # someone used numbers we did not: skip well past them

    async def _end_quietly(self) -> None:
        if not self.card_id:
            return
        try:
            settings = json.dumps({"config": {"streaming_mode": False}})
            await self._op("PATCH", "/settings", {"settings": settings})
        except ExternalServiceError as exc:
            logger.warning("ending Feishu card %s streaming failed: %s", self.card_id, exc.message)

    def _fail(self, stage: str, exc: ExternalServiceError) -> None:
        self.failed = True
        logger.warning("Feishu CardKit %s failed, falling back to a plain message: %s", stage, exc)


def _summary(text: str) -> str:
    """The chat-list preview: the answer's first line, short."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first[:60] or PLACEHOLDER
