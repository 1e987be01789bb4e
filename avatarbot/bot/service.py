"""BotService: every chat message from every channel goes through the inbox and the outbox.

Order of work for one message: the webhook (or long connection) stores it in the inbox
before answering the platform (`accept`) -> after the answer a task claims the inbox row
with a lease -> per-chat lock (messages of one chat are answered in order) -> group chats
only when @-mentioned -> per-user rate limit -> command or agent -> the replies become
outbox rows in the transaction that finishes the inbox row -> the dispatcher sends them.
A crash anywhere leaves either an unfinished inbox row (answered again by the recovery
pass) or outbox rows (sent after the restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from avatarbot.auth.shared_limits import make_limiter
from avatarbot.bot import commands, inbox, outbox, router, user_media
from avatarbot.bot.channel import ChannelSender, ChatTarget
from avatarbot.bot.dispatch import Dispatcher
from avatarbot.bot.intake_batch import IntakeBatcher
from avatarbot.bot.outbox import db_gate, gate_turn, gated_session
from avatarbot.bot.streaming import relay_for
from avatarbot.bot.types import IncomingMessage, Reply
from avatarbot.errors import AvatarbotError, ExternalServiceError
from avatarbot.jobs.lease import PROCESS_ID, heartbeat
from avatarbot.killpoint import kill_point
from avatarbot.services import Services
from avatarbot.storage.base import utcnow
from avatarbot.storage.models import Delivery, ProcessedEvent, Task, TaskStatus, TaskType

logger = logging.getLogger(__name__)

INBOX_KEEP_S = 7 * 24 * 3600  # far beyond the platforms' retry windows (Feishu ~7 h, WeCom ~15 s)
INBOX_PRUNE_EVERY_S = 6 * 3600
INBOX_LEASE_S = 300.0  # renewed while an agent answers; a dead holder's rows are taken at once
PUSH_WAIT_S = 1800.0


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
        self.owner = PROCESS_ID
        self.gate = db_gate(services)  # shared with the dispatcher: one SQLite writer here
        self.dispatcher = Dispatcher(
            services, self._sender_for_row, owner=self.owner, gate=self.gate
        )
        # The intake's inserts go ahead of background writes and are group-committed.
        self._intake = IntakeBatcher(
            lambda: self._session(urgent=True),
            lambda: gate_turn(self.gate, urgent=True),
            services.db.engine,
        )
        self._chat_locks: dict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)
        self._chat_users: dict[tuple[str, str], int] = defaultdict(int)
        self._background: set[asyncio.Task[Any]] = set()
        self._kicked: set[tuple[str, str]] = set()  # inbox events this process is on
        self.handled = 0
        self.duplicates = 0
        self.recovered = 0

    def register_sender(self, name: str, sender: ChannelSender) -> None:
        self.senders[name] = sender

    async def start(self) -> None:
        """Answer events and send replies a previous process left behind; then keep looking."""
        await self.resume_deliveries()
        await self.dispatcher.start()
        await self.recover_inbox()
        self._track(asyncio.create_task(self._recover_forever(), name="bot-inbox-recovery"))
        self._track(asyncio.create_task(self._prune_forever(), name="bot-inbox-prune"))

    async def recover_inbox(self) -> int:
        """Handle every inbox event that was received but not finished (and nobody holds)."""
        async with self._session() as session:
            rows = await inbox.unfinished(session)
        rows = [r for r in rows if (r.platform, r.event_id) not in self._kicked]
        for row in rows:  # (events this process is already on are waiting for their chat)
            self.kick(row.platform, row.event_id)
        if rows:
            self.recovered += len(rows)
            logger.info("recovering %d unfinished inbox event(s)", len(rows))
        return len(rows)

    async def _recover_forever(self) -> None:
        while True:
            await asyncio.sleep(self.services.settings.bot.recover_interval_s)
            try:
                await self.recover_inbox()
            except Exception:  # the next round tries again
                logger.exception("inbox recovery failed")

    async def resume_deliveries(self) -> int:
        """Chat video tasks from before the outbox (source in params, no rows): queue rows."""
        async with self._session() as session:
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
                if await session.scalar(select(Delivery.id).where(Delivery.task_id == task.id)):
                    continue  # the outbox has it already
                outbox.add_rows(
                    session,
                    group_key=f"task:{task.id}",
                    platform=str(source["channel"]),
                    target=outbox.target_dict(ChatTarget.from_dict(source))
                    | {"chat_type": str(source.get("chat_type") or "p2p")},
                    rows=[{"kind": "video", "task_id": task.id}],
                )
                resumed += 1
            await session.commit()
        if resumed:
            logger.info("resumed delivery of %d chat video(s) after a restart", resumed)
            self.dispatcher.wake.set()
        return resumed

    async def prune_inbox(self, older_than_s: float = INBOX_KEEP_S) -> int:
        """Forget processed events (and sent replies) older than any platform retry."""
        cutoff = utcnow() - timedelta(seconds=older_than_s)
        async with self._session() as session:
            result = await session.execute(
                delete(ProcessedEvent).where(ProcessedEvent.received_at < cutoff)
            )
            await session.execute(
                delete(Delivery).where(
                    Delivery.created_at < cutoff, Delivery.status != outbox.PENDING
                )
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

    async def accept(self, msg: IncomingMessage) -> bool:
        """Store an incoming message before the platform is answered.

        True when there is work to do (call `kick` after answering): a new event, or a
        redelivery of one that was never finished. False for a duplicate of a finished one.
        Raises when the database cannot take it: the platform must then not get a 200.
        """
        outcome = await self._intake.receive(msg)
        if outcome in ("duplicate", "in_progress"):
            self.duplicates += 1
            logger.info("duplicate %s event %s ignored", msg.channel.value, msg.event_id)
            return False
        if outcome == "unfinished":
            logger.info("redelivered %s event %s resumes", msg.channel.value, msg.event_id)
        return True

    def kick(self, platform: str, event_id: str, chat_id: str | None = None) -> None:
        """Process a stored event in the background (after the platform got its answer)."""
        key = (platform, event_id)
        self._kicked.add(key)
        self._track(
            asyncio.create_task(
                self._safe_process(platform, event_id, chat_id), name=f"bot-{event_id}"
            )
        )

    def submit(self, msg: IncomingMessage) -> None:
        """Store and handle a message in the background (returns at once)."""

        async def _accept_then_process() -> None:
            if await self.accept(msg):
                await self._safe_process(msg.channel.value, msg.event_id, msg.chat_id)

        self._track(asyncio.create_task(_accept_then_process(), name=f"bot-{msg.event_id}"))

    async def handle_incoming(self, msg: IncomingMessage) -> list[Reply] | None:
        """Store and process one message; returns the replies, or None when it was skipped."""
        if not await self.accept(msg):
            return None
        return await self.process_event(msg.channel.value, msg.event_id, msg.chat_id)

    async def process_event(
        self, platform: str, event_id: str, chat_id: str | None = None
    ) -> list[Reply] | None:
        """Claim a stored event and answer it; None when another process has it or it is done.

        With `chat_id` (known at intake) the chat's lock is taken before the claim, so the
        messages of one chat are answered in the order they arrived; recovery learns the
        chat from the stored message.
        """
        self._kicked.add((platform, event_id))
        try:
            if chat_id is None:
                return await self._claim_and_handle(platform, event_id, locked=None)
            async with self._chat_lock((platform, chat_id)):
                return await self._claim_and_handle(platform, event_id, locked=(platform, chat_id))
        finally:
            self._kicked.discard((platform, event_id))

    async def _claim_and_handle(
        self, platform: str, event_id: str, locked: tuple[str, str] | None
    ) -> list[Reply] | None:
        async with self._session() as session:
            row = await inbox.claim(
                session, platform, event_id, owner=self.owner, lease_s=INBOX_LEASE_S
            )
        if row is None or row.payload is None:
            return None
        msg = inbox.from_payload(row.payload)
        if row.attempts > inbox.MAX_ATTEMPTS:
            async with self._session() as session:
                await inbox.finish(session, row.id, "failed", "gave up: the message kept failing")
                await session.commit()
            return None

        async def renew() -> bool:
            async with self._session() as session:
                return await inbox.renew(session, row.id, owner=self.owner, lease_s=INBOX_LEASE_S)

        async with heartbeat(renew, INBOX_LEASE_S / 3, f"event {event_id}"):
            chat = (msg.channel.value, msg.chat_id)
            if locked == chat:
                return await self._handle_in_order(msg, row.id)
            async with self._chat_lock(chat):
                return await self._handle_in_order(msg, row.id)

    @contextlib.asynccontextmanager
    async def _chat_lock(self, chat: tuple[str, str]) -> AsyncIterator[None]:
        self._chat_users[chat] += 1
        try:
            async with self._chat_locks[chat]:
                yield
        finally:
            self._chat_users[chat] -= 1
            if self._chat_users[chat] <= 0:  # keep the lock table as small as the active chats
                self._chat_users.pop(chat, None)
                self._chat_locks.pop(chat, None)

    async def send_to_target(
        self, platform: str, target: ChatTarget | dict[str, Any], reply: Reply, *, key: str = ""
    ) -> None:
        """Push a reply to a chat without an incoming message (scheduled reports).

        The reply goes through the outbox (durable, retried); this waits until it was
        delivered. Raises ExternalServiceError when the platform is not configured or the
        delivery was given up.
        """
        key = key or reply.task_id or uuid.uuid4().hex
        await self.push(platform, outbox.target_dict(target), [reply], key=key)

    async def push(
        self, platform: str, target: dict[str, Any], replies: list[Reply], *, key: str
    ) -> None:
        """Queue several replies as one ordered group (all or none), then wait for delivery.

        `key` is stable per push (a schedule's fire): a re-run after a crash finds the group
        queued already and only waits for it.
        """
        sender = self._sender(platform, target)
        group = f"push:{key}"
        await self.enqueue(platform, target, replies, group_key=group, sender=sender)
        rows = await self.dispatcher.wait_group(group, PUSH_WAIT_S)
        failed = [r for r in rows if r.status != outbox.SENT]
        if failed:
            raise ExternalServiceError(
                f"delivery to {platform} failed: {failed[0].last_error or failed[0].status}"
            )

    async def enqueue(
        self,
        platform: str,
        target: ChatTarget | dict[str, Any],
        replies: list[Reply],
        *,
        group_key: str,
        sender: ChannelSender | None = None,
    ) -> bool:
        """Queue replies as outbox rows of one group; False when that group already exists."""
        sender = sender or self._sender(platform, target if isinstance(target, dict) else None)
        rows = outbox.plan(replies, edits_messages=sender.edits_messages)
        try:
            async with self._session() as session:
                outbox.add_rows(
                    session,
                    group_key=group_key,
                    platform=platform,
                    target=target,
                    rows=rows,
                    max_age_s=self._max_age(rows),
                )
                await session.commit()
        except IntegrityError:  # queued before (a re-run after a crash): send what is there
            return False
        self.dispatcher.wake.set()
        return True

    async def stop(self) -> None:
        await self.dispatcher.stop()
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    # --- internals -------------------------------------------------------------------

    def _max_age(self, rows: list[dict[str, Any]]) -> float:
        age = float(self.services.settings.bot.delivery_max_age_s)
        if any(r.get("task_id") for r in rows):  # the media comes only after the task
            age += float(self.services.settings.jobs.task_time_limit_s)
        return age

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

    def _session(self, *, urgent: bool = False) -> Any:
        return gated_session(self.services, self.gate, urgent=urgent)

    def _sender_for_row(self, platform: str, target: dict[str, Any]) -> ChannelSender:
        return self._sender(platform, target)

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _safe_process(self, platform: str, event_id: str, chat_id: str | None = None) -> None:
        kill_point("ack")  # test only: the platform has its answer, nothing is handled yet
        try:
            await self.process_event(platform, event_id, chat_id)
        except Exception:  # a background task must log, never die silently
            logger.exception("handling %s message %s failed", platform, event_id)

    async def _finish(
        self,
        msg: IncomingMessage,
        row_id: int,
        status: str,
        replies: list[Reply],
        sender: ChannelSender | None,
    ) -> str:
        """Close the inbox row and queue its replies, in one transaction."""
        group = inbox.group_key(msg.channel.value, msg.event_id)
        rows = outbox.plan(replies, edits_messages=bool(sender and sender.edits_messages))
        async with self._session() as session:
            if rows:
                outbox.add_rows(
                    session,
                    group_key=group,
                    platform=msg.channel.value,
                    target=ChatTarget.of(msg),
                    rows=rows,
                    max_age_s=self._max_age(rows),
                )
            await inbox.finish(session, row_id, status)
            await session.commit()
        return group

    async def _handle_in_order(self, msg: IncomingMessage, row_id: int) -> list[Reply] | None:
        if msg.chat_type == "group" and not msg.mentioned:
            await self._finish(msg, row_id, "ignored", [], None)
            return None
        try:
            sender = self._sender(msg.channel.value)
        except ExternalServiceError as exc:
            async with self._session() as session:
                await inbox.finish(session, row_id, "failed", exc.message)
                await session.commit()
            return []
        if not self.limiter.hit(f"{msg.channel.value}:{msg.user_id}"):
            wait = self.limiter.retry_after(f"{msg.channel.value}:{msg.user_id}")
            slow = Reply.of_text(f"You are sending messages a bit fast; please wait {wait} s.")
            group = await self._finish(msg, row_id, "rate_limited", [slow], sender)
            await self.dispatcher.deliver_group(group)
            return []
        self.handled += 1
        relay = relay_for(
            sender, ChatTarget.of(msg), msg.event_id or msg.message_id
        )  # streams the agent's answer where supported
        try:
            replies = await self.respond(msg, sender, on_event=relay.on_event if relay else None)
        except AvatarbotError as exc:
            replies = [Reply.of_text(f"Sorry, that did not work: {exc.message}")]
        except Exception:
            logger.exception("answering %s message %s failed", msg.channel.value, msg.event_id)
            replies = [Reply.of_text("Sorry, something went wrong on my side. Please try again.")]
        # What the stream already showed (Feishu CardKit) is not queued again.
        outgoing = await relay.settle(replies) if relay is not None else replies
        group = await self._finish(msg, row_id, "done", outgoing, sender)
        await self.dispatcher.deliver_group(group)
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

    def status(self) -> dict[str, Any]:
        return {
            "channels": sorted(self.senders),
            "handled": self.handled,
            "duplicates": self.duplicates,
            "recovered": self.recovered,
            "delivered": self.dispatcher.sent,
            "in_flight": len(self._background),
        }
