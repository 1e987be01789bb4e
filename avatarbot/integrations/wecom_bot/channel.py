"""WecomBotChannel: the ChannelSender of the WeCom AI bot, and its inbound side.

Every message gets a ReplyContext keyed by its msgid (ChatTarget.reply_to): a streamed
bubble that collects the agent's tokens, reply texts and video progress. The bubble is
finished when the bot is done with the message (or when the video it waits for is sent).
Anything after the bubble goes as a separate reply on the callback's req_id while that is
allowed (24 h), else as `aibot_send_msg`, queued under WeCom's per-conversation budget.
In webhook mode WeCom polls the bubble (webhook.py) and files go as signed links.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avatarbot.bot.channel import ChatTarget
from avatarbot.bot.types import IncomingMessage
from avatarbot.config import WecomBotSettings
from avatarbot.errors import AvatarbotError, ExternalServiceError
from avatarbot.integrations.wecom.channel import split_utf8
from avatarbot.integrations.wecom_bot.buttons import actions_card, click_update
from avatarbot.integrations.wecom_bot.feedback import store_feedback
from avatarbot.integrations.wecom_bot.link import Link
from avatarbot.integrations.wecom_bot.messages import card_event, event_of, parse_message
from avatarbot.integrations.wecom_bot.outbound import SendBudget
from avatarbot.integrations.wecom_bot.sending import REPLY_WINDOW_S, OutboundMixin, markdown
from avatarbot.integrations.wecom_bot.stream import MAX_STREAM_BYTES, ReplyStream

logger = logging.getLogger(__name__)

MAX_VIDEO_BYTES = 10 * 1024 * 1024


@dataclass
class ReplyContext:
    key: str  # the message's msgid
    chat_id: str
    chat_type: str
    req_id: str  # the callback's req_id (long connection); "" for webhook mode
    stream: ReplyStream
    response_url: str = ""
    created: float = field(default_factory=time.time)
    closed: bool = False


class WecomBotChannel(OutboundMixin):
    name = "wecom_bot"
    max_video_bytes: int | None = MAX_VIDEO_BYTES
    edits_messages = True  # progress goes into the streamed bubble

    def __init__(
        self,
        settings: WecomBotSettings,
        *,
        services: Any = None,
        budget: SendBudget | None = None,
        min_frame_interval_s: float = 0.5,
        keepalive_s: float = 60.0,
    ) -> None:
        self.settings = settings
        self.services = services
        self.bot: Any = None
        self.budget = budget or SendBudget()
        self.min_frame_interval_s = min_frame_interval_s
        self.keepalive_s = keepalive_s
        self.contexts: dict[str, ReplyContext] = {}
        self.streams: dict[str, ReplyContext] = {}  # stream id -> context (webhook polls)
        self.link: Link | None = None
        self.relay: Any = None  # relay.Relay: pushes between replicas (long connection)
        self.last_event_at: float | None = None
        self.instance = f"{uuid.uuid4().hex[:12]}"
        self._tasks: set[asyncio.Task[Any]] = set()
        self._crypto: Any = None
        self._pruned_at = 0.0

    @property
    def webhook_mode(self) -> bool:
        return self.settings.mode == "webhook"

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        if self.webhook_mode:
            return
        from avatarbot.integrations.wecom_bot.lease import Lease

        lease = None
        if self.services is not None:
            lease = Lease(
                self.services.db,
                f"wecom_bot:{self.settings.bot_id}",
                self.instance,
                self.settings.lease_ttl_s,
            )
        self.link = Link(
            url=self.settings.ws_url,
            bot_id=self.settings.bot_id,
            secret=self.settings.secret.get_secret_value(),
            on_callback=self.on_frame,
            lease=lease,
            ping_interval_s=self.settings.ping_interval_s,
            backoff_max_s=self.settings.backoff_max_s,
        )
        self.link.start()
        if self.services is not None:
            from avatarbot.integrations.wecom_bot.relay import Relay

            self.relay = Relay(self.services.db, self.name)
            self._track(self._drain_relay(), "wecom-bot-relay")

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for ctx in list(self.contexts.values()):
            await ctx.stream.close()
        if self.link is not None:
            await self.link.stop()

    def status(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "status": "ok",
            "mode": self.settings.mode,
            "open_streams": sum(1 for c in self.contexts.values() if c.stream.open),
            "queued_sends": self.budget.waited,
            "relayed": self.relay.relayed if self.relay is not None else 0,
        }
        if self.last_event_at is not None:
            info["last_event_age_s"] = round(time.time() - self.last_event_at, 1)
        if self.link is not None:
            info["long_connection"] = self.link.status()
            if self.link.state == "waiting_lease":
                info["reason"] = "standby: another replica holds the bot's connection"
            elif self.link.state != "connected":
                info["status"] = "error"
                info["reason"] = f"long connection {self.link.state}"
        return info

    def _track(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- inbound ---------------------------------------------------------------------

    async def on_frame(self, frame: dict[str, Any]) -> None:
        """A long-connection callback frame (aibot_msg_callback / aibot_event_callback)."""
        headers = frame.get("headers") if isinstance(frame.get("headers"), dict) else {}
        req_id = str(headers.get("req_id") or "")
        body = frame.get("body") if isinstance(frame.get("body"), dict) else {}
        self.last_event_at = time.time()
        if frame.get("cmd") == "aibot_msg_callback":
            self.accept_message(body, req_id=req_id)
            return
        kind, _ = event_of(body)
        if kind == "enter_chat":
            await self._welcome(req_id)
            return
        update = await self.handle_event(body)
        if update is not None and self.link is not None and req_id:
            try:  # only valid on the event's req_id within 5 s: sent at once, never queued
                await self.link.request(
                    "aibot_respond_update_msg", update, req_id=req_id, attempts=1
                )
            except ExternalServiceError as exc:
                logger.warning("WeCom AI bot card update failed: %s", exc.message)

    def accept_message(
        self, body: dict[str, Any], *, req_id: str = "", response_url: str = ""
    ) -> ReplyContext | None:
        """Open a reply bubble for a message and hand the message to the bot."""
        msg = parse_message(body)
        if msg is None:
            logger.warning("WeCom AI bot message without sender or msgid ignored")
            return None
        existing = self.contexts.get(msg.message_id)
        if existing is not None:  # a redelivery while we still work on it
            return existing
        self._forget_old()
        ctx = ReplyContext(
            key=msg.message_id,
            chat_id=msg.chat_id,
            chat_type=msg.chat_type,
            req_id=req_id,
            stream=self._new_stream(msg.chat_id, req_id),
            response_url=response_url or str(body.get("response_url") or ""),
        )
        self.contexts[ctx.key] = ctx
        self.streams[ctx.stream.stream_id] = ctx
        self._track(self._process(msg, ctx), f"wecom-bot-{ctx.key[:32]}")
        return ctx

    def _forget_old(self) -> None:
        """Drop contexts whose req_id can no longer be answered (kept 24 h for late media)."""
        now = time.time()
        if now - self._pruned_at < 60:
            return
        self._pruned_at = now
        for key, ctx in list(self.contexts.items()):
            if now - ctx.created > REPLY_WINDOW_S and not ctx.stream.open:
                self.contexts.pop(key, None)
                self.streams.pop(ctx.stream.stream_id, None)

    async def handle_event(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """template_card_event -> the agent; feedback_event -> stored; others logged.

        Returns the card update that answers a click on our buttons (buttons.py), else None."""
        kind, event = event_of(body)
        if kind == "template_card_event":
            msg = card_event(body)
            if msg is not None and self.bot is not None:
                if body.get("response_url"):  # webhook mode: answers go to its response_url
                    stream = self._new_stream(msg.chat_id, "")
                    stream.abandon()
                    self.contexts[msg.message_id] = ReplyContext(
                        msg.message_id, msg.chat_id, msg.chat_type, "", stream,
                        response_url=str(body["response_url"]), closed=True,
                    )  # fmt: skip
                self._track(self.bot.handle_incoming(msg), f"wecom-bot-card-{msg.event_id[:24]}")
                action = msg.raw["card_action"]
                return click_update(action, action["task_id"], msg.user_id)
        elif kind == "feedback_event":
            await store_feedback(self.services, self.name, body, event)
        else:
            logger.info("WeCom AI bot event %r ignored", kind[:40])
        return None

    async def _process(self, msg: IncomingMessage, ctx: ReplyContext) -> None:
        if self.bot is None:
            logger.warning("WeCom AI bot message %s dropped: no bot service", msg.event_id)
            return
        problem = await self._fetch_attachments(msg)
        if problem:  # undecryptable, too big, expired: say so instead of guessing
            ctx.stream.add_text(problem)
            await self._close(ctx)
            return
        try:
            replies = await self.bot.handle_incoming(msg)
        except Exception:
            logger.exception("WeCom AI bot message %s failed", msg.event_id)
            replies = []
        if replies is None:  # a duplicate msgid or an ignored message: no bubble
            await self._drop(ctx)
            return
        if not any(reply.pending for reply in replies):
            try:
                await self._close(ctx)
            except ExternalServiceError as exc:  # the link stayed down: nothing else to try
                logger.error("WeCom AI bot reply to %s was not delivered: %s", ctx.key, exc.message)
        # A pending video keeps the bubble open: send_video or the final progress closes it.

    async def _fetch_attachments(self, msg: IncomingMessage) -> str:
        """Download and decrypt the message's media now (URLs live 5 minutes); "" or a reply."""
        if not msg.attachments or self.services is None:
            return ""
        from avatarbot.integrations.wecom_bot.media import download_media

        folder = hashlib.sha1(msg.message_id.encode()).hexdigest()[:16]  # noqa: S324 - a name
        dest = self.services.settings.media_dir / "inbox" / self.name / folder
        webhook_key = self.settings.encoding_aes_key.get_secret_value()
        for index, attachment in enumerate(msg.attachments):
            key = webhook_key if self.webhook_mode else attachment.name
            try:
                attachment.path = await download_media(attachment.key, key, dest / str(index))
            except AvatarbotError as exc:
                logger.warning(
                    "WeCom AI bot %s of %s: %s", attachment.kind, msg.event_id, exc.message
                )
                return f"Sorry, I could not read your {attachment.kind}: {exc.message}."
            attachment.name = attachment.path.name  # the aeskey is not kept past this point
        return ""

    def agent_events(self, msg: IncomingMessage) -> Any:
        """The bot passes this to the agent: tokens stream into the message's bubble."""
        ctx = self.contexts.get(msg.message_id)
        if ctx is None:
            return None

        def on_event(event: dict[str, Any]) -> None:
            if event.get("type") == "token" and ctx.stream.open:
                ctx.stream.add_token(str(event.get("text") or ""))

        return on_event

    async def _welcome(self, req_id: str) -> None:
        if self.link is None or not req_id:
            return
        body = {"msgtype": "text", "text": {"content": self.settings.welcome}}
        try:  # only valid within 5 s of enter_chat: sent at once, never queued
            await self.link.request("aibot_respond_welcome_msg", body, req_id=req_id, attempts=1)
        except ExternalServiceError as exc:
            logger.warning("WeCom AI bot welcome failed: %s", exc.message)

    # --- bubbles ---------------------------------------------------------------------

    def _new_stream(self, chat_id: str, req_id: str) -> ReplyStream:
        first = True

        async def push(body: dict[str, Any]) -> None:
            nonlocal first
            if self.link is None or not req_id:
                return  # webhook mode: WeCom polls the snapshot
            if first:  # a bubble counts once against the conversation's budget
                first = False
                await self.budget.take(chat_id)
            await self.link.request("aibot_respond_msg", body, req_id=req_id)

        return ReplyStream(
            push,
            min_interval_s=self.min_frame_interval_s,
            keepalive_s=self.keepalive_s,
            max_age_s=self.settings.stream_max_s,
        )

    async def _close(self, ctx: ReplyContext) -> None:
        """Finish the bubble once; what it could not carry goes as separate messages."""
        if ctx.closed:
            return
        ctx.closed = True
        if not self.webhook_mode and not ctx.stream.started and not ctx.stream.snapshot():
            ctx.stream.abandon()  # nothing was said in it: no empty bubble
            return
        await ctx.stream.finish()
        target = ChatTarget(ctx.chat_id, ctx.chat_type, reply_to=ctx.key)
        if ctx.stream.error and self.link is not None:
            await self._send_body(target, ctx, markdown(ctx.stream.snapshot() or "…"))
        elif ctx.stream.overflow:
            await self.send_markdown(target, ctx.stream.overflow)

    async def _drop(self, ctx: ReplyContext) -> None:
        await ctx.stream.close()
        self.contexts.pop(ctx.key, None)
        self.streams.pop(ctx.stream.stream_id, None)

    def _ctx(self, target: ChatTarget) -> ReplyContext | None:
        return self.contexts.get(target.reply_to) if target.reply_to else None

    # --- ChannelSender ---------------------------------------------------------------

    async def send_text(self, target: ChatTarget, text: str, *, key: str = "") -> None:
        ctx = self._ctx(target)
        if ctx is not None and ctx.stream.open:
            ctx.stream.add_text(text)
            return
        for part in split_utf8(text, MAX_STREAM_BYTES):
            await self._send_body(target, ctx, markdown(part))

    async def send_markdown(self, target: ChatTarget, text: str, *, key: str = "") -> None:
        await self.send_text(target, text, key=key)

    async def start_progress(self, target: ChatTarget, text: str, *, key: str = "") -> str | None:
        ctx = self._ctx(target)
        if ctx is None or not ctx.stream.open:
            return None
        ctx.stream.set_progress(text)
        return ctx.key

    async def update_progress(self, handle: str, text: str, percent: float) -> None:
        ctx = self.contexts.get(handle)
        if ctx is None or not ctx.stream.open:
            return
        if not text.endswith("…"):  # a final word ("Done ✅", "Failed: …") ends the bubble
            ctx.stream.set_progress(text)
            await self._close(ctx)
        else:
            ctx.stream.set_progress(f"{text} ({percent:.0f}%)")

    async def send_video(
        self,
        target: ChatTarget,
        path: Path,
        *,
        cover: Path | None,
        duration_s: float,
        key: str = "",
    ) -> None:
        ctx = self._ctx(target)
        if self.webhook_mode:
            from avatarbot.integrations.wecom_bot.webhook import signed_media_url

            url = signed_media_url(self.services.settings, path)
            link = f"🎬 [Your video ({duration_s:.1f} s)]({url})"
            if ctx is not None and ctx.stream.open:
                ctx.stream.set_progress(link)
                await self._close(ctx)
            else:
                await self._send_body(target, ctx, markdown(link))
            return
        if ctx is not None:
            if ctx.stream.open:
                ctx.stream.set_progress("Done ✅")
            await self._close(ctx)  # the text goes first, also when the bubble failed
        video = {"title": "avatarbot", "description": f"{duration_s:.1f} s"}
        await self._send_body(target, ctx, {"msgtype": "video", "video": video}, (path, "video"))

    async def send_actions(self, target: ChatTarget, ref: str, *, key: str = "") -> None:
        """The buttons under a video (another take, other voice, audio only) as a card."""
        body = {"msgtype": "template_card", "template_card": actions_card(ref)}
        await self._send_body(target, self._ctx(target), body)

    async def send_audio(
        self, target: ChatTarget, path: Path, *, duration_s: float, key: str = ""
    ) -> None:
        from avatarbot.bot.media import convert_audio

        amr = await asyncio.to_thread(convert_audio, path, "amr")
        await self._send_media(target, amr, "voice")

    async def send_image(self, target: ChatTarget, path: Path, *, key: str = "") -> None:
        await self._send_media(target, path, "image")

    async def _send_media(self, target: ChatTarget, path: Path, kind: str) -> None:
        ctx = self._ctx(target)
        if self.webhook_mode:
            from avatarbot.integrations.wecom_bot.webhook import signed_media_url

            await self.send_text(
                target, f"[{path.name}]({signed_media_url(self.services.settings, path)})"
            )
            return
        if ctx is not None:
            await self._close(ctx)
        await self._send_body(target, ctx, {"msgtype": kind, kind: {}}, (path, kind))
