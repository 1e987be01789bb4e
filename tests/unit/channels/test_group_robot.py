"""Group robot senders against the fake platforms: message shapes, signature, the 20/min limit."""

from __future__ import annotations

import base64
import hashlib
import time
from pathlib import Path

import pytest

from avatarbot.errors import InvalidInput
from avatarbot.integrations.http import RetryPolicy
from avatarbot.integrations.wecom.group_robot import (
    FeishuGroupRobot,
    SlidingWindowLimiter,
    WecomGroupRobot,
    robot_for_url,
)
from tests.helpers.fake_feishu import FakeFeishu
from tests.helpers.fake_wecom import FakeWecom

FAST = RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.02)


async def test_wecom_robot_messages(tmp_path: Path) -> None:
    fake = FakeWecom().start()
    try:
        url = f"{fake.base_url}/cgi-bin/webhook/send?key=robot-key"
        robot = robot_for_url(url, allow_private=True)
        assert isinstance(robot, WecomGroupRobot)
        await robot.send_text(None, "早上好")
        await robot.send_markdown(None, "# report\n- ok")
        image = tmp_path / "chart.png"
        image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 64)
        await robot.send_image(None, image)
        report = tmp_path / "report.mp4"
        report.write_bytes(b"video-bytes")
        await robot.send_video(None, report, cover=None, duration_s=1.0)
        kinds = [m["msgtype"] for m in fake.robot_messages]
        assert kinds == ["text", "markdown", "image", "file"]
        assert all(m["key"] == "robot-key" for m in fake.robot_messages)
        sent_image = fake.robot_messages[2]["image"]
        assert base64.b64decode(sent_image["base64"]) == image.read_bytes()
        assert sent_image["md5"] == hashlib.md5(image.read_bytes()).hexdigest()
        media_id = fake.robot_messages[3]["file"]["media_id"]
        assert fake.media[media_id]["data"] == b"video-bytes"
        big = tmp_path / "big.png"
        big.write_bytes(b"x" * (2 * 1024 * 1024 + 1))
        with pytest.raises(InvalidInput):
            await robot.send_image(None, big)
    finally:
        fake.stop()


async def test_limiter_keeps_a_robot_under_the_platform_limit() -> None:
    fake = FakeWecom(robot_limit_per_min=3, robot_window_s=0.5).start()
    try:
        url = f"{fake.base_url}/cgi-bin/webhook/send?key=k"
        robot = WecomGroupRobot(
            url, limiter=SlidingWindowLimiter(3, 0.5, margin_s=0.1), retry=FAST, allow_private=True
        )
        started = time.monotonic()
        for i in range(7):
            await robot.send_text(None, f"message {i}")
        assert time.monotonic() - started >= 1.0  # 7 messages at 3 per 0.5 s need two waits
        assert fake.robot_refusals == 0 and len(fake.robot_messages) == 7
    finally:
        fake.stop()


async def test_feishu_custom_bot_is_signed(tmp_path: Path) -> None:
    fake = FakeFeishu(hook_secret="hook-secret").start()
    try:
        url = f"{fake.base_url}/open-apis/bot/v2/hook/abc"
        robot = robot_for_url(url, secret="hook-secret", allow_private=True)
        assert isinstance(robot, FeishuGroupRobot)
        await robot.send_text(None, "daily report")
        await robot.send_markdown(None, "**bold**")
        hook_calls = fake.calls("/open-apis/bot/v2/hook/abc")
        assert [c.json["msg_type"] for c in hook_calls] == ["text", "interactive"]
        unsigned = FeishuGroupRobot(url, retry=FAST, allow_private=True)
        with pytest.raises(Exception, match="19021"):
            await unsigned.send_text(None, "no signature")
        with pytest.raises(InvalidInput):
            await robot.send_video(None, tmp_path / "x.mp4", cover=None, duration_s=1)
    finally:
        fake.stop()


def test_unknown_robot_url_is_refused() -> None:
    with pytest.raises(InvalidInput):
        robot_for_url("https://example.com/hook")
