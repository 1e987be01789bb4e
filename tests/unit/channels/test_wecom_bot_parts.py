"""WeCom AI bot parts on their own: message parsing, crypto, the stream pump, the send budget."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest
from wechatpy.crypto import PrpCrypto

from avatarbot.errors import InvalidInput, Unauthorized
from avatarbot.integrations.wecom_bot.buttons import actions_card, click_update
from avatarbot.integrations.wecom_bot.crypto import BotCrypto, aes_decrypt, aes_encrypt
from avatarbot.integrations.wecom_bot.messages import card_event, parse_message
from avatarbot.integrations.wecom_bot.outbound import SendBudget
from avatarbot.integrations.wecom_bot.stream import ReplyStream

AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"


def _body(msgtype: str, **extra: object) -> dict[str, object]:
    return {"msgid": "m1", "from": {"userid": "u1"}, "msgtype": msgtype, **extra}


def test_messages_of_every_kind() -> None:
    group = parse_message(
        _body("text", chattype="group", chatid="g1", text={"content": "@RobotA  /video hi"})
    )
    assert group is not None
    assert (group.chat_id, group.chat_type, group.text, group.event_id) == (
        "g1",
        "group",
        "/video hi",
        "m1",
    )
    mixed = parse_message(
        _body("mixed", mixed={"msg_item": [
            {"msgtype": "text", "text": {"content": "look"}},
            {"msgtype": "image", "image": {"url": "https://img/1", "aeskey": "K"}},
        ]})
    )  # fmt: skip
    assert mixed is not None and mixed.text == "look"
    assert [(a.kind, a.key, a.name) for a in mixed.attachments] == [("image", "https://img/1", "K")]
    voice = parse_message(_body("voice", voice={"content": "你好"}))
    assert voice is not None and voice.text == "你好"
    for kind in ("file", "video", "image"):
        media = parse_message(_body(kind, **{kind: {"url": f"https://x/{kind}"}}))
        assert media is not None and media.attachments[0].kind == kind
    quoted = parse_message(
        _body(
            "text",
            text={"content": "why?"},
            quote={"msgtype": "text", "text": {"content": "sky is blue"}},
        )
    )
    assert quoted is not None and quoted.text == "why?\n\n> sky is blue"
    odd = parse_message(_body("location", location={}))
    assert odd is not None and odd.raw["unsupported"] == "location" and odd.text == ""
    assert parse_message({"msgtype": "text"}) is None


def test_card_events_nested_and_flat() -> None:
    nested = card_event(
        _body("event", event={"eventtype": "template_card_event", "template_card_event": {
            "event_key": "another_take", "task_id": "t1",
            "selected_items": {"selected_item": [{"question_key": "q", "option_ids": {"option_id": ["a"]}}]},
        }})
    )  # fmt: skip
    assert nested is not None
    action = nested.raw["card_action"]
    assert (action["key"], action["task_id"], action["selected"]) == (
        "another_take",
        "t1",
        {"q": ["a"]},
    )
    flat = card_event(_body("event", event={"eventtype": "template_card_event", "event_key": "k2"}))
    assert flat is not None and flat.raw["card_action"]["key"] == "k2"


def test_video_buttons_card_click_and_double_click() -> None:
    card = actions_card("abc123:video")
    assert card["card_type"] == "button_interaction" and card["task_id"] == "avb-abc123-video"
    keys = [b["key"] for b in card["button_list"]]
    assert keys == [
        "another_take:abc123:video",
        "other_voice:abc123:video",
        "audio_only:abc123:video",
    ]

    def click(msgid: str) -> object:
        event = {
            "event_key": keys[0],
            "task_id": card["task_id"],
            "card_type": "button_interaction",
        }
        body = _body(
            "event", event={"eventtype": "template_card_event", "template_card_event": event}
        )
        return card_event({**body, "msgid": msgid})

    first, second = click("e1"), click("e2")
    assert first is not None and second is not None
    # bot.card_actions' structured input; two clicks share one event id (the inbox drops one).
    assert first.raw["card_action"]["action"] == "another_take"
    assert first.raw["card_action"]["ref"] == "abc123:video"
    assert first.event_id == second.event_id == "card:abc123:another_take:u1"
    update = click_update(first.raw["card_action"], card["task_id"], "u1")
    assert update is not None and update["response_type"] == "update_template_card"
    assert update["template_card"]["task_id"] == card["task_id"] and update["userids"] == ["u1"]
    assert update["template_card"]["main_title"]["desc"] == "Making another take…"
    # A card that is not ours: no update, the agent still gets the raw key.
    other = card_event(_body("event", event={"eventtype": "template_card_event", "event_key": "k"}))
    assert other is not None and other.raw["card_action"]["ref"] == ""
    assert click_update(other.raw["card_action"], "t", "u1") is None


def test_crypto_matches_wechatpy_and_refuses_bad_input() -> None:
    crypto = BotCrypto(token="tok", encoding_aes_key=AES_KEY)
    reference = PrpCrypto(base64.b64decode(AES_KEY + "="))
    message = json.dumps({"msgid": "1", "text": "你好"}, ensure_ascii=False)
    assert reference.decrypt(crypto.encrypt(message), "") == message
    theirs = reference.encrypt(message, "").decode()
    sig = crypto.signature("1", "n", theirs)
    assert crypto.open_envelope(sig, "1", "n", theirs) == message
    with pytest.raises(Unauthorized):
        crypto.open_envelope("0" * 40, "1", "n", theirs)
    with pytest.raises(InvalidInput):  # encrypted for a receiveid, as a WeCom app would
        crypto.decrypt(reference.encrypt(message, "corp").decode())
    with pytest.raises(InvalidInput):
        BotCrypto(token="t", encoding_aes_key="b" * 43).decrypt(theirs)
    with pytest.raises(InvalidInput):
        crypto.decrypt(base64.b64encode(b"short").decode())
    key = base64.b64decode(AES_KEY + "=")
    media = b"\x00\x01" * 1000
    assert aes_decrypt(key, aes_encrypt(key, media)) == media  # media files: no framing


async def test_stream_keeps_one_frame_in_flight_and_never_skips_the_final() -> None:
    pushed: list[dict[str, object]] = []
    in_flight = 0
    release, first_sent = asyncio.Event(), asyncio.Event()

    async def push(body: dict[str, object]) -> None:
        nonlocal in_flight
        in_flight += 1
        assert in_flight == 1
        pushed.append(body["stream"])  # type: ignore[arg-type]
        if len(pushed) == 1:
            first_sent.set()
            await release.wait()  # the first ack is slow
        in_flight -= 1

    stream = ReplyStream(push, min_interval_s=0.0, keepalive_s=60, max_age_s=60)
    stream.add_token("Hel")
    await asyncio.wait_for(first_sent.wait(), 5)
    for piece in ("lo", " wor", "ld"):  # arrive while the first frame waits for its ack
        stream.add_token(piece)
    stream.add_text("Hello world!")
    finishing = asyncio.create_task(stream.finish())
    release.set()
    await asyncio.wait_for(finishing, 5)
    assert [p["content"] for p in pushed] == ["Hel", "Hello world!"]  # piled-up snapshots coalesced
    assert [p["finish"] for p in pushed] == [False, True] and stream.finished


async def test_stream_finishes_itself_at_its_window_and_cuts_to_20480_bytes() -> None:
    pushed: list[dict[str, object]] = []

    async def push(body: dict[str, object]) -> None:
        pushed.append(body["stream"])  # type: ignore[arg-type]

    stream = ReplyStream(push, min_interval_s=0.0, keepalive_s=0.05, max_age_s=0.3)
    stream.add_text("字" * 8000)  # 24 000 bytes
    started = time.monotonic()
    await asyncio.wait_for(stream._done.wait(), 5)
    assert time.monotonic() - started >= 0.25
    assert pushed[-1]["finish"] is True and len(pushed) >= 3  # keep-alive frames in between
    assert len(str(pushed[-1]["content"]).encode()) <= 20480
    assert stream.overflow and str(pushed[-1]["content"]) + stream.overflow == "字" * 8000
    assert not stream.open


async def test_budget_queues_instead_of_dropping() -> None:
    budget = SendBudget(((2, 0.3),))
    started = time.monotonic()
    done: list[float] = []

    async def send() -> None:
        await budget.take("chat")
        done.append(time.monotonic() - started)

    await asyncio.gather(*(send() for _ in range(5)))
    assert len(done) == 5 and budget.waited == 2  # the 3rd and the 5th queued
    assert done[2] >= 0.29 and done[4] >= 0.59  # 2 per 0.3 s window
    await budget.take("other chat")  # other conversations are not held up
    assert time.monotonic() - started < done[4] + 0.1


def test_the_channel_is_a_channel_sender() -> None:
    from avatarbot.bot.channel import ChannelSender
    from avatarbot.config import WecomBotSettings
    from avatarbot.integrations.wecom_bot.channel import WecomBotChannel

    channel = WecomBotChannel(WecomBotSettings(bot_id="b", secret="s"))
    assert isinstance(channel, ChannelSender) and channel.edits_messages
    assert WecomBotSettings(bot_id="b", secret="s").enabled
    assert not WecomBotSettings(mode="webhook", bot_id="b", secret="s").enabled


async def test_media_is_downloaded_decrypted_and_capped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os

    from aiohttp import web

    from avatarbot.integrations.wecom_bot.media import download_media

    key_b64 = base64.b64encode(os.urandom(32)).decode().rstrip("=")
    key = base64.b64decode(key_b64 + "=")
    photo = os.urandom(5000)
    files = {
        "/photo": aes_encrypt(key, photo),
        "/junk": b"x" * 64,
        "/big": aes_encrypt(key, b"b" * 4096),
    }

    async def handle(request: web.Request) -> web.Response:
        headers = {"Content-Disposition": "attachment; filename*=UTF-8''%E7%85%A7%E7%89%87.jpg"}
        return web.Response(body=files[request.path], headers=headers)

    app = web.Application()
    app.router.add_get("/{name}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    try:
        path = await download_media(f"{base}/photo", key_b64, tmp_path)
        assert path.name == "照片.jpg" and path.read_bytes() == photo
        with pytest.raises(InvalidInput, match="could not be decrypted"):
            await download_media(f"{base}/junk", key_b64, tmp_path)
        with pytest.raises(InvalidInput, match="over"):
            await download_media(f"{base}/big", key_b64, tmp_path, max_bytes=1024)
    finally:
        await runner.cleanup()


def test_a_schedule_asked_for_in_an_ai_bot_chat_targets_that_chat() -> None:
    from avatarbot.agents.tools.schedule import default_target
    from avatarbot.scheduler.validation import validate_target

    single = parse_message(_body("text", text={"content": "every day at 9"}))
    group = parse_message(_body("text", chattype="group", chatid="g7", text={"content": "@b hi"}))
    assert single is not None and group is not None
    assert validate_target(default_target(single)) == {
        "platform": "wecom_bot", "chat_id": "u1", "chat_type": "p2p"
    }  # fmt: skip
    assert validate_target(default_target(group))["chat_type"] == "group"
    stored = validate_target(default_target(single))
    assert validate_target(stored) == stored  # an update re-checks the stored target
    with pytest.raises(InvalidInput, match="needs a chat_id"):
        validate_target({"platform": "wecom_bot"})
