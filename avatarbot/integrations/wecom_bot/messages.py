"""WeCom AI bot message bodies (webhook plaintext = long-connection `body`) -> IncomingMessage.

Text, mixed, image, voice (WeCom's recognised text), file, video and quotes become one
IncomingMessage; media arrive as Attachments whose `key` is the (5-minute) download URL
and whose `name` holds the per-URL aeskey on the long connection. Unknown message types
still reach the bot as an empty text with raw["unsupported"], so the user gets a clear reply.
"""

from __future__ import annotations

import re
from typing import Any

from avatarbot.bot import card_actions
from avatarbot.bot.types import Attachment, Channel, IncomingMessage
from avatarbot.integrations.wecom_bot.buttons import parse_key

MEDIA_KINDS = {"image": "image", "file": "file", "video": "video"}
_MENTION = re.compile(r"^(\s*@\S+\s*)+")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _part(msgtype: str, data: dict[str, Any]) -> tuple[str, list[Attachment]]:
    """Text and attachments of one (msgtype, object) pair."""
    item = _dict(data.get(msgtype))
    if msgtype == "text":
        return str(item.get("content") or ""), []
    if msgtype == "voice":  # WeCom sends its transcript, no audio
        return str(item.get("content") or ""), []
    if msgtype in MEDIA_KINDS:
        url = str(item.get("url") or "")
        if not url:
            return "", []
        return "", [
            Attachment(kind=MEDIA_KINDS[msgtype], key=url, name=str(item.get("aeskey") or ""))
        ]
    if msgtype == "mixed":
        texts: list[str] = []
        attachments: list[Attachment] = []
        for entry in item.get("msg_item") or []:
            entry = _dict(entry)
            text, more = _part(str(entry.get("msgtype") or ""), entry)
            if text:
                texts.append(text)
            attachments.extend(more)
        return "\n".join(texts), attachments
    return "", []


def parse_message(body: dict[str, Any]) -> IncomingMessage | None:
    """An IncomingMessage for a message body; None without a sender or msgid."""
    user = str(_dict(body.get("from")).get("userid") or "")
    msgid = str(body.get("msgid") or "")
    if not user or not msgid:
        return None
    msgtype = str(body.get("msgtype") or "")
    chat_type = "group" if body.get("chattype") == "group" else "p2p"
    text, attachments = _part(msgtype, body)
    raw: dict[str, Any] = {"msg_type": msgtype}
    if msgtype not in ("text", "voice", "mixed", *MEDIA_KINDS):
        raw["unsupported"] = msgtype
    if chat_type == "group":
        text = _MENTION.sub("", text)  # group text keeps the "@Bot " prefix
    quote = _dict(body.get("quote"))
    if quote:
        quoted, more = _part(str(quote.get("msgtype") or ""), quote)
        attachments.extend(more)
        if quoted:
            raw["quote"] = quoted
            # Agents see the quoted text as context, commands keep working on the new text.
            if not text.startswith("/"):
                text = f"{text}\n\n> {quoted}" if text else f"> {quoted}"
    return IncomingMessage(
        channel=Channel.WECOM_BOT,
        chat_id=str(body.get("chatid") or user),
        user_id=user,
        text=text.strip(),
        message_id=msgid,
        event_id=msgid,
        chat_type=chat_type,
        mentioned=True,  # WeCom only delivers group messages that @-mention the bot
        attachments=attachments,
        raw=raw,
    )


def event_of(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(eventtype, the event's own object) of an event body; ("", {}) when there is none."""
    event = _dict(body.get("event"))
    kind = str(event.get("eventtype") or event.get("event_type") or "")
    return kind, event


def card_event(body: dict[str, Any]) -> IncomingMessage | None:
    """A template_card_event (button press or menu click) as structured input to the agent.

    Two shapes are in use: nested under `template_card_event` (WeCom's doc) and flat on the
    event (node-sdk); the nested one wins."""
    user = str(_dict(body.get("from")).get("userid") or "")
    kind, event = event_of(body)
    if kind != "template_card_event" or not user:
        return None
    nested = _dict(event.get("template_card_event"))
    source = nested or event
    key = str(source.get("event_key") or "")
    selected: dict[str, list[str]] = {}
    for item in _dict(source.get("selected_items")).get("selected_item") or []:
        item = _dict(item)
        options = _dict(item.get("option_ids")).get("option_id") or []
        selected[str(item.get("question_key") or "")] = [str(o) for o in options]
    # {"action", "ref"} as bot.card_actions reads it (our buttons' key is "<action>:<ref>"),
    # plus the raw fields for cards of other kinds.
    action = {
        **parse_key(key),
        "type": "card_action",
        "key": key,
        "task_id": str(source.get("task_id") or ""),
        "card_type": str(source.get("card_type") or ""),
        "selected": selected,
    }
    msgid = str(body.get("msgid") or "")
    # A double click (two events, two msgids) is one event_id: the inbox drops the second.
    fallback = msgid or f"card:{user}:{action['task_id']}:{key}"
    return IncomingMessage(
        channel=Channel.WECOM_BOT,
        chat_id=str(body.get("chatid") or user),
        user_id=user,
        text=f"[card button] {key}".strip(),
        message_id=msgid,
        event_id=card_actions.dedup_key(action, user, fallback),
        chat_type="group" if body.get("chattype") == "group" else "p2p",
        mentioned=True,
        raw={"msg_type": "template_card_event", "card_action": action},
    )
