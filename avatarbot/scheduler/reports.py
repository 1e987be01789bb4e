"""Report generation: the schedule's agent runs the prompt (tools allowed) and its answer is
shaped as the requested output (text, markdown, or a video made from the answer)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avatarbot.errors import InvalidInput
from avatarbot.storage.models import Schedule, TaskStatus

logger = logging.getLogger(__name__)

VIDEO_WAIT_S = 1800.0


@dataclass
class Report:
    kind: str  # text | markdown | video
    text: str = ""
    video_path: Path | None = None
    link: str = ""  # where the video can be fetched (for targets that cannot take video)
    task_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


async def generate_report(
    services: Any, schedule: Schedule, *, run_key: str, wait_video: bool = True
) -> Report:
    """Run the schedule's agent on its prompt and shape the answer as the requested output.

    With `wait_video` False a video report carries the pending task instead of the file:
    the bot's outbox then delivers it when the task is done, across restarts.
    """
    text, video_path, task_id = await _ask_agent(services, schedule, run_key)
    base = services.settings.public_base_url.rstrip("/")
    if schedule.output != "video":
        if task_id:  # the agent made a video anyway: point to it
            text = f"{text}\n\n{base}/api/v1/tasks/{task_id}/result".strip()
        return Report(kind=schedule.output, text=text, task_id=task_id)
    if video_path is None and task_id is None:
        task_id = await _video_task(services, schedule, text or schedule.prompt)
    if video_path is None and task_id is not None and wait_video:
        video_path = await _wait_for_video(services, task_id)
    link = f"{base}/api/v1/tasks/{task_id}/result" if task_id else ""
    return Report(kind="video", text=text, video_path=video_path, link=link, task_id=task_id)


async def _ask_agent(
    services: Any, schedule: Schedule, run_key: str
) -> tuple[str, Path | None, str | None]:
    """(text, finished video, pending video task) from the agent; the prompt when no agents."""
    agents = getattr(services, "agents", None)
    if agents is None:
        return schedule.prompt, None, None
    from avatarbot.bot.types import Channel, IncomingMessage, ReplyKind

    target = schedule.target or {}
    message = IncomingMessage(
        channel=Channel.SCHEDULER,
        chat_id=str(target.get("chat_id") or target.get("user_id") or f"schedule:{schedule.id}"),
        user_id=f"schedule:{schedule.id}",
        text=schedule.prompt,
        event_id=run_key,
        owner_id=schedule.user_id,
        raw={"agent": schedule.agent, "output": schedule.output, "schedule_id": schedule.id},
    )
    replies = await agents.handle(message)
    texts: list[str] = []
    video_path: Path | None = None
    task_id: str | None = None
    for reply in replies or []:
        if reply.kind in (ReplyKind.TEXT, ReplyKind.MARKDOWN) and reply.text:
            texts.append(reply.text)
        elif reply.kind == ReplyKind.VIDEO:
            video_path = video_path or reply.path
            task_id = task_id or reply.task_id
            if reply.text:
                texts.append(reply.text)
    return "\n\n".join(texts).strip(), video_path, task_id


async def _video_task(services: Any, schedule: Schedule, text: str) -> str:
    from avatarbot.pipeline.service import (
        FEISHU_MAX_VIDEO_BYTES,
        WECOM_MAX_VIDEO_BYTES,
        create_video_task,
    )

    # A video for a chat must fit what that platform accepts (WeCom 10 MB, Feishu 30 MB).
    limits = {
        "wecom": WECOM_MAX_VIDEO_BYTES,
        "wecom_bot": WECOM_MAX_VIDEO_BYTES,
        "feishu": FEISHU_MAX_VIDEO_BYTES,
    }
    task = await create_video_task(
        services,
        text=text,
        user_id=schedule.user_id,
        name=f"schedule {schedule.name}",
        max_bytes=limits.get((schedule.target or {}).get("platform", "")),
    )
    return task.id


async def _wait_for_video(services: Any, task_id: str) -> Path:
    from avatarbot.jobs import service as task_service

    status = await services.executor.wait(task_id, timeout=VIDEO_WAIT_S)
    async with services.db.session() as session:
        task = await task_service.get_or_raise(session=session, task_id=task_id)
    if status != TaskStatus.COMPLETED or not task.result_path:
        raise InvalidInput(f"the report video failed: {task.error_message or status.value}")
    path = Path(task.result_path)
    if not await asyncio.to_thread(path.is_file):
        raise InvalidInput("the report video file is missing")
    return path
