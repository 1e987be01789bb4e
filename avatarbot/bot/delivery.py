"""Sending Replies through a ChannelSender, including media that a Task is still making.

A pending media reply becomes: an immediate acknowledgement, progress (an edited card
where the platform allows it, else one short text at about half way), then the media.
Failures reach the user as one short message; a delivery that fails after the client's
retries marks the task failed and is logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from avatarbot.bot.channel import ChannelSender, ChatTarget
from avatarbot.bot.media import extract_cover, media_duration
from avatarbot.bot.types import Reply, ReplyKind
from avatarbot.errors import AvatarbotError, ExternalServiceError
from avatarbot.jobs import service as task_service
from avatarbot.services import Services
from avatarbot.storage.models import Task, TaskStatus

logger = logging.getLogger(__name__)

POLL_S = 5.0  # re-read the Task row this often in case a progress event was missed
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


async def send_reply(
    services: Services, sender: ChannelSender, target: ChatTarget, reply: Reply, *, key: str
) -> asyncio.Task[None] | None:
    """Send one reply; for a pending task returns the background task that finishes it."""
    if reply.pending:
        if reply.text:
            await sender.send_text(target, reply.text, key=f"{key}:ack")
        return asyncio.create_task(
            follow_task(services, sender, target, reply, key=key), name=f"deliver-{reply.task_id}"
        )
    if reply.kind == ReplyKind.TEXT:
        await sender.send_text(target, reply.text, key=key)
    elif reply.kind == ReplyKind.MARKDOWN:
        await sender.send_markdown(target, reply.text, key=key)
    elif reply.path is not None:
        await send_media(sender, target, reply.kind, Path(reply.path), key=key)
    elif reply.text:
        await sender.send_text(target, reply.text, key=key)
    return None


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
        cover = await _cover(path, info)
        duration = await _duration(path, info)
        await sender.send_video(target, path, cover=cover, duration_s=duration, key=key)
    elif kind == ReplyKind.AUDIO:
        duration = await _duration(path, info)
        await sender.send_audio(target, path, duration_s=duration, key=key)
    elif kind == ReplyKind.IMAGE:
        await sender.send_image(target, path, key=key)
    else:
        await sender.send_text(target, f"(file {path.name})", key=key)


async def _cover(path: Path, info: dict[str, Any]) -> Path:
    given = info.get("cover_path")
    if given and await asyncio.to_thread(Path(given).is_file):
        return Path(given)
    return await asyncio.to_thread(extract_cover, path)


async def _duration(path: Path, info: dict[str, Any]) -> float:
    given = info.get("duration_s") or info.get("duration")
    if isinstance(given, int | float) and given > 0:
        return float(given)
    return await asyncio.to_thread(media_duration, path)


async def _load(services: Services, task_id: str) -> Task:
    async with services.db.session() as session:
        return await task_service.get_or_raise(session=session, task_id=task_id)


async def wait_for_task(
    services: Services,
    task_id: str,
    on_progress: Callable[[str, float], Awaitable[None]],
    timeout_s: float,
) -> Task:
    """Follow a task through the progress bus until it finishes; returns the final row."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    async with services.bus.subscribe(lambda e: e.task_id == task_id) as queue:
        task = await _load(services, task_id)
        while not task.status.finished:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"task {task_id} did not finish in {timeout_s:.0f}s")
            try:
                event = await asyncio.wait_for(queue.get(), timeout=min(POLL_S, remaining))
            except TimeoutError:
                task = await _load(services, task_id)
                continue
            if event.status in ("completed", "failed", "cancelled"):
                break
            await on_progress(event.stage, event.percent)
        return await _load(services, task_id)


async def follow_task(
    services: Services, sender: ChannelSender, target: ChatTarget, reply: Reply, *, key: str
) -> None:
    assert reply.task_id is not None
    task_id = reply.task_id
    what = "video" if reply.kind == ReplyKind.VIDEO else "audio"
    handle: str | None = None
    last_stage = ""
    half_sent = False

    async def on_progress(stage: str, percent: float) -> None:
        nonlocal last_stage, half_sent
        try:
            if handle is not None and stage != last_stage:
                last_stage = stage
                await sender.update_progress(handle, f"{stage_label(stage)}…", percent)
            elif handle is None and not sender.edits_messages and percent >= 50 and not half_sent:
                half_sent = True
                await sender.send_text(target, f"Your {what} is half done…", key=f"{key}:half")
        except ExternalServiceError as exc:  # progress is a courtesy; never stop delivery for it
            logger.warning("progress update for task %s failed: %s", task_id, exc.message)

    try:
        if sender.edits_messages:
            handle = await sender.start_progress(
                target, f"Making your {what}…", key=f"{key}:progress"
            )
        task = await wait_for_task(
            services, task_id, on_progress, float(services.settings.jobs.task_time_limit_s)
        )
        if task.status != TaskStatus.COMPLETED or not task.result_path:
            reason = task.error_message or task.status.value
            await _finish_progress(sender, handle, f"Failed: {reason}")
            await sender.send_text(
                target, f"Sorry, I could not make the {what}: {reason}", key=f"{key}:failed"
            )
            return
        await send_media(
            sender,
            target,
            reply.kind,
            Path(task.result_path),
            key=f"{key}:{what}",
            info=task.result or {},
        )
        await _finish_progress(sender, handle, "Done ✅")
    except ExternalServiceError as exc:
        logger.error("delivering task %s to %s failed: %s", task_id, sender.name, exc.message)
        await _mark_failed(services, task_id, f"delivery to {sender.name} failed: {exc.message}")
        # Often only the upload failed (size, type, one endpoint down): a text may still get
        # through, and the user should hear about it rather than wait forever.
        await _tell_failure(sender, target, f"Sorry, I could not send the {what}.", key)
    except (AvatarbotError, TimeoutError, OSError) as exc:
        message = exc.message if isinstance(exc, AvatarbotError) else str(exc)
        logger.error("task %s could not be delivered: %s", task_id, message)
        await _mark_failed(services, task_id, f"delivery failed: {message}")
        await _tell_failure(sender, target, f"Sorry, I could not send the {what}.", key)


async def _finish_progress(sender: ChannelSender, handle: str | None, text: str) -> None:
    if handle is None:
        return
    try:
        await sender.update_progress(handle, text, 100.0)
    except ExternalServiceError as exc:
        logger.warning("final progress update failed: %s", exc.message)


async def _tell_failure(sender: ChannelSender, target: ChatTarget, text: str, key: str) -> None:
    try:
        await sender.send_text(target, text, key=f"{key}:error")
    except ExternalServiceError as exc:
        logger.error("could not even tell the user about the failure: %s", exc.message)


async def _mark_failed(services: Services, task_id: str, error: str) -> None:
    async with services.db.session() as session:
        await task_service.finish(
            session=session, task_id=task_id, status=TaskStatus.FAILED, error=error
        )
