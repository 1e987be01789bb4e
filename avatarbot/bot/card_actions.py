"""Buttons under a video reply: "another take", "other voice", "audio only".

A platform callback (Feishu card.action.trigger, …) becomes an IncomingMessage with
raw["card_action"] = {"action", "ref"}: structured input, handled here before commands and
agents. `ref` is the delivery key of the video ("<task id>:video"), so the button knows the
text, digital human and voice it was made with. The message's event_id is built from the
task, the action and the clicker, so a double click (two callbacks, two platform event ids)
does the work once: BotService's inbox drops the second as a duplicate.
"""

from __future__ import annotations

import secrets
from typing import Any

from avatarbot.bot.types import IncomingMessage, Reply, ReplyKind
from avatarbot.pipeline.service import create_video_task
from avatarbot.pipeline.voice_task import create_voice_task
from avatarbot.services import Services
from avatarbot.storage.models import Task, TaskType

ACTIONS: dict[str, tuple[str, str]] = {  # action -> (button label, toast)
    "another_take": ("Another take", "Making another take…"),
    "other_voice": ("Other voice", "Making it with another voice…"),
    "audio_only": ("Audio only", "Sending just the audio…"),
}
OTHER_PITCH = (1.3, 0.8)  # "other voice": the same TTS voice, clearly higher or lower


def buttons(ref: str) -> list[dict[str, Any]]:
    """The callback values of the three buttons (the channel renders them)."""
    return [
        {"label": label, "value": {"action": name, "ref": ref}}
        for name, (label, _) in ACTIONS.items()
    ]


def toast(value: dict[str, Any]) -> tuple[str, str]:
    """(type, text) of the immediate answer to a click."""
    action = str(value.get("action") or "")
    if action not in ACTIONS:
        return "error", "That button is not known (any more)."
    return "success", ACTIONS[action][1]


def dedup_key(value: dict[str, Any], user_id: str, fallback: str) -> str:
    action, ref = str(value.get("action") or ""), str(value.get("ref") or "")
    if action in ACTIONS and ref:
        return f"card:{ref.split(':', 1)[0]}:{action}:{user_id}"[:200]
    return fallback


async def run(services: Services, msg: IncomingMessage) -> list[Reply]:
    value = msg.raw.get("card_action") or {}
    action = str(value.get("action") or "")
    task_id = str(value.get("ref") or "").split(":", 1)[0]
    if action not in ACTIONS:
        return [Reply.of_text(f"I do not know the button {action!r}.")]
    async with services.db.session() as session:
        task = await session.get(Task, task_id) if task_id else None
    params = dict(task.params or {}) if task is not None else {}
    if task is None or task.task_type != TaskType.VIDEO_GENERATION or not params.get("text"):
        return [Reply.of_text("That video is no longer available; send /video <text> again.")]
    text = str(params["text"])
    if action == "audio_only":
        voice_task = await create_voice_task(
            services,
            text=text,
            audio_format="wav",
            user_id=msg.owner_id,
            name=f"voice: {text[:40]}",
        )
        return [Reply(ReplyKind.AUDIO, task_id=voice_task.id)]
    extra: dict[str, Any] = {
        "source": params.get("source")
        or {
            "channel": msg.channel.value,
            "chat_id": msg.chat_id,
            "chat_type": msg.chat_type,
            "user_id": msg.user_id,
        },
        "seed": secrets.randbelow(2**31 - 1) + 1,  # a new take: other blinks and head motion
        "voice_params": dict(params.get("voice_params") or {}),
    }
    if action == "other_voice":
        pitch = float(extra["voice_params"].get("pitch") or 1.0)
        extra["voice_params"]["pitch"] = OTHER_PITCH[0] if pitch <= 1.0 else OTHER_PITCH[1]
    new = await create_video_task(
        services,
        text=text,
        digital_human_id=params.get("digital_human_id"),
        mode=params.get("mode"),
        voice=params.get("voice"),
        user_id=msg.owner_id,
        max_bytes=params.get("max_bytes"),
        name=f"{msg.channel.value} video ({action}): {text[:40]}",
        extra=extra,
    )
    # No "coming up" text: the click was already answered where it happened (Feishu's toast, the
    # WeCom card's update), and a WeCom webhook-mode click has one response_url, for the video.
    return [Reply(ReplyKind.VIDEO, task_id=new.id)]
