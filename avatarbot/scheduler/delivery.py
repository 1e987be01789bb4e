"""Pushing a finished report to a schedule's target.

- Feishu/WeCom app chats: the channel objects in `services.channels` (the channels domain's
  ChannelSender: send_text / send_markdown, videos uploaded as media via bot.delivery).
- Group-robot webhooks: the channels domain's robot senders (rate limit, retries, signing)
  when present, else a plain POST. Robots cannot carry video, so a video report becomes
  text/markdown with a link to the MP4.
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


class RobotReportSender:
    async def send(self, target: dict[str, Any], report: Report, *, key: str) -> dict[str, Any]:
        robot = _robot_for_url(target["url"])
        text = robot_text(report)
        if report.kind == "text":
            await robot.send_text(None, text, key=key)
        else:
            await robot.send_markdown(None, text, key=key)
        return {"robot": target.get("robot", ""), "kind": report.kind}


def _robot_for_url(url: str) -> Any:
    try:
        from avatarbot.integrations.wecom.group_robot import robot_for_url
    except ImportError:  # channels domain not installed: a plain POST does the job
        return PlainRobot(url)
    return robot_for_url(url)


class PlainRobot:
    """Minimal Feishu/WeCom group-robot client (text and markdown), used without the channels
    domain."""

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
    """A Feishu/WeCom app chat; the channel is looked up at send time (it may start later)."""

    def __init__(self, services: Any, platform: str) -> None:
        self.services = services
        self.platform = platform

    async def send(self, target: dict[str, Any], report: Report, *, key: str) -> dict[str, Any]:
        channel = self.services.channels.get(self.platform)
        if channel is None:
            raise BackendUnavailable(f"the {self.platform} channel is not configured")
        try:
            from avatarbot.bot.channel import ChatTarget
            from avatarbot.bot.delivery import send_media
            from avatarbot.bot.types import ReplyKind
        except ImportError:
            raise BackendUnavailable("chat channel delivery is not installed") from None
        chat = ChatTarget.from_dict(target)
        if report.kind == "video" and report.video_path is not None:
            if report.text:
                await channel.send_text(chat, report.text, key=f"{key}:text")
            await send_media(channel, chat, ReplyKind.VIDEO, report.video_path, key=f"{key}:video")
        elif report.kind == "markdown":
            await channel.send_markdown(chat, report.text, key=key)
        else:
            await channel.send_text(chat, report.text, key=key)
        return {"platform": self.platform, "kind": report.kind}
