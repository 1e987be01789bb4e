"""Sending budget per conversation and the three-step media upload of the long connection."""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import math
from pathlib import Path
from typing import Any

from avatarbot.errors import InvalidInput

CHUNK_BYTES = 512 * 1024
MAX_CHUNKS = 100
MEDIA_TYPES = ("file", "image", "voice", "video")
# WeCom: 30 messages a minute and 1 000 an hour per conversation, replies and pushes together.
DEFAULT_WINDOWS: tuple[tuple[int, float], ...] = ((30, 60.0), (1000, 3600.0))


class SendBudget:
    """Waits (never drops) until a conversation may send again under every window."""

    def __init__(self, windows: tuple[tuple[int, float], ...] = DEFAULT_WINDOWS) -> None:
        self.windows = windows
        self._sent: dict[str, collections.deque[float]] = {}
        self._locks: dict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)
        self.waited = 0  # sends that had to queue (visible in /health)

    def _wait_s(self, times: collections.deque[float], now: float) -> float:
        longest = max(window for _, window in self.windows)
        while times and now - times[0] >= longest:
            times.popleft()
        wait = 0.0
        for limit, window in self.windows:
            recent = [t for t in times if now - t < window]
            if len(recent) >= limit:
                wait = max(wait, recent[-limit] + window - now)
        return wait

    async def take(self, conversation: str) -> None:
        loop = asyncio.get_running_loop()
        async with self._locks[conversation]:  # FIFO per conversation: order is kept
            times = self._sent.setdefault(conversation, collections.deque())
            wait = self._wait_s(times, loop.time())
            if wait > 0:
                self.waited += 1
                await asyncio.sleep(wait)
            times.append(loop.time())


def media_chunks(path: Path) -> tuple[dict[str, Any], list[bytes]]:
    """The init body and the chunks (≤ 512 KB each) of a file (blocking: run in a thread)."""
    data = path.read_bytes()
    if not data:
        raise InvalidInput(f"{path.name} is empty")
    total = math.ceil(len(data) / CHUNK_BYTES)
    if total > MAX_CHUNKS:
        raise InvalidInput(f"{path.name} is over WeCom's {MAX_CHUNKS * CHUNK_BYTES // 2**20} MB")
    chunks = [data[i * CHUNK_BYTES : (i + 1) * CHUNK_BYTES] for i in range(total)]
    init = {
        "filename": path.name[:128],
        "total_size": len(data),
        "total_chunks": total,
        "md5": hashlib.md5(data).hexdigest(),  # noqa: S324 - WeCom's integrity field, not security
    }
    return init, chunks


async def upload_media(link: Any, path: Path, media_type: str) -> str:
    """aibot_upload_media_init / chunk / finish -> media_id (valid 3 days)."""
    if media_type not in MEDIA_TYPES:
        raise InvalidInput(f"unknown WeCom media type {media_type!r}")
    init, chunks = await asyncio.to_thread(media_chunks, path)
    answer = await link.request("aibot_upload_media_init", {"type": media_type, **init})
    upload_id = str((answer.get("body") or {}).get("upload_id") or "")
    if not upload_id:
        from avatarbot.errors import ExternalServiceError

        raise ExternalServiceError("WeCom AI bot upload init returned no upload_id")
    limit = asyncio.Semaphore(2)  # more than 2-3 chunks in flight gave "system error"

    async def send(index: int, chunk: bytes) -> None:
        async with limit:
            body = {
                "upload_id": upload_id,
                "chunk_index": index,  # 0-based, as every working client sends
                "base64_data": base64.b64encode(chunk).decode("ascii"),
            }
            await link.request("aibot_upload_media_chunk", body)

    await asyncio.gather(*(send(i, c) for i, c in enumerate(chunks)))
    done = await link.request("aibot_upload_media_finish", {"upload_id": upload_id})
    media_id = str((done.get("body") or {}).get("media_id") or "")
    if not media_id:
        from avatarbot.errors import ExternalServiceError

        raise ExternalServiceError("WeCom AI bot upload finish returned no media_id")
    return media_id
