"""CardStream against the fake CardKit over real HTTP: coalescing, pacing, fallbacks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from avatarbot.bot.streaming import StreamRelay
from avatarbot.bot.types import Reply, ReplyKind
from avatarbot.integrations.feishu.cardkit import TEXT_LIMIT_BYTES, CardStream
from avatarbot.integrations.feishu.client import FeishuClient
from avatarbot.integrations.http import RetryPolicy
from tests.helpers.fake_feishu import FakeFeishu

FAST = RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.02)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeFeishu]:
    server = FakeFeishu().start()
    yield server
    server.stop()


def _stream(fake: FakeFeishu, client: FeishuClient, key: str) -> CardStream:
    async def send_card(content: dict[str, Any], uuid: str) -> str:
        return await client.send_message("oc_unit", "interactive", content, uuid=uuid)

    return CardStream(client, send_card, key)


def _client(fake: FakeFeishu) -> FeishuClient:
    fake.failures.clear()
    return FeishuClient(
        app_id=fake.app_id, app_secret=fake.app_secret, base_url=fake.base_url, retry=FAST
    )


async def test_a_burst_of_tokens_is_coalesced_and_paced(fake: FakeFeishu) -> None:
    client = _client(fake)
    stream = _stream(fake, client, "burst")
    relay = StreamRelay(stream)
    words = [f"w{n} " for n in range(300)]
    started = time.monotonic()
    for word in words:  # 300 tokens over ~1.2 s: far more than 5 updates a second
        await relay.on_event({"type": "token", "text": word})
        await asyncio.sleep(0.004)
    await relay.on_event({"type": "tool_call", "name": "make_video"})
    await relay.on_event({"type": "tool_result", "name": "make_video", "ok": True})
    answer = Reply(ReplyKind.TEXT, text="".join(words), meta={"agent": "a"})
    left = await relay.settle([answer])
    elapsed = time.monotonic() - started
    await client.aclose()

    assert left == [], "the card holds the answer: nothing left to send"
    card = fake.cardkit.card(stream.card_id)
    assert card.text == "".join(words) and card.ended
    assert card.shown["status"] == "✅ make_video", "tool calls show as status lines"
    assert card.rate_limited == 0 and card.sequence_errors == 0
    assert 3 <= stream.updates <= 5 * elapsed + 3, (stream.updates, elapsed)


async def test_a_one_shot_answer_is_one_card(fake: FakeFeishu) -> None:
    client = _client(fake)
    stream = _stream(fake, client, "oneshot")
    answer = Reply(ReplyKind.TEXT, text="Hello.", meta={"agent": "a"})
    video = Reply(ReplyKind.VIDEO, task_id="t1")
    assert await StreamRelay(stream).settle([answer, video]) == [video]
    await client.aclose()
    assert fake.cardkit.card(stream.card_id).text == "Hello."


async def test_an_answer_too_long_for_a_card_goes_plain(fake: FakeFeishu) -> None:
    client = _client(fake)
    stream = _stream(fake, client, "long")
    relay = StreamRelay(stream)
    await relay.on_event({"type": "token", "text": "start "})
    text = "start " + "x" * TEXT_LIMIT_BYTES
    answer = Reply(ReplyKind.TEXT, text=text, meta={"agent": "a"})
    assert await relay.settle([answer]) == [answer]
    await client.aclose()
    assert fake.cardkit.card(stream.card_id).ended


async def test_no_agent_answer_and_nothing_streamed_sends_as_before(fake: FakeFeishu) -> None:
    client = _client(fake)
    stream = _stream(fake, client, "command")
    replies = [Reply.of_text("/help text")]  # a command's reply: not the agent's answer
    assert await StreamRelay(stream).settle(replies) == replies
    await client.aclose()
    assert stream.card_id == ""


async def test_shutdown_mid_answer_ends_streaming(fake: FakeFeishu) -> None:
    from avatarbot.bot.channel import ChatTarget
    from avatarbot.config import FeishuSettings
    from avatarbot.integrations.feishu.channel import FeishuChannel

    fake.failures.clear()
    channel = FeishuChannel(
        FeishuSettings(app_id=fake.app_id, app_secret=fake.app_secret, base_url=fake.base_url),
        retry=FAST,
    )
    stream = channel.open_stream(ChatTarget(chat_id="oc_shutdown"), key="cut")
    assert stream is not None
    stream.update("half an answ", [])
    for _ in range(200):  # the card reaches the chat in the background
        if stream.message_id:
            break
        await asyncio.sleep(0.02)
    assert stream.message_id
    await channel.stop()  # the process stops before the answer is complete
    card = fake.cardkit.card(stream.card_id)
    assert card.ended and card.text == "half an answ"


async def test_streaming_off_means_no_stream() -> None:
    from avatarbot.bot.channel import ChatTarget
    from avatarbot.config import FeishuSettings
    from avatarbot.integrations.feishu.channel import FeishuChannel

    channel = FeishuChannel(FeishuSettings(app_id="a", app_secret="s", streaming=False))
    assert channel.open_stream(ChatTarget(chat_id="oc"), key="k") is None
    await channel.stop()
