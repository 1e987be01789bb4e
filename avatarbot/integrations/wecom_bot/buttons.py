"""The buttons under a video reply as a WeCom template card (button_interaction).

Each button's `key` is "<action>:<ref>" (ref = "<task id>:video", bot.card_actions), so a
template_card_event carries all the bot needs. A click is answered at once (WeCom wants the
card update within 5 s): the same card, its description saying what happens now. The work
runs in the bot; its replies arrive as new messages.
"""

from __future__ import annotations

import re
from typing import Any

from avatarbot.bot import card_actions

TITLE = "Your video"
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-@]")  # WeCom's task_id alphabet


def card_task_id(ref: str) -> str:
    """The card's task_id (≤ 128 bytes of [A-Za-z0-9_-@]), one per video."""
    return ("avb-" + _UNSAFE.sub("-", ref))[:128]


def actions_card(ref: str, *, note: str = "", task_id: str = "") -> dict[str, Any]:
    buttons = [
        {
            "text": button["label"],
            "style": 1 if index == 0 else 2,
            "key": f"{button['value']['action']}:{ref}",
        }
        for index, button in enumerate(card_actions.buttons(ref))
    ]
    return {
        "card_type": "button_interaction",
        "main_title": {"title": TITLE, "desc": note or "Not quite right? Try one of these."},
        "button_list": buttons,
        "task_id": task_id or card_task_id(ref),
    }


def parse_key(key: str) -> dict[str, str]:
    """{"action", "ref"} of a button key; a foreign key keeps its text as the action."""
    action, sep, ref = key.partition(":")
    if sep and action in card_actions.ACTIONS:
        return {"action": action, "ref": ref}
    return {"action": key, "ref": ""}


def click_update(value: dict[str, Any], task_id: str, user_id: str) -> dict[str, Any] | None:
    """The update_template_card answer to a click on our card; None for other cards."""
    ref = str(value.get("ref") or "")
    if not ref:
        return None
    _, text = card_actions.toast(value)
    return {
        "response_type": "update_template_card",
        "userids": [user_id],  # only the clicker's copy says "making another take…"
        "template_card": actions_card(ref, note=text, task_id=task_id),
    }
