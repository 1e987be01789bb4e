"""Decrypted WeCom callback XML -> IncomingMessage (text, image, voice, event)."""

from __future__ import annotations

from typing import Any

from avatarbot.bot.types import Attachment, Channel, IncomingMessage


def parse_message(data: dict[str, Any]) -> IncomingMessage | None:
    """An IncomingMessage for text/image/voice/event messages; None for anything else."""
    msg_type = str(data.get("MsgType") or "")
    user = str(data.get("FromUserName") or "")
    if not user:
        return None
    # Messages carry MsgId; events don't, so WeCom's advice is FromUserName + CreateTime.
    event_id = str(data.get("MsgId") or f"{user}:{data.get('CreateTime', '')}")
    text = ""
    unsupported = ""
    attachments: list[Attachment] = []
    if msg_type == "text":
        text = str(data.get("Content") or "")
    elif msg_type == "image":
        attachments.append(
            Attachment(
                kind="image", key=str(data.get("MediaId") or ""), name=str(data.get("PicUrl") or "")
            )
        )
    elif msg_type == "voice":
        attachments.append(Attachment(kind="audio", key=str(data.get("MediaId") or "")))
        # Voice recognition, when enabled in the admin console, arrives as Recognition.
        text = str(data.get("Recognition") or "")
    elif msg_type == "event":
        event = str(data.get("Event") or "")
        if event not in ("enter_agent", "subscribe"):
            return None
        text = "/help"  # greet a user who opens the app or follows it with the command list
        event_id = f"{user}:{data.get('CreateTime', '')}:{event}"
    elif msg_type in ("video", "file"):
        attachments.append(
            Attachment(
                kind=msg_type,
                key=str(data.get("MediaId") or ""),
                name=str(data.get("Title") or data.get("FileName") or ""),
            )
        )
    elif msg_type:
        unsupported = msg_type  # location, link, …: answered with what the bot can read
    else:
        return None
    return IncomingMessage(
        channel=Channel.WECOM,
        chat_id=user,
        user_id=user,
        text=text.strip(),
        message_id=str(data.get("MsgId") or ""),
        event_id=event_id,
        chat_type="p2p",  # self-built app callbacks are one-to-one; app group chats are send-only
        mentioned=True,
        attachments=attachments,
        raw={
            "msg_type": msg_type,
            "agent_id": str(data.get("AgentID") or ""),
            **({"unsupported": unsupported} if unsupported else {}),
        },
    )
