"""Pushing a finished report to a schedule's target, through the bot's `send_to_target`.

- Feishu/WeCom app chats: the channel senders (videos uploaded as media, with a cover).
- Group-robot webhooks: the channels domain's robot senders (rate limit, retries, signing).
  Robots cannot carry video, so a video report becomes markdown with a link to the MP4.
Without a running bot (no channels domain in this process) robots get a plain POST.
"""

from __future__ import annotations

import contextlib
from typing import Any, Protocol

from avatarbot.errors import BackendUnavailable, ExternalServiceError
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

    if report.kind == "video" and report.video_path is not None and not robot:
        replies = [Reply(ReplyKind.TEXT, text=report.text)] if report.text else []
        return [*replies, Reply(ReplyKind.VIDEO, path=report.video_path)]
    text = robot_text(report)
    kind = ReplyKind.TEXT if report.kind == "text" else ReplyKind.MARKDOWN
    return [Reply(kind, text=text)]


async def _send_via_bot(
    bot: Any, platform: str, target: dict[str, Any], report: Report, key: str
) -> None:
    replies = report_replies(report, robot=platform == "webhook")
    for index, reply in enumerate(replies):
        await bot.send_to_target(platform, target, reply, key=f"{key}:{index}")


class RobotReportSender:
    def __init__(self, services: Any = None) -> None:
        self.services = services

    async def send(self, target: dict[str, Any], report: Report, *, key: str) -> dict[str, Any]:
        bot = getattr(self.services, "bot", None)
        if bot is not None:
            await _send_via_bot(bot, "webhook", target, report, key)
        else:
            robot = PlainRobot(target["url"])
            text = robot_text(report)
            if report.kind == "text":
                await robot.send_text(None, text, key=key)
            else:
                await robot.send_markdown(None, text, key=key)
        return {"robot": target.get("robot", ""), "kind": report.kind}


class PlainRobot:
    """Minimal Feishu/WeCom group-robot client (text and markdown), used without a bot."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        from avatarbot.scheduler.validation import robot_kind

        self.url = url
        self.kind = robot_kind(url)
        self.timeout_s = timeout_s

    async def send_text(self, _target: Any, text: str, *, key: str = "") -> None:
        if self.kind == "feishu":
            await self._post({"msg_type": "text", "content": {"text": text}})
        else:
            await self._post({"msgtype": "text", "text": {"content": text}})

    async def send_markdown(self, _target: Any, text: str, *, key: str = "") -> None:
        if self.kind == "feishu":
            card = {"elements": [{"tag": "markdown", "content": text}]}
            await self._post({"msg_type": "interactive", "card": card})
        else:
            await self._post({"msgtype": "markdown", "markdown": {"content": text}})

    async def _post(self, body: dict[str, Any]) -> None:
        import httpx

        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.post(self.url, json=body)
        except httpx.HTTPError as exc:
            raise ExternalServiceError(f"group robot unreachable ({type(exc).__name__})") from None
        data: dict[str, Any] = {}
        with contextlib.suppress(ValueError):  # a non-JSON answer is judged by its status
            data = response.json()
        code = data.get("code", data.get("errcode", data.get("StatusCode", 0)))
        if response.status_code >= 400 or code not in (0, None):
            message = data.get("msg") or data.get("errmsg") or f"HTTP {response.status_code}"
            raise ExternalServiceError(f"group robot refused the message: {message}")


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
