"""WecomChannel: the ChannelSender for a WeCom self-built app (users and app group chats)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from avatarbot.bot.channel import ChatTarget
from avatarbot.bot.media import convert_audio
from avatarbot.bot.types import Attachment, IncomingMessage
from avatarbot.config import WecomSettings
from avatarbot.errors import ExternalServiceError, InvalidInput
from avatarbot.integrations.http import RetryPolicy
from avatarbot.integrations.wecom.client import MEDIA_LIMITS, WecomClient

logger = logging.getLogger(__name__)

TEXT_LIMIT_BYTES = 2048
MARKDOWN_LIMIT_BYTES = 4096


class WecomChannel:
    name = "wecom"
    max_video_bytes: int | None = MEDIA_LIMITS["video"]
    # message/send has only a content-based duplicate check (no key): the outbox turns it on
    # for retries of a text (a first send of the same text twice must not be dropped).
    content_dedup = True
    edits_messages = False  # WeCom app messages can't be edited: progress is one short text

    def __init__(self, settings: WecomSettings, retry: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.client = WecomClient(
            corp_id=settings.corp_id,
            secret=settings.secret.get_secret_value(),
            agent_id=settings.agent_id,
            base_url=settings.base_url,
            retry=retry,
        )
        self.bot: Any = None
        self.last_event_at: float | None = None
        self._crypto: Any = None
        self.config_error = ""

    @property
    def crypto(self) -> Any:
        if self._crypto is None:
            from avatarbot.integrations.wecom.crypto import WecomCrypto

            self._crypto = WecomCrypto(
                token=self.settings.token.get_secret_value(),
                encoding_aes_key=self.settings.encoding_aes_key.get_secret_value(),
                corp_id=self.settings.corp_id,
            )
        return self._crypto

    async def start(self) -> None:
        # Import wechatpy and derive the AES key now, in a thread, so the first callback is
        # answered as fast as the others.
        if self.settings.encoding_aes_key.get_secret_value():
            try:
                await asyncio.to_thread(lambda: self.crypto)
            except Exception as exc:  # a malformed EncodingAESKey: reported by status()
                self.config_error = f"EncodingAESKey unusable ({type(exc).__name__})"
                logger.error("WeCom callback crypto: %s", self.config_error)

    async def stop(self) -> None:
        await self.client.aclose()

    async def fetch_media(
        self, msg: IncomingMessage, attachment: Attachment, *, max_bytes: int
    ) -> bytes:
        """bot.user_media.MediaFetcher: a user's photo/voice/file by MediaId (media/get)."""
        return await self.client.download_media(attachment.key, max_bytes=max_bytes)

    def status(self) -> dict[str, Any]:
        info: dict[str, Any] = {"status": "ok", "base_url": self.settings.base_url}
        if not (
            self.settings.token.get_secret_value()
            and self.settings.encoding_aes_key.get_secret_value()
        ):
            info["status"] = "error"
            info["reason"] = "callback token / EncodingAESKey not set: cannot receive messages"
        if self.config_error:
            info["status"] = "error"
            info["reason"] = self.config_error
        if self.last_event_at is not None:
            info["last_event_age_s"] = round(time.time() - self.last_event_at, 1)
        return info

    # --- ChannelSender ---------------------------------------------------------------

    async def _send(
        self, target: ChatTarget, msgtype: str, payload: dict[str, Any], dedup: bool = False
    ) -> None:
        if target.chat_type == "group" and target.chat_id:
            await self.client.send_appchat(chatid=target.chat_id, msgtype=msgtype, payload=payload)
        else:
            await self.client.send_message(
                touser=target.user_id or target.chat_id,
                msgtype=msgtype,
                payload=payload,
                dedup=dedup,
            )

    async def send_text(
        self, target: ChatTarget, text: str, *, key: str = "", dedup: bool = False
    ) -> None:
        # WeCom refuses texts over 2048 bytes: long answers go out as several messages.
        for part in split_utf8(text, TEXT_LIMIT_BYTES):
            await self._send(target, "text", {"content": part}, dedup)

    async def send_markdown(self, target: ChatTarget, text: str, *, key: str = "") -> None:
        for part in split_utf8(text, MARKDOWN_LIMIT_BYTES):
            await self._send(target, "markdown", {"content": part})

    async def send_video(
        self,
        target: ChatTarget,
        path: Path,
        *,
        cover: Path | None,
        duration_s: float,
        key: str = "",
    ) -> None:
        handles = await self.upload("video", path, cover=cover, duration_s=duration_s)
        await self.send_uploaded(target, "video", handles, key=key)

    async def send_audio(
        self, target: ChatTarget, path: Path, *, duration_s: float, key: str = ""
    ) -> None:
        handles = await self.upload("audio", path, cover=None, duration_s=duration_s)
        await self.send_uploaded(target, "audio", handles, key=key)

    async def send_image(self, target: ChatTarget, path: Path, *, key: str = "") -> None:
        handles = await self.upload("image", path, cover=None, duration_s=0.0)
        await self.send_uploaded(target, "image", handles, key=key)

    async def upload(
        self, kind: str, path: Path, *, cover: Path | None, duration_s: float
    ) -> dict[str, Any]:
        """Upload a file for a later `send_uploaded` (the outbox keeps the media id)."""
        if kind == "video":
            media_id = await self.client.upload_media(path, "video")
            return {
                "media_id": media_id,
                "title": "avatarbot",
                "description": f"{duration_s:.1f} s",
            }
        if kind == "audio":
            amr = await asyncio.to_thread(convert_audio, path, "amr")
            return {"media_id": await self.client.upload_media(amr, "voice")}
        if kind == "image":
            return {"media_id": await self.client.upload_media(path, "image")}
        raise InvalidInput(f"WeCom cannot send a {kind} file")

    async def send_uploaded(
        self, target: ChatTarget, kind: str, handles: dict[str, Any], *, key: str = ""
    ) -> None:
        # A media id is unique to its upload, so the duplicate check never drops a new
        # message, and a retry of the same row (same media id) is dropped by WeCom.
        msgtype = {"video": "video", "audio": "voice", "image": "image"}[kind]
        await self._send(target, msgtype, dict(handles), dedup=True)

    async def start_progress(self, target: ChatTarget, text: str, *, key: str = "") -> str | None:
        return None

    async def update_progress(self, handle: str, text: str, percent: float) -> None:
        return None

    # --- inbound -----------------------------------------------------------------------

    def parse_webhook(self, data: dict[str, Any]) -> IncomingMessage | None:
        """A decrypted callback message (as a dict) -> the message for the bot, if any."""
        from avatarbot.integrations.wecom.events import parse_message

        msg = parse_message(data)
        if msg is not None:
            self.last_event_at = time.time()
        return msg

    def handle_webhook(self, data: dict[str, Any]) -> dict[str, Any]:
        """Seed API: a decrypted callback message (as a dict) -> hand to the bot."""
        msg = self.parse_webhook(data)
        if msg is None:
            return {}
        if self.bot is None:
            logger.warning("WeCom message %s dropped: the bot service is not running", msg.event_id)
            return {}
        self.bot.submit(msg)
        return {}

    async def send_message(self, user_id: str, content: str) -> bool:
        """Seed API (WeChatBot.send_message): text to a user; True on success."""
        try:
            await self.send_text(ChatTarget(chat_id=user_id, user_id=user_id), content)
            return True
        except ExternalServiceError as exc:
            logger.warning("WeCom send_message failed: %s", exc.message)
            return False


WeChatBot = WecomChannel  # the name the module registry promises


def split_utf8(text: str, limit_bytes: int) -> list[str]:
    """Pieces of at most `limit_bytes` UTF-8 bytes, cut at line ends where possible."""
    pieces: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while len(line.encode("utf-8")) > limit_bytes:  # one very long line: cut by bytes
            head = line.encode("utf-8")[:limit_bytes].decode("utf-8", errors="ignore")
            if current:
                pieces.append(current)
                current = ""
            pieces.append(head)
            line = line[len(head) :]
        if len((current + line).encode("utf-8")) > limit_bytes:
            pieces.append(current)
            current = ""
        current += line
    if current or not pieces:
        pieces.append(current)
    return [p.rstrip("\n") or p for p in pieces]
