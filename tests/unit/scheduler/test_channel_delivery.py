"""Reports to Feishu/WeCom app chats go through the channel senders (videos as media)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from avatarbot.scheduler.delivery import ChannelReportSender
from avatarbot.scheduler.reports import Report

pytest.importorskip("avatarbot.bot.delivery", reason="needs the channels domain")


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
        self.calls.append(("video", target, (path, round(duration_s, 1))))


class _Services:
    def __init__(self, channel: RecordingChannel) -> None:
        self.channels = {"wecom": channel}


async def test_video_report_uploads_the_video_to_the_user(tmp_path: Path) -> None:
    from tests.helpers.job_handlers import write_test_mp4

    video = write_test_mp4(tmp_path / "r.mp4", seconds=0.4)
    channel = RecordingChannel()
    sender = ChannelReportSender(_Services(channel), "wecom")
    report = Report(kind="video", text="Daily numbers", video_path=video)
    receipt = await sender.send({"platform": "wecom", "user_id": "zhangsan"}, report, key="k")
    assert receipt == {"platform": "wecom", "kind": "video"}
    kinds = [c[0] for c in channel.calls]
    assert kinds == ["text", "video"]
    target = channel.calls[1][1]
    assert target.user_id == "zhangsan" and target.chat_type == "p2p"
    assert channel.calls[1][2] == (video, 0.4)


async def test_markdown_report_to_a_group_chat() -> None:
    channel = RecordingChannel()
    sender = ChannelReportSender(_Services(channel), "wecom")
    await sender.send(
        {"platform": "wecom", "chat_id": "wrOgAA"}, Report(kind="markdown", text="**hi**"), key="k"
    )
    [(kind, target, text)] = channel.calls
    assert kind == "markdown" and text == "**hi**"
    assert target.chat_id == "wrOgAA" and target.chat_type == "group"
