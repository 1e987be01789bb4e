"""FeishuChannel: the ChannelSender for Feishu/Lark plus what the webhook/long connection need."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avatarbot.bot.channel import ChatTarget
from avatarbot.bot.media import convert_audio, media_duration
from avatarbot.bot.types import Attachment, IncomingMessage
from avatarbot.config import FeishuSettings
from avatarbot.errors import ExternalServiceError, InvalidInput
from avatarbot.integrations.feishu.client import MAX_FILE_BYTES, FeishuClient
from avatarbot.integrations.http import RetryPolicy

if TYPE_CHECKING:
    from avatarbot.integrations.feishu.cardkit import CardStream

logger = logging.getLogger(__name__)


def progress_card(text: str, percent: float | None = None) -> dict[str, Any]:
    """An interactive card that may be PATCHed later (update_multi)."""
    elements: list[dict[str, Any]] = [{"tag": "markdown", "content": text}]
    if percent is not None:
        filled = int(max(0.0, min(100.0, percent)) // 10)
        bar = "▓" * filled + "░" * (10 - filled)
        elements.append({"tag": "markdown", "content": f"`{bar}` {percent:.0f}%"})
    return {"config": {"update_multi": True, "wide_screen_mode": True}, "elements": elements}


class FeishuChannel:
    name = "feishu"
    max_video_bytes: int | None = MAX_FILE_BYTES
    edits_messages = True

    def __init__(self, settings: FeishuSettings, retry: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.client = FeishuClient(
            app_id=settings.app_id,
            app_secret=settings.app_secret.get_secret_value(),
            base_url=settings.base_url,
            retry=retry,
        )
        self.bot_open_id = ""
        self.last_error = ""
        self.last_event_at: float | None = None
        self.long_connection: Any = None  # LongConnection when FEISHU__MODE=long_connection
        self.bot: Any = None  # bot.service.BotService, set when the app wires channels
        self._identity_task: asyncio.Task[None] | None = None
        self._streams: weakref.WeakSet[CardStream] = weakref.WeakSet()  # answers in progress

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        # In the background: an unreachable Feishu must not hold up the app's start-up.
        self._identity_task = asyncio.create_task(self._identify(), name="feishu-bot-identity")
        if self.settings.mode == "long_connection":
            from avatarbot.integrations.feishu.long_connection import LongConnection

            self.long_connection = LongConnection(self.settings, self._on_socket_event)
            self.long_connection.start(asyncio.get_running_loop())

    async def _identify(self, retry_every_s: float = 60.0) -> None:
        while not await self.refresh_bot_identity():  # noqa: ASYNC110 - a timed retry
            await asyncio.sleep(retry_every_s)

    async def stop(self) -> None:
        if self._identity_task is not None:
            self._identity_task.cancel()
        if self.long_connection is not None:
            await asyncio.to_thread(self.long_connection.stop)
        await self._end_streams()
        await self.client.aclose()

    async def _end_streams(self, timeout_s: float = 5.0) -> None:
        """At shutdown, end streaming on cards whose answer was cut off."""
        open_cards = [stream for stream in self._streams if not stream.closed]
        if open_cards:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*(s.abort() for s in open_cards), return_exceptions=True),
                    timeout_s,
                )

    async def refresh_bot_identity(self) -> str:
        """The bot's own open_id, so group @-mentions are matched by id, not by name."""
        try:
            self.bot_open_id = await self.client.bot_open_id()
            self.last_error = ""
        except ExternalServiceError as exc:
            self.last_error = exc.message
            logger.warning("Feishu bot/v3/info failed: %s", exc.message)
        return self.bot_open_id

    def status(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "status": "ok",
            "mode": self.settings.mode,
            "base_url": self.settings.base_url,
            "bot_identified": bool(self.bot_open_id),
        }
        if self.last_event_at is not None:
            info["last_event_age_s"] = round(time.time() - self.last_event_at, 1)
        if self.long_connection is not None:
            info["long_connection"] = self.long_connection.status()
            if info["long_connection"]["state"] != "connected":
                info["status"] = "error"
                info["reason"] = f"long connection {info['long_connection']['state']}"
        elif not (
            self.settings.verification_token.get_secret_value()
            or self.settings.encrypt_key.get_secret_value()
        ):
            info["status"] = "error"
            info["reason"] = "webhook mode needs the verification token (and encrypt key)"
        elif self.last_error and not self.bot_open_id:
            info["status"] = "error"
            info["reason"] = self.last_error
        return info

    # --- ChannelSender ---------------------------------------------------------------

    async def _send(
        self, target: ChatTarget, msg_type: str, content: dict[str, Any], key: str
    ) -> str:
        if target.thread_id and target.reply_to:  # a topic thread: answer inside it
            return await self.client.reply_message(
                target.reply_to, msg_type, content, uuid=key, reply_in_thread=True
            )
        if target.chat_id:
            return await self.client.send_message(target.chat_id, msg_type, content, uuid=key)
        return await self.client.send_message(
            target.user_id,
            msg_type,
            content,
            receive_id_type=_user_id_type(target.user_id),
            uuid=key,
        )

    async def send_text(self, target: ChatTarget, text: str, *, key: str = "") -> None:
        await self._send(target, "text", {"text": text}, key)

    async def send_markdown(self, target: ChatTarget, text: str, *, key: str = "") -> None:
        # A card renders markdown; post messages don't.
        await self._send(target, "interactive", progress_card(text), key)

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
        """Upload a file for a later `send_uploaded` (the outbox keeps the keys)."""
        if kind == "video":
            image_key = await self.client.upload_image(cover) if cover is not None else ""
            file_key = await self.client.upload_file(
                path, file_type="mp4", duration_ms=round(duration_s * 1000)
            )
            return {"file_key": file_key, **({"image_key": image_key} if image_key else {})}
        if kind == "audio":
            opus = await asyncio.to_thread(convert_audio, path, "opus")
            if not duration_s:
                duration_s = await asyncio.to_thread(media_duration, opus)
            file_key = await self.client.upload_file(
                opus, file_type="opus", duration_ms=round(duration_s * 1000)
            )
            return {"file_key": file_key}
        if kind == "image":
            return {"image_key": await self.client.upload_image(path)}
        raise InvalidInput(f"Feishu cannot send a {kind} file")

    async def send_uploaded(
        self, target: ChatTarget, kind: str, handles: dict[str, Any], *, key: str = ""
    ) -> None:
        msg_type = {"video": "media", "audio": "audio", "image": "image"}[kind]
        await self._send(target, msg_type, dict(handles), key)

    async def send_actions(self, target: ChatTarget, ref: str, *, key: str = "") -> None:
        """The buttons under a video (another take, other voice, audio only); `ref` names it."""
        from avatarbot.integrations.feishu.card_callback import actions_card

        await self._send(target, "interactive", actions_card(ref), key)

    async def start_progress(self, target: ChatTarget, text: str, *, key: str = "") -> str | None:
        return await self._send(target, "interactive", progress_card(text, 0.0), key) or None

    async def update_progress(self, handle: str, text: str, percent: float) -> None:
        await self.client.patch_card(handle, progress_card(text, percent))

    def open_stream(self, target: ChatTarget, *, key: str = "") -> CardStream | None:
        """A CardKit card for a streamed agent answer (bot.streaming), unless turned off."""
        if not self.settings.streaming:
            return None
        from avatarbot.integrations.feishu.cardkit import CardStream

        async def send_card(content: dict[str, Any], uuid: str) -> str:
            return await self._send(target, "interactive", content, uuid)

        stream = CardStream(self.client, send_card, key)
        self._streams.add(stream)
        return stream

    # --- inbound -----------------------------------------------------------------------

    async def fetch_replied_photo(self, msg: IncomingMessage, *, max_bytes: int) -> bytes | None:
        """The photo of the message `msg` replies to (None when that is no image message)."""
        import json

        parent = str(msg.raw.get("parent_id") or "")
        if not parent:
            return None
        found = await self.client.get_message(parent)
        if found.get("msg_type") != "image":
            return None
        try:
            content = json.loads((found.get("body") or {}).get("content") or "{}")
        except (TypeError, ValueError):
            return None
        key = str(content.get("image_key") or "") if isinstance(content, dict) else ""
        if not key:
            return None
        return await self.client.download_resource(parent, key, kind="image", max_bytes=max_bytes)

    async def fetch_media(
        self, msg: IncomingMessage, attachment: Attachment, *, max_bytes: int
    ) -> bytes:
        """bot.user_media.MediaFetcher: a user's photo/voice/file from the message resources API."""
        kind = "image" if attachment.kind == "image" else "file"  # audio and video are "file"
        return await self.client.download_resource(
            msg.message_id, attachment.key, kind=kind, max_bytes=max_bytes
        )

    async def _on_socket_event(self, body: dict[str, Any]) -> None:
        """An event from the long connection (on the app's loop): stored before the ack."""
        from avatarbot.integrations.feishu.webhook import parse_event

        try:
            msg = parse_event(self, body)
        except Exception:  # a malformed event must not kill the connection's callback
            logger.exception("Feishu long-connection event could not be parsed")
            return
        if msg is None or self.bot is None:
            return
        if await self.bot.accept(msg):  # raises when it cannot be stored: no ack
            self.bot.kick(msg.channel.value, msg.event_id, msg.chat_id)

    def handle_event(self, body: dict[str, Any]) -> dict[str, Any]:
        """A verified, decrypted event body: parse and hand it to the bot; returns the answer."""
        from avatarbot.integrations.feishu.webhook import handle_event

        return handle_event(self, body)

    def handle_webhook(self, data: dict[str, Any]) -> dict[str, Any]:
        """Seed API: handle a decrypted, verified event dict (url_verification included)."""
        if data.get("type") == "url_verification":
            return {"challenge": data.get("challenge", "")}
        return self.handle_event(data)

    # --- seed API (MODULE_REGISTRY: FeishuBot) ---------------------------------------

    async def send_message(self, chat_id: str, content: str) -> bool:
        """Send a text to a chat; True on success (failures are logged)."""
        try:
            await self.send_text(ChatTarget(chat_id=chat_id, chat_type="group"), content)
            return True
        except ExternalServiceError as exc:
            logger.warning("Feishu send_message failed: %s", exc.message)
            return False


FeishuBot = FeishuChannel  # the name the module registry promises


def _user_id_type(user_id: str) -> str:
    """Feishu ids carry their kind in the prefix: ou_ open_id, on_ union_id, else user_id."""
    if user_id.startswith("ou_"):
        return "open_id"
    if user_id.startswith("on_"):
        return "union_id"
    return "user_id"
