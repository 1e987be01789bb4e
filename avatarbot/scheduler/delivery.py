"""Pushing a finished report to a schedule's target, through the bot's `send_to_target`.

- Feishu/WeCom app chats: the channel senders (videos uploaded as media, with a cover).
- Group-robot webhooks: the channels domain's robot senders (rate limit, retries, signing).
  Robots cannot carry video, so a video report becomes markdown with a link to the MP4.
The scheduler starts in the server lifespan after the channels, so the bot is always there.
"""

from __future__ import annotations

from typing import Any, Protocol

from avatarbot.errors import BackendUnavailable
from avatarbot.scheduler.reports import Report


class ReportSender(Protocol):
    async def send(self, target: dict[str, Any], report: Report, *, key: str) -> dict[str, Any]:
        """Deliver the report; returns a small receipt. Raises ExternalServiceError on failure.

        `key` is stable per (schedule, fire time), for platforms with idempotent sends."""
        ...


def robot_text(report: Report) -> str:
    text = report.text or ""
    if report.kind == "video" and report.link:
        text = f"{text}\n\n🎬 {report.link}" if text else report.link
    return text


def report_replies(report: Report, *, robot: bool) -> list[Any]:
    from avatarbot.bot.types import Reply, ReplyKind

    if report.kind == "video" and not robot and (report.video_path or report.task_id):
        replies = [Reply(ReplyKind.TEXT, text=report.text)] if report.text else []
        if report.video_path is None:  # still rendering: the outbox sends it when done
            return [*replies, Reply(ReplyKind.VIDEO, task_id=report.task_id)]
        return [*replies, Reply(ReplyKind.VIDEO, path=report.video_path)]
    text = robot_text(report)
    kind = ReplyKind.TEXT if report.kind == "text" else ReplyKind.MARKDOWN
    return [Reply(kind, text=text)]


async def _send_via_bot(
    bot: Any, platform: str, target: dict[str, Any], report: Report, key: str
) -> None:
    replies = report_replies(report, robot=platform == "webhook")
    # One outbox group, queued at once: a crash cannot leave the text queued without the video.
    await bot.push(platform, target, replies, key=f"{key}:0")


class RobotReportSender:
    """A group-robot webhook, through the bot's robot senders (rate limit, retries, signing)."""

    def __init__(self, services: Any = None) -> None:
        self.services = services

    async def send(self, target: dict[str, Any], report: Report, *, key: str) -> dict[str, Any]:
        bot = getattr(self.services, "bot", None)
        if bot is None:
            raise BackendUnavailable("chat delivery is not running; cannot reach the group robot")
        await _send_via_bot(bot, "webhook", target, report, key)
        return {"robot": target.get("robot", ""), "kind": report.kind}


class ChannelReportSender:
    """A Feishu/WeCom app chat, through the bot's senders (looked up at send time)."""

    def __init__(self, services: Any, platform: str) -> None:
        self.services = services
        self.platform = platform

    async def send(self, target: dict[str, Any], report: Report, *, key: str) -> dict[str, Any]:
        bot = getattr(self.services, "bot", None)
        if bot is None:
            raise BackendUnavailable(f"chat delivery is not running; cannot reach {self.platform}")
        await _send_via_bot(bot, self.platform, target, report, key)
        return {"platform": self.platform, "kind": report.kind}
