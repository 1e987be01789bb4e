"""What every chat channel (Feishu, WeCom, web console, group robots) offers the bot layer.

A ChatTarget says where a reply goes; a ChannelSender knows how to put text and media there.
Methods raise avatarbot.errors.ExternalServiceError when the platform keeps failing after
the client's own retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from avatarbot.bot.types import IncomingMessage


@dataclass(frozen=True)
class ChatTarget:
    """A place to send to: a chat (Feishu chat_id, WeCom appchat chatid) or a user (WeCom p2p)."""

    chat_id: str
    chat_type: str = "p2p"  # p2p | group
    user_id: str = ""  # WeCom p2p messages go to the user
    reply_to: str = ""  # platform message id of the message being answered, when known
    thread_id: str = ""  # a topic thread (Feishu): replies go into it, answering reply_to

    @classmethod
    def of(cls, msg: IncomingMessage) -> ChatTarget:
        return cls(
            chat_id=msg.chat_id,
            chat_type=msg.chat_type,
            user_id=msg.user_id,
            reply_to=msg.message_id,
            thread_id=msg.thread_id,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChatTarget:
        """From a schedule target {"chat_id"?, "user_id"?, "chat_type"?}."""
        chat_id = str(data.get("chat_id") or "")
        user_id = str(data.get("user_id") or "")
        chat_type = str(data.get("chat_type") or ("group" if chat_id else "p2p"))
        return cls(chat_id=chat_id, chat_type=chat_type, user_id=user_id)


@runtime_checkable
class ChannelSender(Protocol):
    name: str
    max_video_bytes: int | None  # ask the pipeline for a video that fits (WeCom 10 MB)
    edits_messages: bool  # progress by editing one message (Feishu cards) or by short texts

    async def send_text(self, target: ChatTarget, text: str, *, key: str = "") -> None:
        """Plain text. `key` is a stable idempotency key (task id + part) when the platform has one."""
        ...

    async def send_markdown(self, target: ChatTarget, text: str, *, key: str = "") -> None: ...

    async def send_video(
        self,
        target: ChatTarget,
        path: Path,
        *,
        cover: Path | None,
        duration_s: float,
        key: str = "",
    ) -> None: ...

    async def send_audio(
        self, target: ChatTarget, path: Path, *, duration_s: float, key: str = ""
    ) -> None: ...

    async def send_image(self, target: ChatTarget, path: Path, *, key: str = "") -> None: ...

    async def start_progress(self, target: ChatTarget, text: str, *, key: str = "") -> str | None:
        """Post a progress message; returns a handle for update_progress (None: not supported)."""
        ...

    async def update_progress(self, handle: str, text: str, percent: float) -> None: ...
