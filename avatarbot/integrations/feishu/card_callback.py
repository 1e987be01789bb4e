"""card.action.trigger (Feishu card button callbacks) -> IncomingMessage with raw["card_action"].

Answered at once with a toast (Feishu wants an answer within 3 s); the work happens after,
in the bot, and its result arrives as new messages. Webhook and long connection share this.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from avatarbot.bot import card_actions
from avatarbot.bot.types import Channel, IncomingMessage

logger = logging.getLogger(__name__)


def _as_dict(value: Any) -> dict[str, Any]:
    """`action.value` may arrive as an object, a JSON string, or a doubly encoded string."""
    for _ in range(3):
        if isinstance(value, dict):
            return value
        if not isinstance(value, str):
            break
        try:
            value = json.loads(value)
        except ValueError:
            break
    return {}


def parse_card_action(body: dict[str, Any]) -> IncomingMessage | None:
    header = body.get("header") if isinstance(body.get("header"), dict) else {}
    event = body.get("event") if isinstance(body.get("event"), dict) else {}
    operator = event.get("operator") if isinstance(event.get("operator"), dict) else {}
    context = event.get("context") if isinstance(event.get("context"), dict) else {}
    action = event.get("action") if isinstance(event.get("action"), dict) else {}
    chat_id = str(context.get("open_chat_id") or "")
    user_id = str(operator.get("open_id") or operator.get("user_id") or "")
    if not chat_id or not user_id:
        return None
    value = _as_dict(action.get("value"))
    platform_event = str(header.get("event_id") or "")
    return IncomingMessage(
        channel=Channel.FEISHU,
        chat_id=chat_id,
        user_id=user_id,
        text="",
        message_id=str(context.get("open_message_id") or ""),
        event_id=card_actions.dedup_key(value, user_id, platform_event),
        mentioned=True,  # a click on our own card is addressed to us, in groups too
        raw={"card_action": value, "message_type": "card_action", "event_id": platform_event},
    )


def answer(body: dict[str, Any]) -> dict[str, Any]:
    """The toast for a click (the callback's HTTP body or long-connection ack)."""
    event = body.get("event") if isinstance(body.get("event"), dict) else {}
    action = event.get("action") if isinstance(event.get("action"), dict) else {}
    kind, text = card_actions.toast(_as_dict(action.get("value")))
    return {"toast": {"type": kind, "content": text}}


def handle_card_action(channel: Any, body: dict[str, Any]) -> dict[str, Any]:
    msg = parse_card_action(body)
    if msg is None:
        return {"toast": {"type": "error", "content": "This button could not be read."}}
    if not msg.raw["card_action"].get("action"):
        return answer(body)
    if channel.bot is None:
        logger.warning("Feishu card action dropped: the bot service is not running")
        return {"toast": {"type": "error", "content": "The bot is not running."}}
    channel.bot.submit(msg)
    return answer(body)


def actions_card(ref: str) -> dict[str, Any]:
    """Card JSON 2.0 with the video's buttons; each calls back with {"action", "ref"}."""
    elements: list[dict[str, Any]] = [
        {
            "tag": "button",
            "text": {"tag": "plain_text", "content": button["label"]},
            "type": "primary" if index == 0 else "default",
            "behaviors": [{"type": "callback", "value": button["value"]}],
        }
        for index, button in enumerate(card_actions.buttons(ref))
    ]
    return {"schema": "2.0", "body": {"elements": elements}}
