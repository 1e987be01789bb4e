"""Streaming an agent's answer into the chat while the brain is still writing it.

Platform-neutral glue: the agents layer emits events (`token`, `tool_call`, `tool_result`);
a StreamRelay turns them into snapshots (the full text so far plus tool status lines) for an
AnswerStream that a channel offers (Feishu: a CardKit card). When the answer is complete,
`settle` asks the stream to show the final text; only if it could not does the text reply
go out the ordinary way, so the answer is never lost and never sent twice.

A channel streams by having `open_stream(target, key=...) -> AnswerStream | None`.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from avatarbot.bot.channel import ChatTarget
from avatarbot.bot.types import Reply, ReplyKind

logger = logging.getLogger(__name__)


class AnswerStream(Protocol):
    def update(self, text: str, status: list[str]) -> None:
        """The latest snapshot (full text so far). Never blocks: the stream coalesces."""
        ...

    async def finish(self, text: str, status: list[str]) -> bool:
        """Show the final text and end streaming; False: the chat does not hold it (send it)."""
        ...


class StreamRelay:
    """Agent events -> snapshots for one answer."""

    def __init__(self, stream: AnswerStream) -> None:
        self.stream = stream
        self.text = ""
        self.status: list[str] = []
        self.started = False  # something was streamed (the stream may have shown it)

    async def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "token":
            self.text += str(event.get("text") or "")
        elif kind == "tool_call":
            self.status.append(f"🔧 {event.get('name', '')}…")
        elif kind == "tool_result":
            name = str(event.get("name") or "")
            line = f"{'✅' if event.get('ok') else '❌'} {name}"
            # Replace the tool's running line (the latest one of that name) with its outcome.
            for index in range(len(self.status) - 1, -1, -1):
                if self.status[index] == f"🔧 {name}…":
                    self.status[index] = line
                    break
            else:
                self.status.append(line)
        else:
            return
        if not self.text and not self.status:
            return
        self.started = True
        self.stream.update(self.text, list(self.status))

    async def settle(self, replies: list[Reply]) -> list[Reply]:
        """The replies still to send once the stream has shown what it could."""
        answer = next(
            (r for r in replies if r.kind == ReplyKind.TEXT and r.meta.get("agent") and r.text),
            None,
        )
        if not self.started and answer is None:
            return replies
        final = answer.text if answer is not None else self.text
        try:
            shown = await self.stream.finish(final, list(self.status))
        except Exception:  # a stream must never cost the answer
            logger.exception("finishing a streamed answer failed")
            shown = False
        if shown and answer is not None:
            return [r for r in replies if r is not answer]
        return replies


def relay_for(sender: Any, target: ChatTarget, key: str) -> StreamRelay | None:
    """A relay when the sender can stream answers (and is configured to), else None."""
    open_stream = getattr(sender, "open_stream", None)
    if open_stream is None:
        return None
    stream = open_stream(target, key=key)
    return StreamRelay(stream) if stream is not None else None
