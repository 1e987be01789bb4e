"""Pushing to a chat without an incoming message (what scheduled reports use)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from avatarbot.bot.channel import ChatTarget
from avatarbot.bot.types import Reply, ReplyKind
from avatarbot.config import Settings, WecomSettings
from avatarbot.errors import ExternalServiceError
from avatarbot.integrations.http import RetryPolicy
from avatarbot.integrations.wecom.channel import WecomChannel
from avatarbot.services import Services
from tests.conftest import make_settings
from tests.helpers.chat_media import make_test_video
from tests.helpers.fake_wecom import CORP_ID, FakeWecom

FAST = RetryPolicy(attempts=2, base_delay_s=0.01, max_delay_s=0.02)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The fake robot listens on 127.0.0.1: a private address, refused unless allowed.
    return make_settings(tmp_path, scheduler={"allow_private_urls": True})


@pytest.fixture
def fake() -> Any:
    server = FakeWecom().start()
    yield server
    server.stop()


def _channel(fake: FakeWecom) -> WecomChannel:
    settings = WecomSettings(
        corp_id=CORP_ID, agent_id="1000002", secret=fake.secret, base_url=fake.base_url
    )
    return WecomChannel(settings, retry=FAST)


async def test_wecom_users_get_message_send_and_groups_get_appchat(
    fake: FakeWecom, tmp_path: Path
) -> None:
    channel = _channel(fake)
    await channel.send_text(ChatTarget(chat_id="zhang", user_id="zhang"), "hi")
    await channel.send_markdown(ChatTarget(chat_id="wrkchat1", chat_type="group"), "**report**")
    video = make_test_video(tmp_path / "v.mp4", 0.6)
    await channel.send_video(
        ChatTarget(chat_id="wrkchat1", chat_type="group"), video, cover=None, duration_s=0.6
    )
    apis = [(m["api"], m["msgtype"]) for m in fake.messages]
    assert apis == [
        ("message/send", "text"),
        ("appchat/send", "markdown"),
        ("appchat/send", "video"),
    ]
    assert fake.messages[1]["chatid"] == "wrkchat1"
    assert await channel.send_message("zhang", "seed api") is True
    await channel.stop()


async def test_bot_send_to_target_uses_channels_and_robots(app: Any, fake: FakeWecom) -> None:
    services: Services = app.state.services
    channel = _channel(fake)
    services.bot.register_sender("wecom", channel)
    await services.bot.send_to_target("wecom", {"user_id": "lisi"}, Reply.of_text("daily numbers"))
    assert (
        fake.messages[-1]["touser"] == "lisi"
        and fake.messages[-1]["text"]["content"] == "daily numbers"
    )
    robot_url = f"{fake.base_url}/cgi-bin/webhook/send?key=k1"
    await services.bot.send_to_target(
        "webhook", {"url": robot_url}, Reply(ReplyKind.MARKDOWN, text="# done")
    )
    assert fake.robot_messages[-1]["markdown"]["content"] == "# done"
    with pytest.raises(ExternalServiceError):
        await services.bot.send_to_target("feishu", {"chat_id": "oc_1"}, Reply.of_text("x"))
    await channel.stop()


async def test_feishu_targets_by_chat_or_by_user(app: Any) -> None:
    from avatarbot.config import FeishuSettings
    from avatarbot.integrations.feishu.channel import FeishuChannel
    from tests.helpers.fake_feishu import FakeFeishu

    fake = FakeFeishu().start()
    try:
        settings = FeishuSettings(
            app_id=fake.app_id, app_secret=fake.app_secret, base_url=fake.base_url
        )
        channel = FeishuChannel(settings, retry=FAST)
        services: Services = app.state.services
        services.bot.register_sender("feishu", channel)
        await services.bot.send_to_target(
            "feishu", {"chat_id": "oc_team"}, Reply.of_text("to the group")
        )
        await services.bot.send_to_target(
            "feishu", {"user_id": "ou_boss"}, Reply.of_text("to a person")
        )
        await services.bot.send_to_target(
            "feishu", ChatTarget.from_dict({"user_id": "u123"}), Reply.of_text("by user id")
        )
        sent = [(m["receive_id"], m["receive_id_type"]) for m in fake.sent("text")]
        assert sent == [("oc_team", "chat_id"), ("ou_boss", "open_id"), ("u123", "user_id")]
        assert await channel.send_message("oc_team", "seed api") is True
        await channel.stop()
    finally:
        fake.stop()


def test_long_wecom_texts_are_split_on_byte_limits() -> None:
    from avatarbot.integrations.wecom.channel import split_utf8

    text = "\n".join(f"第{i}行：" + "数据" * 40 for i in range(60))
    parts = split_utf8(text, 2048)
    assert len(parts) > 1 and all(len(p.encode()) <= 2048 for p in parts)
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")
    one_line = "长" * 2000  # 6000 bytes without a line break
    cut = split_utf8(one_line, 2048)
    assert all(len(p.encode()) <= 2048 for p in cut) and "".join(cut) == one_line
    assert split_utf8("short", 2048) == ["short"]
