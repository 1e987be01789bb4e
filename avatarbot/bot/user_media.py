"""Photos, voice and files users send: download them through the channel, then act on them.

BotService.respond calls `prepare` before commands and agents. It either answers the
message itself (a new avatar, a file read into memory, a clear "cannot do that") or
rewrites it for the agent (a transcript as text, a photo as image input) and returns None.

Channels offer downloads by implementing MediaFetcher (`fetch_media`); bot/ never imports a
platform SDK. Downloads are capped at AVATARBOT_BOT__MAX_USER_MEDIA_MB while streaming.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
from pathlib import Path
from typing import Protocol, runtime_checkable

from avatarbot.bot import last_media
from avatarbot.bot.chat_knowledge import add_last_file, wants_knowledge
from avatarbot.bot.types import Attachment, IncomingMessage, Reply
from avatarbot.errors import AvatarbotError, InvalidInput
from avatarbot.services import Services

logger = logging.getLogger(__name__)

PHOTO_PHRASES = ("use this photo", "use this picture", "用这张照片", "用这张图片", "用这张图")
LLM_IMAGE_MAX_SIDE = 1536  # larger photos are scaled down before they go to the LLM
LLM_IMAGE_MAX_BYTES = 1_500_000


class MediaTooLarge(InvalidInput):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"the file is larger than the {limit / 1024 / 1024:.0f} MB I accept "
            f"(at least {size / 1024 / 1024:.1f} MB)"
        )
        self.size = size
        self.limit = limit


@runtime_checkable
class MediaFetcher(Protocol):
    async def fetch_media(
        self, msg: IncomingMessage, attachment: Attachment, *, max_bytes: int
    ) -> bytes:
        """The attachment's bytes; MediaTooLarge past max_bytes, AvatarbotError when refused."""
        ...


def image_suffix(data: bytes) -> str | None:
    """.jpg/.png/.webp from the magic bytes; None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return None


def wants_avatar(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered == "/avatar" or lowered.startswith(("/avatar ", "/avatar@")):
        return True
    return any(phrase in lowered for phrase in PHOTO_PHRASES)


def _zh(msg: IncomingMessage) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in msg.text)


async def prepare(services: Services, msg: IncomingMessage, sender: object) -> list[Reply] | None:
    """Replies when the media was handled here; None to go on with (a rewritten) msg."""
    text = msg.text.strip()
    if not msg.attachments:
        unsupported = str(msg.raw.get("unsupported") or "")
        if unsupported:
            return [Reply.of_text(_unsupported(unsupported))]
        if wants_knowledge(text):
            return await add_last_file(services, msg)
        if wants_avatar(text):
            replied = await _replied_photo(services, msg, sender)
            if replied is not None:
                return replied
            photo = last_photo(services, msg)
            if photo is None:
                return [
                    Reply.of_text(
                        "Send me a photo with /avatar (or a photo first, then "
                        "“use this photo” / “用这张照片”) and it becomes your digital human here."
                    )
                ]
            from avatarbot.bot.avatar_photo import make_avatar

            return await make_avatar(services, msg, photo)
        return None
    if not isinstance(sender, MediaFetcher):
        return None  # a channel that hands over no media (the web console)
    attachment = msg.attachments[0]
    if attachment.kind == "audio" and text:
        return None  # the platform recognised the speech (WeCom Recognition): use its text
    if attachment.kind == "audio" and not services.settings.asr.enabled:
        return [
            Reply.of_text(
                "I cannot listen to voice messages here yet: no speech recognition is set up "
                "(AVATARBOT_ASR__BASE_URL). Please type your message."
            )
        ]
    if attachment.kind == "video":
        return [Reply.of_text(_unsupported("video"))]
    if not attachment.key:
        return [
            Reply.of_text(
                f"Your {attachment.kind} arrived without its content; please send it again."
            )
        ]
    limit = services.settings.bot.max_user_media_mb * 1024 * 1024
    try:
        data = await sender.fetch_media(msg, attachment, max_bytes=limit)
    except MediaTooLarge as exc:
        return [Reply.of_text(f"Sorry, I cannot take that {attachment.kind}: {exc.message}.")]
    except AvatarbotError as exc:
        logger.warning("downloading a %s from %s failed: %s", attachment.kind, msg.channel, exc)
        return [
            Reply.of_text(
                f"Sorry, I could not download your {attachment.kind} ({exc.message}). "
                "Please send it again."
            )
        ]
    if attachment.kind == "image":
        return await _photo(services, msg, data)
    if attachment.kind == "audio":
        return await _voice(services, msg, data)
    return await _file(services, msg, attachment, data)


async def _replied_photo(
    services: Services, msg: IncomingMessage, sender: object
) -> list[Reply] | None:
    """/avatar sent as a reply to a photo (Feishu): that photo; None when it is no reply."""
    fetch = getattr(sender, "fetch_replied_photo", None)
    if fetch is None or not msg.raw.get("parent_id"):
        return None
    limit = services.settings.bot.max_user_media_mb * 1024 * 1024
    try:
        data = await fetch(msg, max_bytes=limit)
    except MediaTooLarge as exc:
        return [Reply.of_text(f"Sorry, I cannot take that photo: {exc.message}.")]
    except AvatarbotError as exc:
        return [Reply.of_text(f"Sorry, I could not download that photo ({exc.message}).")]
    return None if data is None else await _photo(services, msg, data)


def _unsupported(kind: str) -> str:
    return (
        f"I cannot read {kind} messages yet. I understand text, photos "
        "(send one with /avatar to make it your digital human), voice messages and "
        "text, markdown, CSV, PDF or Word files. /help lists the commands."
    )


# --- photos ----------------------------------------------------------------------------


def last_photo(services: Services, msg: IncomingMessage) -> Path | None:
    """The photo this user sent last in this chat, when it is recent enough."""
    return last_media.last(services, msg, "photo")


async def _photo(services: Services, msg: IncomingMessage, data: bytes) -> list[Reply] | None:
    suffix = image_suffix(data)
    if suffix is None:
        return [
            Reply.of_text(
                "That photo is not an image I can read: please send a JPEG, PNG or WebP picture."
            )
        ]
    path = await asyncio.to_thread(last_media.keep, services, msg, "photo", f"photo{suffix}", data)
    if wants_avatar(msg.text):
        from avatarbot.bot.avatar_photo import make_avatar

        return await make_avatar(services, msg, path)
    if services.settings.llm.enabled and services.agents is not None:
        # The LLM brain sends these as OpenAI image_url parts (agents/brains/llm.py).
        msg.raw["images"] = [await asyncio.to_thread(image_data_url, data, suffix)]
        msg.text = msg.text.strip() or ("请看这张图片。" if _zh(msg) else "[photo]")
        return None
    return [
        Reply.of_text(
            "Got your photo. Send /avatar (or “use this photo” / “用这张照片”) to make it your "
            "digital human in this chat."
        )
    ]


def image_data_url(data: bytes, suffix: str) -> str:
    """A data: URL for the LLM; big photos are scaled down first (blocking: run in a thread)."""
    mime = {".jpg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}[suffix]
    if len(data) > LLM_IMAGE_MAX_BYTES:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            image = image.convert("RGB")
            image.thumbnail((LLM_IMAGE_MAX_SIDE, LLM_IMAGE_MAX_SIDE))
            out = io.BytesIO()
            image.save(out, format="JPEG", quality=85)
        data, mime = out.getvalue(), "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


# --- voice and files ---------------------------------------------------------------------


async def _voice(services: Services, msg: IncomingMessage, data: bytes) -> list[Reply] | None:
    from avatarbot.bot.asr import transcribe

    try:
        heard = await transcribe(services.settings.asr, data)
    except AvatarbotError as exc:
        return [Reply.of_text(f"Sorry, I could not understand that voice message: {exc.message}")]
    if not heard:
        return [Reply.of_text("I could not make out any words in that voice message.")]
    msg.text = heard
    msg.raw["transcribed"] = True
    return None


async def _file(
    services: Services, msg: IncomingMessage, attachment: Attachment, data: bytes
) -> list[Reply] | None:
    from avatarbot.bot.user_files import FILE_CONTEXT_CHARS, extract_text, remember_file

    name = attachment.name or "file"
    try:
        content = await asyncio.to_thread(extract_text, name, data)
    except InvalidInput as exc:
        return [Reply.of_text(exc.message)]
    if not content.strip():
        return [Reply.of_text(f"I found no text in {name}.")]
    await asyncio.to_thread(last_media.keep, services, msg, "file", name, data)  # for /kb
    kept = content[:FILE_CONTEXT_CHARS]
    if not await remember_file(services, msg, name, kept):
        return [Reply.of_text(f"I read {name}, but no agent is running here to keep it in mind.")]
    cut = f", the first {len(kept)} kept" if len(kept) < len(content) else ""
    hint = (
        " /kb adds it to the knowledge base for good."
        if services.settings.knowledge.chat_uploads
        else ""
    )
    return [
        Reply.of_text(
            f"I read {name} ({len(content)} characters{cut}). Ask me anything about it.{hint}"
        )
    ]
