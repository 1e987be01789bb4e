"""Sending a finished media file through a ChannelSender (cover image, duration, size limit).

What is sent when, and retried how, is the outbox's business (bot/outbox.py, bot/dispatch.py).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from avatarbot.bot.channel import ChannelSender, ChatTarget
from avatarbot.bot.media import extract_cover, media_duration
from avatarbot.bot.types import ReplyKind

logger = logging.getLogger(__name__)

STAGE_LABELS = {
    "start": "Starting",
    "tts": "Synthesising speech",
    "audio": "Preparing audio",
    "face": "Analysing the face",
    "animate": "Animating",
    "enhance": "Enhancing",
    "mux": "Encoding the video",
    "done": "Done",
}


def stage_label(stage: str) -> str:
    return STAGE_LABELS.get(stage, stage.replace("_", " ").capitalize() or "Working")


async def send_media(
    sender: ChannelSender,
    target: ChatTarget,
    kind: ReplyKind,
    path: Path,
    *,
    key: str,
    info: dict[str, Any] | None = None,
) -> None:
    """Send a finished file; `info` (a task result) may already hold cover_path / duration_s."""
    info = info or {}
    if kind == ReplyKind.VIDEO:
        limit = sender.max_video_bytes
        size = (await asyncio.to_thread(path.stat)).st_size
        if limit is not None and size > limit:
            await sender.send_text(
                target,
                f"The video is {size / 1e6:.1f} MB, over this platform's {limit / 1e6:.0f} MB limit.",
                key=f"{key}:too-big",
            )
            return
        cover = await cover_for(path, info)
        duration = await duration_for(path, info)
        await sender.send_video(target, path, cover=cover, duration_s=duration, key=key)
    elif kind == ReplyKind.AUDIO:
        duration = await duration_for(path, info)
        await sender.send_audio(target, path, duration_s=duration, key=key)
    elif kind == ReplyKind.IMAGE:
        await sender.send_image(target, path, key=key)
    else:
        await sender.send_text(target, f"(file {path.name})", key=key)


async def cover_for(path: Path, info: dict[str, Any]) -> Path:
    given = info.get("cover_path")
    if given and await asyncio.to_thread(Path(given).is_file):
        return Path(given)
    return await asyncio.to_thread(extract_cover, path)


async def duration_for(path: Path, info: dict[str, Any]) -> float:
    given = info.get("duration_s") or info.get("duration")
    if isinstance(given, int | float) and given > 0:
        return float(given)
    return await asyncio.to_thread(media_duration, path)
