"""Schema 2.0 event parsing: im.message.receive_v1 -> IncomingMessage."""

from __future__ import annotations

import json
import logging
from typing import Any

from avatarbot.bot.types import Attachment, Channel, IncomingMessage

logger = logging.getLogger(__name__)

MESSAGE_RECEIVE = "im.message.receive_v1"


CARD_ACTION = "card.action.trigger"  # a button pressed on one of our cards


def event_type(body: dict[str, Any]) -> str:
    header = body.get("header")
    if isinstance(header, dict):
        return str(header.get("event_type") or "")
    event = body.get("event")  # schema 1.0 kept for completeness
    return str(event.get("type") or "") if isinstance(event, dict) else ""


def parse_message_event(body: dict[str, Any], bot_open_id: str = "") -> IncomingMessage | None:
    """An IncomingMessage for a receive_v1 event, None for anything else or malformed input."""
    if event_type(body) != MESSAGE_RECEIVE:
        return None
    header = body.get("header") or {}
    event = body.get("event") or {}
    message = event.get("message") if isinstance(event, dict) else None
    if not isinstance(message, dict) or not message.get("chat_id"):
        return None
    sender = (event.get("sender") or {}).get("sender_id") or {}
    if (event.get("sender") or {}).get("sender_type") == "app":
        return None  # our own (or another bot's) messages never trigger a reply
    mentions = [m for m in (message.get("mentions") or []) if isinstance(m, dict)]
    mentioned, bot_keys = _bot_mentions(mentions, bot_open_id)
    msg_type = str(message.get("message_type") or "")
    try:
        content = json.loads(message.get("content") or "{}")
    except (TypeError, ValueError):
        content = {}
    if not isinstance(content, dict):
        content = {}
    text, attachments = _content(msg_type, content)
    text = _resolve_mentions(text, mentions, bot_keys)
    return IncomingMessage(
        channel=Channel.FEISHU,
        chat_id=str(message["chat_id"]),
        user_id=str(sender.get("open_id") or sender.get("user_id") or ""),
        text=text.strip(),
        message_id=str(message.get("message_id") or ""),
        event_id=str(header.get("event_id") or message.get("message_id") or ""),
        chat_type="group" if message.get("chat_type") == "group" else "p2p",
        mentioned=mentioned,
        attachments=attachments,
        thread_id=str(message.get("thread_id") or ""),
        raw=_raw(msg_type, text, attachments, str(message.get("parent_id") or "")),
    )


def _raw(msg_type: str, text: str, attachments: list[Attachment], parent_id: str) -> dict[str, Any]:
    raw: dict[str, Any] = {"message_type": msg_type}
    if parent_id:  # a reply: "/avatar" in reply to a photo uses that photo
        raw["parent_id"] = parent_id
    if not text.strip() and not attachments:
        # A sticker, shared chat, location, …: the bot says what it can read (bot.user_media).
        raw["unsupported"] = msg_type or "unknown"
    return raw


def _bot_mentions(mentions: list[dict[str, Any]], bot_open_id: str) -> tuple[bool, set[str]]:
    """Whether the bot itself was @-mentioned (by open_id, never by display name)."""
    keys: set[str] = set()
    for mention in mentions:
        ident = mention.get("id") or {}
        open_id = ident.get("open_id") if isinstance(ident, dict) else None
        if bot_open_id and open_id == bot_open_id:
            keys.add(str(mention.get("key") or ""))
    if not bot_open_id and mentions:
        # Bot identity unknown (bot/v3/info failed): Feishu only delivers group messages that
        # @-mention the bot unless the app has the all-group-messages scope, so accept.
        logger.warning("Feishu bot open_id unknown; treating any @-mention as addressed to us")
        return True, {str(m.get("key") or "") for m in mentions}
    return bool(keys), keys


def _resolve_mentions(text: str, mentions: list[dict[str, Any]], bot_keys: set[str]) -> str:
    for mention in mentions:
        key = str(mention.get("key") or "")
        if not key:
            continue
        text = text.replace(key, "" if key in bot_keys else f"@{mention.get('name', '')}")
    # Removing "@bot" leaves stray spaces: tidy each line so "/video …" is still a command.
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def _content(msg_type: str, content: dict[str, Any]) -> tuple[str, list[Attachment]]:
    if msg_type == "text":
        return str(content.get("text") or ""), []
    if msg_type == "post":
        return _post_text(content), _post_images(content)
    if msg_type == "image":
        return "", [Attachment(kind="image", key=str(content.get("image_key") or ""))]
    if msg_type == "audio":
        return "", [Attachment(kind="audio", key=str(content.get("file_key") or ""))]
    if msg_type in ("file", "media"):
        return "", [
            Attachment(
                kind="file" if msg_type == "file" else "video",
                key=str(content.get("file_key") or ""),
                name=str(content.get("file_name") or ""),
            )
        ]
    return "", []


def _post_body(content: dict[str, Any]) -> dict[str, Any]:
    # Rich text arrives either bare {"title","content"} or per locale {"zh_cn": {...}}.
    if "content" in content:
        return content
    for value in content.values():
        if isinstance(value, dict) and "content" in value:
            return value
    return {}


def _post_text(content: dict[str, Any]) -> str:
    body = _post_body(content)
    lines: list[str] = []
    title = str(body.get("title") or "").strip()
    if title:
        lines.append(title)
    for paragraph in body.get("content") or []:
        parts: list[str] = []
        for element in paragraph if isinstance(paragraph, list) else []:
            if not isinstance(element, dict):
                continue
            tag = element.get("tag")
            if tag in ("text", "a", "md"):
                parts.append(str(element.get("text") or ""))
            elif tag == "at":
                parts.append(str(element.get("user_id") or ""))
            elif tag == "code_block":
                parts.append(str(element.get("text") or ""))
        line = "".join(parts).strip()
        if line:
            lines.append(line)
    return "\n".join(lines)


def _post_images(content: dict[str, Any]) -> list[Attachment]:
    found: list[Attachment] = []
    for paragraph in _post_body(content).get("content") or []:
        for element in paragraph if isinstance(paragraph, list) else []:
            if isinstance(element, dict) and element.get("tag") == "img":
                found.append(Attachment(kind="image", key=str(element.get("image_key") or "")))
    return found
