"""Reports to Feishu/WeCom app chats go through the bot's senders (videos uploaded as media)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avatarbot.scheduler.delivery import ChannelReportSender
from avatarbot.scheduler.reports import Report
from avatarbot.services import Services
from tests.helpers.job_handlers import write_test_mp4


class RecordingChannel:
    name = "wecom"
    max_video_bytes = 10 * 1024 * 1024
    edits_messages = False

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, Any]] = []

    async def send_text(self, target: Any, text: str, *, key: str = "") -> None:
        self.calls.append(("text", target, text))

    async def send_markdown(self, target: Any, text: str, *, key: str = "") -> None:
        self.calls.append(("markdown", target, text))

    async def send_video(
        self, target: Any, path: Path, *, cover: Path | None, duration_s: float, key: str = ""
    ) -> None:
        self.calls.append(("video", target, (path, round(duration_s, 1), cover is not None)))

    async def start_progress(self, target: Any, text: str, *, key: str = "") -> str | None:
        return None

    async def update_progress(self, handle: str, text: str, percent: float) -> None:
        return None


def _sender(app: Any) -> tuple[RecordingChannel, ChannelReportSender]:
    services: Services = app.state.services
    channel = RecordingChannel()
    services.bot.register_sender("wecom", channel)
    return channel, ChannelReportSender(services, "wecom")


async def test_video_report_uploads_the_video_to_the_user(app: Any, tmp_path: Path) -> None:
    channel, sender = _sender(app)
    video = write_test_mp4(tmp_path / "r.mp4", seconds=0.4)
    report = Report(kind="video", text="Daily numbers", video_path=video)
    receipt = await sender.send({"platform": "wecom", "user_id": "zhangsan"}, report, key="k")
    assert receipt == {"platform": "wecom", "kind": "video"}
    assert [c[0] for c in channel.calls] == ["text", "video"]
    assert channel.calls[0][2] == "Daily numbers"
    target = channel.calls[1][1]
    assert target.user_id == "zhangsan" and target.chat_type == "p2p"
    assert channel.calls[1][2] == (video, 0.4, True)  # with its duration and a cover image


async def test_markdown_report_to_a_group_chat(app: Any) -> None:
    channel, sender = _sender(app)
    await sender.send(
        {"platform": "wecom", "chat_id": "wrOgAA"}, Report(kind="markdown", text="**hi**"), key="k"
    )
    [(kind, target, text)] = channel.calls
    assert kind == "markdown" and text == "**hi**"
    assert target.chat_id == "wrOgAA" and target.chat_type == "group"
