"""Group robot webhooks (WeCom `cgi-bin/webhook/send`, Feishu custom bot `bot/v2/hook`).

Push-only senders for scheduled reports into a group without an app. Both platforms cap a
robot at 20 messages a minute: a per-URL sliding-window limiter makes callers wait for a
slot instead of being refused, and a 45009 answer still backs off and retries.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections import deque
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from avatarbot.bot.channel import ChatTarget
from avatarbot.errors import ExternalServiceError, InvalidInput
from avatarbot.integrations.feishu.crypto import custom_bot_sign
from avatarbot.integrations.http import RetryPolicy, send_with_retry
from avatarbot.netguard import check_outbound_url

ROBOT_MESSAGES_PER_MINUTE = 20
TEXT_LIMIT = 2048
MARKDOWN_LIMIT = 4096
IMAGE_LIMIT = 2 * 1024 * 1024
FILE_LIMIT = 20 * 1024 * 1024


class SlidingWindowLimiter:
    """At most `limit` acquisitions per `window_s`; acquire() waits for a free slot."""

    def __init__(
        self, limit: int = ROBOT_MESSAGES_PER_MINUTE, window_s: float = 60.0, margin_s: float = 1.0
    ) -> None:
        self.limit = limit
        # The platform counts arrivals, we count departures: network jitter could squeeze two
        # windows together, so each slot is held a little longer than the platform's window.
        self.window_s = window_s + margin_s
        self._times: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                while self._times and now - self._times[0] >= self.window_s:
                    self._times.popleft()
                if len(self._times) < self.limit:
                    self._times.append(now)
                    return
                await asyncio.sleep(self.window_s - (now - self._times[0]) + 0.01)


_LIMITERS: dict[str, SlidingWindowLimiter] = {}


def limiter_for(url: str) -> SlidingWindowLimiter:
    """One limiter per robot URL in this process, however many sender objects exist."""
    return _LIMITERS.setdefault(url, SlidingWindowLimiter())


class _RobotBase:
    name = "webhook"
    max_video_bytes: int | None = FILE_LIMIT
    edits_messages = False

    def __init__(
        self,
        url: str,
        *,
        limiter: SlidingWindowLimiter | None = None,
        retry: RetryPolicy | None = None,
        allow_private: bool = False,
    ) -> None:
        self.url = url
        self.limiter = limiter or limiter_for(url)
        self.retry = retry or RetryPolicy()
        self.allow_private = allow_private

    async def _check_url(self, url: str) -> None:
        # Resolved again before every send: a stored URL whose name now points at a private
        # address (DNS rebinding) is refused too (AVATARBOT_SCHEDULER__ALLOW_PRIVATE_URLS).
        await check_outbound_url(url, allow_private=self.allow_private, must_resolve=True)

    async def _post(self, body: dict[str, Any], *, url: str | None = None) -> dict[str, Any]:
        busy = 0
        await self._check_url(url or self.url)
        while True:
            await self.limiter.acquire()
            async with httpx.AsyncClient(timeout=30) as http:
                response = await send_with_retry(
                    "robot", "send", lambda: http.post(url or self.url, json=body), self.retry
                )
            try:
                data = response.json()
            except ValueError:
                raise ExternalServiceError(
                    f"group robot answered HTTP {response.status_code}"
                ) from None
            code = int(data.get("errcode", data.get("code", 0)) or 0)
            if code == 0:
                return dict(data)
            if code in (45009, 9499) and busy < self.retry.attempts - 1:  # over the rate limit
                busy += 1
                await asyncio.sleep(self.retry.delay(busy) * 4)
                continue
            message = data.get("errmsg") or data.get("msg") or ""
            raise ExternalServiceError(f"group robot refused the message: {code} {message}".strip())

    async def start_progress(self, target: ChatTarget, text: str, *, key: str = "") -> str | None:
        return None

    async def update_progress(self, handle: str, text: str, percent: float) -> None:
        return None


class WecomGroupRobot(_RobotBase):
    """https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=… (text, markdown, image, file)."""

    async def send_text(self, target: ChatTarget | None, text: str, *, key: str = "") -> None:
        await self._post({"msgtype": "text", "text": {"content": _clip(text, TEXT_LIMIT)}})

    async def send_markdown(self, target: ChatTarget | None, text: str, *, key: str = "") -> None:
        await self._post(
            {"msgtype": "markdown", "markdown": {"content": _clip(text, MARKDOWN_LIMIT)}}
        )

    async def send_image(self, target: ChatTarget | None, path: Path, *, key: str = "") -> None:
        data = await asyncio.to_thread(path.read_bytes)
        if len(data) > IMAGE_LIMIT:
            raise InvalidInput("a group robot image must be at most 2 MB")
        await self._post(
            {
                "msgtype": "image",
                "image": {
                    "base64": base64.b64encode(data).decode(),
                    "md5": hashlib.md5(data, usedforsecurity=False).hexdigest(),
                },
            }
        )

    async def send_file(self, target: ChatTarget | None, path: Path, *, key: str = "") -> None:
        data = await asyncio.to_thread(path.read_bytes)
        if len(data) > FILE_LIMIT:
            raise InvalidInput("a group robot file must be at most 20 MB")
        parts = urlsplit(self.url)
        robot_key = parse_qs(parts.query).get("key", [""])[0]
        upload_url = f"{parts.scheme}://{parts.netloc}/cgi-bin/webhook/upload_media"
        await self._check_url(upload_url)
        async with httpx.AsyncClient(timeout=60) as http:
            response = await send_with_retry(
                "robot",
                "upload_media",
                lambda: http.post(
                    upload_url,
                    params={"key": robot_key, "type": "file"},
                    files={"media": (path.name, data, "application/octet-stream")},
                ),
                self.retry,
            )
        body = response.json()
        if body.get("errcode", 0) != 0 or not body.get("media_id"):
            raise ExternalServiceError(
                f"group robot upload refused: {body.get('errcode')} {body.get('errmsg', '')}"
            )
        await self._post({"msgtype": "file", "file": {"media_id": body["media_id"]}})

    async def send_video(
        self,
        target: ChatTarget | None,
        path: Path,
        *,
        cover: Path | None,
        duration_s: float,
        key: str = "",
    ) -> None:
        await self.send_file(target, path)  # robots have no video type: the MP4 goes as a file

    async def send_audio(
        self, target: ChatTarget | None, path: Path, *, duration_s: float, key: str = ""
    ) -> None:
        await self.send_file(target, path)


class FeishuGroupRobot(_RobotBase):
    """https://open.feishu.cn/open-apis/bot/v2/hook/<token>, optionally signed (text, markdown)."""

    max_video_bytes = None

    def __init__(self, url: str, *, secret: str = "", **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self.secret = secret

    def _signed(self, body: dict[str, Any]) -> dict[str, Any]:
        if not self.secret:
            return body
        timestamp = int(time.time())
        return {
            "timestamp": str(timestamp),
            "sign": custom_bot_sign(timestamp, self.secret),
            **body,
        }

    async def send_text(self, target: ChatTarget | None, text: str, *, key: str = "") -> None:
        await self._post(self._signed({"msg_type": "text", "content": {"text": text}}))

    async def send_markdown(self, target: ChatTarget | None, text: str, *, key: str = "") -> None:
        card = {
            "config": {"wide_screen_mode": True},
            "elements": [{"tag": "markdown", "content": text}],
        }
        await self._post(self._signed({"msg_type": "interactive", "card": card}))

    async def _unsupported(self, what: str) -> None:
        raise InvalidInput(f"a Feishu custom bot cannot send {what}; use the app channel instead")

    async def send_image(self, target: ChatTarget | None, path: Path, *, key: str = "") -> None:
        await self._unsupported("images")

    async def send_video(
        self,
        target: ChatTarget | None,
        path: Path,
        *,
        cover: Path | None,
        duration_s: float,
        key: str = "",
    ) -> None:
        await self._unsupported("videos")

    async def send_audio(
        self, target: ChatTarget | None, path: Path, *, duration_s: float, key: str = ""
    ) -> None:
        await self._unsupported("audio")


def robot_for_url(
    url: str, *, secret: str = "", allow_private: bool = False
) -> WecomGroupRobot | FeishuGroupRobot:
    """The right robot sender for a webhook URL (by its path)."""
    path = urlsplit(url).path
    if path.endswith("/cgi-bin/webhook/send"):
        return WecomGroupRobot(url, allow_private=allow_private)
    if "/open-apis/bot/v2/hook/" in path:
        return FeishuGroupRobot(url, secret=secret, allow_private=allow_private)
    raise InvalidInput(
        "unknown group robot URL: expected a WeCom webhook/send or a Feishu bot/v2/hook URL"
    )


def _clip(text: str, limit_bytes: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit_bytes:
        return text
    return data[: limit_bytes - 3].decode("utf-8", errors="ignore") + "…"
