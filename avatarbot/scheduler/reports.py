"""Report generation (the agent runs the prompt) and delivery to the schedule's target.

Delivery goes through a `ReportSender` per target platform: group-robot webhooks are sent
here with plain HTTP (they cannot carry video, so a video report becomes text plus a link);
Feishu/WeCom app chats go through the channel clients in `services.channels`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from avatarbot.errors import BackendUnavailable, ExternalServiceError, InvalidInput
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


class ReportSender(Protocol):
    async def send(self, target: dict[str, Any], report: Report) -> dict[str, Any]:
        """Deliver the report; returns a small receipt. Raises ExternalServiceError on failure."""
        ...


class RobotWebhookSender:
    """Feishu and WeCom group robots: one POST with text or markdown (no video upload)."""

    def __init__(self, timeout_s: float = 10.0) -> None:
        self.timeout_s = timeout_s

    async def send(self, target: dict[str, Any], report: Report) -> dict[str, Any]:
        import httpx

        text = report.text or ""
        if report.kind == "video" and report.link:
            text = f"{text}\n\n🎬 {report.link}" if text else report.link
        markdown = report.kind in ("markdown", "video")
        body = (
            _feishu_body(text, markdown)
            if target["robot"] == "feishu"
            else _wecom_body(text, markdown)
        )
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.post(target["url"], json=body)
        except httpx.HTTPError as exc:
            raise ExternalServiceError(f"group robot unreachable ({type(exc).__name__})") from None
        data: dict[str, Any] = {}
        with contextlib.suppress(ValueError):  # a non-JSON answer is judged by its status
            data = response.json()
        code = data.get("code", data.get("errcode", data.get("StatusCode", 0)))
        if response.status_code >= 400 or code not in (0, None):
            message = data.get("msg") or data.get("errmsg") or f"HTTP {response.status_code}"
            raise ExternalServiceError(f"group robot refused the message: {message}")
        return {"robot": target["robot"], "status": response.status_code}


def _feishu_body(text: str, markdown: bool) -> dict[str, Any]:
    if not markdown:
        return {"msg_type": "text", "content": {"text": text}}
    return {
        "msg_type": "interactive",
        "card": {"elements": [{"tag": "markdown", "content": text}]},
    }


def _wecom_body(text: str, markdown: bool) -> dict[str, Any]:
    if markdown:
        return {"msgtype": "markdown", "markdown": {"content": text}}
    return {"msgtype": "text", "text": {"content": text}}


class ChannelSender:
    """Feishu/WeCom app chats through the channel object the channels domain registers.

    The channel is looked up at send time, so a channel started after the scheduler works.
    """

    def __init__(self, services: Any, platform: str) -> None:
        self.services = services
        self.platform = platform

    async def send(self, target: dict[str, Any], report: Report) -> dict[str, Any]:
        from avatarbot.bot.types import Reply, ReplyKind

        channel = self.services.channels.get(self.platform)
        if channel is None:
            raise BackendUnavailable(f"the {self.platform} channel is not configured")
        chat_id = target.get("chat_id") or target.get("user_id") or ""
        if report.kind == "video" and report.video_path is not None:
            reply = Reply(ReplyKind.VIDEO, text=report.text, path=report.video_path)
        else:
            kind = ReplyKind.MARKDOWN if report.kind == "markdown" else ReplyKind.TEXT
            reply = Reply(kind, text=report.text)
        send_reply = getattr(channel, "send_reply", None)
        if send_reply is None:
            raise BackendUnavailable(f"the {self.platform} channel cannot send messages")
        result = await send_reply(chat_id, reply)
        return {"platform": self.platform, "result": str(result)[:200]}


async def generate_report(services: Any, schedule: Schedule, *, run_key: str) -> Report:
    """Run the schedule's agent on its prompt and shape the answer as the requested output."""
    text, video_path, task_id = await _ask_agent(services, schedule, run_key)
    if schedule.output != "video":
        return Report(kind=schedule.output, text=text)
    if video_path is None and task_id is None:
        task_id = await _video_task(services, schedule, text or schedule.prompt)
    if video_path is None and task_id is not None:
        video_path = await _wait_for_video(services, task_id)
    base = services.settings.public_base_url.rstrip("/")
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
    from avatarbot.pipeline.service import create_video_task

    task = await create_video_task(
        services, text=text, user_id=schedule.user_id, name=f"schedule {schedule.name}"
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
