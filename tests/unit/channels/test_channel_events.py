"""Parsing Feishu schema 2.0 events and WeCom callback XML into IncomingMessage."""

from __future__ import annotations

import json
from typing import Any

from avatarbot.integrations.feishu.events import parse_message_event
from avatarbot.integrations.wecom.crypto import parse_xml
from avatarbot.integrations.wecom.events import parse_message

BOT = "ou_bot"


def _event(message_type: str, content: dict[str, Any], **message: Any) -> dict[str, Any]:
    return {
        "schema": "2.0",
        "header": {"event_id": "ev1", "event_type": "im.message.receive_v1", "token": "t"},
        "event": {
            "sender": {"sender_id": {"open_id": "ou_user"}, "sender_type": "user"},
            "message": {
                "message_id": "om_1",
                "chat_id": "oc_1",
                "chat_type": "p2p",
                "message_type": message_type,
                "content": json.dumps(content, ensure_ascii=False),
                **message,
            },
        },
    }


def test_text_p2p() -> None:
    msg = parse_message_event(_event("text", {"text": "/video 你好"}), BOT)
    assert msg is not None
    assert (msg.text, msg.chat_id, msg.user_id, msg.event_id, msg.chat_type) == (
        "/video 你好",
        "oc_1",
        "ou_user",
        "ev1",
        "p2p",
    )


def test_group_mention_matched_by_open_id_not_name() -> None:
    mentions = [
        {"key": "@_user_1", "id": {"open_id": BOT}, "name": "Some New Display Name"},
        {"key": "@_user_2", "id": {"open_id": "ou_alice"}, "name": "Alice"},
    ]
    event = _event("text", {"text": "@_user_1 hi @_user_2"}, chat_type="group", mentions=mentions)
    msg = parse_message_event(event, BOT)
    assert msg is not None and msg.mentioned and msg.chat_type == "group"
    assert msg.text == "hi @Alice"
    only_alice = _event("text", {"text": "@_user_2 hi"}, chat_type="group", mentions=mentions[1:])
    other = parse_message_event(only_alice, BOT)
    assert other is not None and not other.mentioned


def test_post_rich_text_with_locale_and_image() -> None:
    content = {
        "zh_cn": {
            "title": "标题",
            "content": [
                [{"tag": "at", "user_id": "@_user_1"}, {"tag": "text", "text": " /video 第一行"}],
                [
                    {"tag": "a", "text": "link", "href": "https://x"},
                    {"tag": "img", "image_key": "img_1"},
                ],
            ],
        }
    }
    mentions = [{"key": "@_user_1", "id": {"open_id": BOT}, "name": "bot"}]
    msg = parse_message_event(_event("post", content, chat_type="group", mentions=mentions), BOT)
    assert msg is not None and msg.mentioned
    assert msg.text.splitlines() == ["标题", "/video 第一行", "link"]
    assert [(a.kind, a.key) for a in msg.attachments] == [("image", "img_1")]


def test_media_messages_become_attachments() -> None:
    image = parse_message_event(_event("image", {"image_key": "img_9"}), BOT)
    audio = parse_message_event(_event("audio", {"file_key": "file_a", "duration": 2000}), BOT)
    doc = parse_message_event(_event("file", {"file_key": "file_f", "file_name": "a.pdf"}), BOT)
    assert image and image.attachments[0].kind == "image" and image.attachments[0].key == "img_9"
    assert audio and audio.attachments[0].kind == "audio" and audio.attachments[0].key == "file_a"
    assert doc and doc.attachments[0].name == "a.pdf"


def test_ignored_events() -> None:
    other_type = _event("text", {"text": "x"})
    other_type["header"]["event_type"] = "im.chat.member.bot.added_v1"
    assert parse_message_event(other_type, BOT) is None
    from_app = _event("text", {"text": "x"})
    from_app["event"]["sender"]["sender_type"] = "app"
    assert parse_message_event(from_app, BOT) is None
    broken = _event("text", {})
    broken["event"]["message"]["content"] = "{not json"
    msg = parse_message_event(broken, BOT)
    assert msg is not None and msg.text == ""
    assert (
        parse_message_event({"header": {"event_type": "im.message.receive_v1"}, "event": {}}, BOT)
        is None
    )


def _xml(body: str) -> dict[str, Any]:
    return parse_xml(
        f"<xml><ToUserName>corp</ToUserName><FromUserName>zhang</FromUserName><CreateTime>17</CreateTime>{body}</xml>"
    )


def test_wecom_text_image_voice_event() -> None:
    text = parse_message(
        _xml("<MsgType>text</MsgType><Content><![CDATA[/help]]></Content><MsgId>42</MsgId>")
    )
    assert text is not None and (text.text, text.event_id, text.chat_id, text.user_id) == (
        "/help",
        "42",
        "zhang",
        "zhang",
    )
    image = parse_message(
        _xml(
            "<MsgType>image</MsgType><PicUrl>http://p</PicUrl><MediaId>m1</MediaId><MsgId>43</MsgId>"
        )
    )
    assert (
        image is not None
        and image.attachments[0].kind == "image"
        and image.attachments[0].key == "m1"
    )
    voice = parse_message(
        _xml("<MsgType>voice</MsgType><MediaId>v1</MediaId><Format>amr</Format><MsgId>44</MsgId>")
    )
    assert voice is not None and voice.attachments[0].kind == "audio"
    enter = parse_message(_xml("<MsgType>event</MsgType><Event>enter_agent</Event>"))
    assert enter is not None and enter.text == "/help" and enter.event_id == "zhang:17:enter_agent"
    assert parse_message(_xml("<MsgType>event</MsgType><Event>LOCATION</Event>")) is None
    # Message types the bot cannot read still reach it, flagged, so the user gets a clear reply.
    location = parse_message(_xml("<MsgType>location</MsgType><MsgId>45</MsgId>"))
    assert location is not None and location.raw["unsupported"] == "location"
    video = parse_message(_xml("<MsgType>video</MsgType><MediaId>vd1</MediaId><MsgId>46</MsgId>"))
    assert video is not None and video.attachments[0].kind == "video"


def test_wecom_xml_parser_is_strict() -> None:
    import pytest

    from avatarbot.errors import InvalidInput

    nested = parse_xml("<xml><Event>pic</Event><SendPicsInfo><Count>1</Count></SendPicsInfo></xml>")
    assert nested == {"Event": "pic", "SendPicsInfo": {"Count": "1"}}
    with pytest.raises(InvalidInput):
        parse_xml("<root><a>1</a></root>")
    with pytest.raises(InvalidInput):
        parse_xml("<xml><a>1</a>")
    lol = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    bomb = f'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY l0 "lol">{lol}]><xml><a>&l9;</a></xml>'
    with pytest.raises(InvalidInput):
        parse_xml(bomb)
