"""The Feishu and WeCom API clients against fake platforms over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from avatarbot.errors import ExternalServiceError
from avatarbot.integrations.feishu.client import FeishuAPIError, FeishuClient
from avatarbot.integrations.http import RetryPolicy
from avatarbot.integrations.wecom.client import WecomAPIError, WecomClient
from tests.helpers.fake_feishu import BOT_OPEN_ID, FakeFeishu
from tests.helpers.fake_wecom import CORP_ID, FakeWecom

FAST = RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.02)


@pytest.fixture(scope="module")
def feishu_fake() -> Iterator[FakeFeishu]:
    fake = FakeFeishu().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def wecom_fake() -> Iterator[FakeWecom]:
    fake = FakeWecom().start()
    yield fake
    fake.stop()


@pytest.fixture
def feishu(feishu_fake: FakeFeishu) -> FeishuClient:
    feishu_fake.failures.clear()
    feishu_fake.requests.clear()
    return FeishuClient(
        app_id=feishu_fake.app_id,
        app_secret=feishu_fake.app_secret,
        base_url=feishu_fake.base_url,
        retry=FAST,
    )


@pytest.fixture
def wecom(wecom_fake: FakeWecom) -> WecomClient:
    wecom_fake.failures.clear()
    wecom_fake.requests.clear()
    return WecomClient(
        corp_id=CORP_ID,
        secret=wecom_fake.secret,
        agent_id="1000002",
        base_url=wecom_fake.base_url,
        retry=FAST,
    )


async def test_feishu_token_is_cached_and_refetched_when_invalid(
    feishu: FeishuClient, feishu_fake: FakeFeishu
) -> None:
    assert await feishu.bot_open_id() == BOT_OPEN_ID
    await feishu.send_message("oc_1", "text", {"text": "a"})
    assert len(feishu_fake.calls("/open-apis/auth")) == 1
    feishu_fake.invalidate_tokens()
    await feishu.send_message("oc_1", "text", {"text": "b"})
    assert len(feishu_fake.calls("/open-apis/auth")) == 2
    await feishu.aclose()


async def test_feishu_retries_5xx_then_succeeds(
    feishu: FeishuClient, feishu_fake: FakeFeishu
) -> None:
    feishu_fake.failures.add("/open-apis/im/v1/messages", times=2, status=503)
    message_id = await feishu.send_message("oc_1", "text", {"text": "x"}, uuid="task-1:ack")
    assert message_id.startswith("om_")
    assert len(feishu_fake.calls("/open-apis/im/v1/messages")) == 3
    # The same uuid again (a retried send) returns the first message instead of a second one.
    before = len(feishu_fake.messages)
    assert await feishu.send_message("oc_1", "text", {"text": "x"}, uuid="task-1:ack") == message_id
    assert len(feishu_fake.messages) == before
    await feishu.aclose()


async def test_feishu_gives_up_and_reports_codes(
    feishu: FeishuClient, feishu_fake: FakeFeishu
) -> None:
    feishu_fake.failures.add("/open-apis/im/v1/messages", times=10, status=500)
    with pytest.raises(ExternalServiceError, match="after 3 tries"):
        await feishu.send_message("oc_1", "text", {"text": "x"})
    feishu_fake.failures.clear()
    feishu_fake.failures.add(
        "/open-apis/im/v1/messages",
        times=1,
        status=400,
        body={"code": 230002, "msg": "bot not in chat"},
    )
    with pytest.raises(FeishuAPIError) as info:
        await feishu.send_message("oc_1", "text", {"text": "x"})
    assert info.value.code == 230002
    feishu_fake.failures.add(
        "/open-apis/im/v1/messages", times=1, status=400, body={"code": 99991400, "msg": "rate"}
    )
    assert await feishu.send_message("oc_1", "text", {"text": "later"})
    await feishu.aclose()


async def test_feishu_uploads_send_form_fields(
    feishu: FeishuClient, feishu_fake: FakeFeishu, tmp_path: Path
) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"0" * 100)
    key = await feishu.upload_file(clip, file_type="mp4", duration_ms=1600)
    assert feishu_fake.uploads[key]["form"] == {
        "file_type": "mp4",
        "file_name": "clip.mp4",
        "duration": "1600",
    }
    assert feishu_fake.uploads[key]["data"] == clip.read_bytes()
    await feishu.patch_card("om_x", {"elements": []})
    assert feishu_fake.patches[-1]["message_id"] == "om_x"
    await feishu.aclose()


async def test_wecom_token_refetch_rate_limit_and_errors(
    wecom: WecomClient, wecom_fake: FakeWecom, tmp_path: Path
) -> None:
    await wecom.send_message(touser="u1", msgtype="text", payload={"content": "a"})
    wecom_fake.expire_tokens()
    await wecom.send_message(touser="u1", msgtype="text", payload={"content": "b"})
    assert len(wecom_fake.calls("/cgi-bin/gettoken")) == 2
    wecom_fake.failures.add(
        "/cgi-bin/message/send", times=2, status=200, body={"errcode": 45009, "errmsg": "freq"}
    )
    await wecom.send_message(touser="u1", msgtype="text", payload={"content": "c"})
    assert [m["text"]["content"] for m in wecom_fake.sent("text")][-3:] == ["a", "b", "c"]
    wecom_fake.failures.add(
        "/cgi-bin/appchat/send", times=1, status=200, body={"errcode": 86003, "errmsg": "no chat"}
    )
    with pytest.raises(WecomAPIError) as info:
        await wecom.send_appchat(chatid="c1", msgtype="text", payload={"content": "x"})
    assert info.value.errcode == 86003
    big = tmp_path / "big.mp4"
    with big.open("wb") as fh:
        fh.truncate(10 * 1024 * 1024 + 1)
    uploads_before = len(wecom_fake.calls("/cgi-bin/media/upload"))
    with pytest.raises(WecomAPIError, match="limit"):
        await wecom.upload_media(big, "video")
    assert len(wecom_fake.calls("/cgi-bin/media/upload")) == uploads_before
    await wecom.aclose()
