"""Outbound messages of the WeCom AI bot that are not the streamed bubble.

A reply on the callback's req_id while WeCom allows it (24 h, until 846605/846608), else a
push with aibot_send_msg, always under the conversation's send budget. On a replica without
the bot's socket, pushes go through the relay; in webhook mode through the response_url.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avatarbot.bot.channel import ChatTarget
from avatarbot.errors import DeliveryRefused, ExternalServiceError
from avatarbot.integrations.wecom_bot.link import WecomBotError
from avatarbot.integrations.wecom_bot.outbound import upload_media

if TYPE_CHECKING:
    from avatarbot.integrations.wecom_bot.channel import ReplyContext

logger = logging.getLogger(__name__)

REPLY_WINDOW_S = 24 * 3600 - 300  # replies on a req_id are allowed for 24 h
FALLBACK_CODES = (846605, 846608)  # req_id no longer valid / stream expired: push instead
# WeCom's "system busy" and frequency limits: worth retrying (the outbox backs off). Any other
# error code on a push is WeCom's final answer for that conversation.
TRANSIENT_CODES = (-1, 45009, 45033, 45035)


def markdown(text: str) -> dict[str, Any]:
    return {"msgtype": "markdown", "markdown": {"content": text}}


class OutboundMixin:
    """Needs: link, relay, budget, webhook_mode (WecomBotChannel)."""

    link: Any
    relay: Any
    budget: Any

    webhook_mode: bool

    async def _send_body(
        self,
        target: ChatTarget,
        ctx: ReplyContext | None,
        body: dict[str, Any],
        media: tuple[Path, str] | None = None,
    ) -> None:
        """One non-stream message: a reply on the req_id while allowed, else a push.

        `media` (path, type): upload it first and put its media_id into body[type]."""
        chat = target.chat_id or target.user_id
        if self.webhook_mode:
            await self._webhook_later(ctx, body)
            return
        if self.link is None:
            raise ExternalServiceError("the WeCom AI bot long connection is not running")
        if self.link.state == "waiting_lease" and self.relay is not None:
            # Another replica holds the bot's only socket: it sends this for us.
            await self.relay.submit(chat, target.chat_type, body, media=media)
            return
        if media is not None:
            media_id = await self._upload(*media)
            body = {**body, media[1]: {**body.get(media[1], {}), "media_id": media_id}}
        await self.budget.take(chat)
        if ctx is not None and ctx.req_id and time.time() - ctx.created < REPLY_WINDOW_S:
            try:
                await self.link.request("aibot_respond_msg", body, req_id=ctx.req_id)
                return
            except WecomBotError as exc:
                if exc.errcode not in FALLBACK_CODES:
                    raise
                logger.info("reply window of %s closed (%d): pushing instead", ctx.key, exc.errcode)
        await self._push(chat, target.chat_type, body)

    async def _push(self, chat: str, chat_type: str, body: dict[str, Any]) -> None:
        assert self.link is not None
        push = {"chatid": chat, "chat_type": 2 if chat_type == "group" else 1, **body}
        try:
            await self.link.request("aibot_send_msg", push)
        except WecomBotError as exc:
            if exc.errcode in TRANSIENT_CODES:
                raise
            raise DeliveryRefused(
                f"WeCom AI bot could not send to chat {chat!r} (errcode {exc.errcode}). WeCom only "
                "delivers to conversations whose user has written to the bot first."
            ) from exc

    async def _send_relayed(
        self, chat: str, chat_type: str, body: dict[str, Any], media: Path | None, kind: str | None
    ) -> None:
        """A push another replica queued (relay.py)."""
        target = ChatTarget(chat, chat_type)
        await self._send_body(target, None, body, (media, kind) if media and kind else None)

    async def _drain_relay(self) -> None:
        assert self.relay is not None and self.link is not None
        while True:
            if self.link.state == "connected":
                try:
                    await self.relay.drain(self._send_relayed)
                except Exception:  # the database blinked: next round
                    logger.exception("draining the WeCom AI bot relay failed")
            await asyncio.sleep(self.relay.poll_s)

    async def _webhook_later(self, ctx: ReplyContext | None, body: dict[str, Any]) -> None:
        """Webhook mode after the bubble: the message's response_url, which works once."""
        url = ctx.response_url if ctx is not None else ""
        if not url:
            raise ExternalServiceError(
                "the WeCom AI bot in webhook mode can only answer a message (no push); "
                "use the long connection for scheduled reports"
            )
        ctx.response_url = ""  # type: ignore[union-attr]
        from avatarbot.integrations.wecom_bot.webhook import post_response_url

        await post_response_url(url, body)

    async def _upload(self, path: Path, kind: str) -> str:
        if self.link is None:
            raise ExternalServiceError("the WeCom AI bot long connection is not running")
        return await upload_media(self.link, path, kind)
