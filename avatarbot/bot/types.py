"""What a channel hands to the bot, and what the bot/agents hand back.

Channels (integrations/feishu, integrations/wecom, the web console) convert their wire
formats to IncomingMessage and render Reply objects; nothing here knows a platform SDK.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from avatarbot.textnorm import normalize_text


class Channel(StrEnum):
    FEISHU = "feishu"
    WECOM = "wecom"
    WECOM_BOT = "wecom_bot"
    WEB = "web"
    SCHEDULER = "scheduler"


class ReplyKind(StrEnum):
    TEXT = "text"
    MARKDOWN = "markdown"
    VIDEO = "video"
    AUDIO = "audio"
    IMAGE = "image"
    FILE = "file"


@dataclass
class Attachment:
    kind: str  # image | audio | file | video
    key: str = ""  # platform media key / file id
    path: Path | None = None  # local copy once downloaded
    name: str = ""


@dataclass
class IncomingMessage:
    channel: Channel
    chat_id: str  # where replies go (Feishu chat_id, WeCom user or chatid, web session id)
    user_id: str  # the sender on that platform
    text: str
    message_id: str = ""  # platform message id (reply threading)
    event_id: str = ""  # dedup key (Feishu header.event_id, WeCom MsgId)
    chat_type: str = "p2p"  # p2p | group
    mentioned: bool = False  # group chats: was the bot @-mentioned
    user_name: str = ""
    attachments: list[Attachment] = field(default_factory=list)
    owner_id: int | None = None  # avatarbot user id when known (web console)
    thread_id: str = ""  # a topic thread inside the chat (Feishu): its own conversation
    raw: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Every channel builds one of these: the one place where chat text becomes safe
        # (a lone UTF-16 surrogate broke the first DB write and gave "something went wrong").
        self.text = normalize_text(self.text)
        self.user_name = normalize_text(self.user_name)

    @property
    def conversation(self) -> str:
        """Key for memory and ordering: one conversation per chat and user, or per thread."""
        if self.thread_id:  # everyone in a topic thread shares the thread's conversation
            return f"{self.channel.value}:{self.chat_id}:thread:{self.thread_id}"
        return f"{self.channel.value}:{self.chat_id}:{self.user_id}"


@dataclass
class Reply:
    """One thing to send back.

    Media replies either carry a finished file (`path`) or a `task_id` whose result will be
    the media: the bot layer then acknowledges, relays progress and sends the file when the
    task completes.
    """

    kind: ReplyKind
    text: str = ""
    path: Path | None = None
    task_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def pending(self) -> bool:
        return self.task_id is not None and self.path is None

    @classmethod
    def of_text(cls, text: str) -> Reply:
        return cls(ReplyKind.TEXT, text=text)
