"""BotService: every chat message from every channel goes through handle_incoming.

Order of work for one message: per-chat lock (messages of one chat are answered in order)
-> dedup (insert into processed_events first; a duplicate insert means the platform retried)
-> group chats only when @-mentioned -> per-user rate limit -> command or agent -> replies.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from avatarbot.auth.shared_limits import make_limiter
from avatarbot.bot import commands, router, user_media
from avatarbot.bot.channel import ChannelSender, ChatTarget
from avatarbot.bot.delivery import follow_task, send_reply
from avatarbot.bot.streaming import relay_for
from avatarbot.bot.types import IncomingMessage, Reply, ReplyKind
from avatarbot.errors import AvatarbotError, ExternalServiceError
from avatarbot.services import Services
from avatarbot.storage.base import utcnow
from avatarbot.storage.models import ProcessedEvent, Task, TaskStatus, TaskType

logger = logging.getLogger(__name__)

INBOX_KEEP_S = 7 * 24 * 3600  # far beyond the platforms' retry windows (Feishu ~7 h, WeCom ~15 s)
INBOX_PRUNE_EVERY_S = 6 * 3600


class BotService:
    def __init__(self, services: Services, senders: dict[str, ChannelSender] | None = None) -> None:
        self.services = services
        self.senders: dict[str, ChannelSender] = dict(senders or {})
        # (url, secret) -> the sender for a group-robot webhook; set by integrations.wiring,
        # which knows the platforms (bot/ stays platform-neutral).
        self.robot_sender: Callable[[str, str], ChannelSender] | None = None
        settings = services.settings
        self.limiter = make_limiter(
            settings.redis_url, "chat", settings.bot.user_messages_per_minute, 60.0
        )
        self._chat_locks: dict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)
        self._chat_users: dict[tuple[str, str], int] = defaultdict(int)
        self._background: set[asyncio.Task[Any]] = set()
        self.handled = 0
        self.duplicates = 0

    def register_sender(self, name: str, sender: ChannelSender) -> None:
        self.senders[name] = sender

    async def start(self) -> None:
        """Finish deliveries a previous process left behind; keep the inbox table small."""
        await self.resume_deliveries()
        self._track(asyncio.create_task(self._prune_forever(), name="bot-inbox-prune"))

    async def resume_deliveries(self) -> int:
        """Follow unfinished chat video tasks again (the executor re-queued them at start)."""
        async with self.services.db.session() as session:
            stmt = select(Task).where(
                Task.task_type == TaskType.VIDEO_GENERATION,
                Task.status.in_([TaskStatus.PENDING, TaskStatus.RUNNING]),
            )
            tasks = list((await session.scalars(stmt)).all())
        resumed = 0
        for task in tasks:
            source = (task.params or {}).get("source")
            if not isinstance(source, dict) or source.get("channel") not in self.senders:
                continue
            target = ChatTarget(
                chat_id=str(source.get("chat_id") or ""),
                chat_type=str(source.get("chat_type") or "p2p"),
                user_id=str(source.get("user_id") or ""),
            )
            sender = self.senders[str(source["channel"])]
            reply = Reply(ReplyKind.VIDEO, task_id=task.id)
            self._track(
                asyncio.create_task(
                    follow_task(self.services, sender, target, reply, key=task.id),
                    name=f"deliver-{task.id}",
                )
            )
            resumed += 1
        if resumed:
            logger.info("resumed delivery of %d chat video(s) after a restart", resumed)
        return resumed

    async def prune_inbox(self, older_than_s: float = INBOX_KEEP_S) -> int:
        """Forget processed events older than any platform retry (Feishu retries for ~7 h)."""
        cutoff = utcnow() - timedelta(seconds=older_than_s)
        async with self.services.db.session() as session:
            result = await session.execute(
                delete(ProcessedEvent).where(ProcessedEvent.received_at < cutoff)
            )
            await session.commit()
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def _prune_forever(self) -> None:
        while True:
            try:
                removed = await self.prune_inbox()
                if removed:
                    logger.info("pruned %d old processed events", removed)
            except Exception:  # a failed clean-up is retried next round
                logger.exception("pruning processed events failed")
            await asyncio.sleep(INBOX_PRUNE_EVERY_S)

    # --- entry points ----------------------------------------------------------------

    def submit(self, msg: IncomingMessage) -> None:
        """Handle a message after the webhook has answered (returns at once)."""
        self._track(asyncio.create_task(self._safe_handle(msg), name=f"bot-{msg.event_id}"))

    async def handle_incoming(self, msg: IncomingMessage) -> list[Reply] | None:
        """Process one message; returns the replies sent, or None when it was skipped."""
        chat = (msg.channel.value, msg.chat_id)
        self._chat_users[chat] += 1
        try:
            async with self._chat_locks[chat]:
                return await self._handle_in_order(msg)
        finally:
            self._chat_users[chat] -= 1
            if self._chat_users[chat] <= 0:  # keep the lock table as small as the active chats
                self._chat_users.pop(chat, None)
                self._chat_locks.pop(chat, None)

    async def send_to_target(
        self, platform: str, target: ChatTarget | dict[str, Any], reply: Reply, *, key: str = ""
    ) -> None:
        """Push a reply to a chat without an incoming message (scheduled reports).

        Waits until media of a pending task has been delivered. Raises ExternalServiceError
        or NotFound-like AvatarbotError when the platform is not configured or keeps failing.
        """
        sender = self._sender(platform, target if isinstance(target, dict) else None)
        chat = target if isinstance(target, ChatTarget) else ChatTarget.from_dict(target)
        follow = await send_reply(
            self.services, sender, chat, reply, key=key or reply.task_id or ""
        )
        if follow is not None:
            await follow

    async def stop(self) -> None:
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    # --- internals -------------------------------------------------------------------

    def _sender(self, platform: str, target: dict[str, Any] | None = None) -> ChannelSender:
        if platform == "webhook":  # a group robot URL (scheduled reports without an app)
            if self.robot_sender is None:
                raise ExternalServiceError("group robot delivery is not configured")
            target = target or {}
            return self.robot_sender(str(target.get("url") or ""), str(target.get("secret") or ""))
        sender = self.senders.get(platform)
        if sender is None:
            raise ExternalServiceError(f"channel {platform} is not configured")
        return sender

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _safe_handle(self, msg: IncomingMessage) -> None:
        try:
            await self.handle_incoming(msg)
        except Exception:  # a background task must log, never die silently
            logger.exception("handling %s message %s failed", msg.channel.value, msg.event_id)

    async def _handle_in_order(self, msg: IncomingMessage) -> list[Reply] | None:
        if msg.event_id and not await self._first_time(msg):
            self.duplicates += 1
            logger.info("duplicate %s event %s ignored", msg.channel.value, msg.event_id)
            return None
        if msg.chat_type == "group" and not msg.mentioned:
            await self._mark(msg, "ignored")
            return None
        sender = self._sender(msg.channel.value)
        target = ChatTarget.of(msg)
        key = msg.event_id or msg.message_id
        if not self.limiter.hit(f"{msg.channel.value}:{msg.user_id}"):
            wait = self.limiter.retry_after(f"{msg.channel.value}:{msg.user_id}")
            await sender.send_text(
                target,
                f"You are sending messages a bit fast; please wait {wait} s.",
                key=f"{key}:rl",
            )
            await self._mark(msg, "rate_limited")
            return []
        self.handled += 1
        relay = relay_for(sender, target, key)  # streams the agent's answer where supported
        try:
            replies = await self.respond(msg, sender, on_event=relay.on_event if relay else None)
        except AvatarbotError as exc:
            replies = [Reply.of_text(f"Sorry, that did not work: {exc.message}")]
        except Exception:
            logger.exception("answering %s message %s failed", msg.channel.value, msg.event_id)
            replies = [Reply.of_text("Sorry, something went wrong on my side. Please try again.")]
        outgoing = await relay.settle(replies) if relay is not None else replies
        try:
            for index, reply in enumerate(outgoing):
                follow = await send_reply(
                    self.services, sender, target, reply, key=reply.task_id or f"{key}:{index}"
                )
                if follow is not None:
                    self._track(follow)
        except ExternalServiceError as exc:
            logger.error("replying on %s failed: %s", msg.channel.value, exc.message)
            await self._mark(msg, "failed", exc.message)
            return replies
        await self._mark(msg, "done")
        return replies

    async def respond(
        self,
        msg: IncomingMessage,
        sender: ChannelSender | None = None,
        *,
        on_event: Callable[[dict[str, Any]], Any] | None = None,
    ) -> list[Reply]:
        """The replies to one message (command or agent), without dedup or sending.

        For callers that render replies themselves (the web console); `sender` tells the
        platform's video size limit when known; `on_event` gets the agent's streamed tokens
        and tool events.
        """
        max_bytes = sender.max_video_bytes if sender is not None else None
        if msg.raw.get("card_action"):  # a button under a video (bot.card_actions)
            from avatarbot.bot import card_actions

            return await card_actions.run(self.services, msg)
        # Photos, voice and files: answered there, or turned into text/image input here.
        handled = await user_media.prepare(self.services, msg, sender)
        if handled is not None:
            return handled
        replies = await commands.run(self.services, msg, max_video_bytes=max_bytes)
        if replies is not None:
            return replies
        parsed = commands.parse(msg.text) if msg.text else None
        if parsed is not None:  # a slash command we do not know: say so, never guess
            return [Reply.of_text(f"Unknown command /{parsed[0]}.\n\n{commands.HELP_TEXT}")]
        agents = self.services.agents
        if agents is None:
            return await commands.default_answer(self.services, msg)
        route = await router.resolve(self.services, platform=msg.channel.value, chat_id=msg.chat_id)
        # Hints the agents layer reads: the chat's binding (unbound: its own default agent),
        # the chat's digital human, and the largest video this platform accepts.
        if route.bound:
            msg.raw.setdefault("agent_name", route.agent_name)
            msg.raw.setdefault("digital_human_id", route.digital_human_id)
        if max_bytes is not None:
            msg.raw.setdefault("max_video_bytes", max_bytes)
        # A channel that streams by itself (WeCom AI bot) takes the agent's token events
        # unless the caller brought its own handler (Feishu CardKit relay, web console).
        if on_event is None:
            events = getattr(sender, "agent_events", None)
            on_event = events(msg) if events is not None else None
        if on_event is None:
            return list(await agents.handle(msg))
        return list(await agents.handle(msg, on_event=on_event))

    async def _first_time(self, msg: IncomingMessage) -> bool:
        """Record the event; False when it was recorded before (a platform retry)."""
        try:
            async with self.services.db.session() as session:
                session.add(ProcessedEvent(platform=msg.channel.value, event_id=msg.event_id[:200]))
                await session.commit()
            return True
        except IntegrityError:
            return False

    async def _mark(self, msg: IncomingMessage, status: str, error: str | None = None) -> None:
        if not msg.event_id:
            return
        async with self.services.db.session() as session:
            await session.execute(
                update(ProcessedEvent)
                .where(
                    ProcessedEvent.platform == msg.channel.value,
                    ProcessedEvent.event_id == msg.event_id[:200],
                )
                .values(status=status[:16], error=error)
            )
            await session.commit()

    def status(self) -> dict[str, Any]:
        return {
            "channels": sorted(self.senders),
            "handled": self.handled,
            "duplicates": self.duplicates,
            "in_flight": len(self._background),
        }
