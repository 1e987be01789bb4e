"""Sends outbox rows (bot/outbox.py): claimed with a lease, retried with backoff, in order.

Each row is sent with a stable idempotency key (Feishu `uuid`; WeCom's duplicate check on
retries), so a crash between "the platform accepted it" and "marked sent" gives no second
message after the restart. Media uploads are recorded on the row before the send, so a
retry re-sends the same upload (WeCom deduplicates by content, and a new media id would
be new content). Progress cards are a courtesy: they follow the progress bus while the
task runs, and are closed ("Done" / "Failed") by the media row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from avatarbot.bot import outbox
from avatarbot.bot.channel import ChannelSender, ChatTarget
from avatarbot.bot.delivery import cover_for, duration_for, send_media, stage_label
from avatarbot.bot.outbox import db_gate, gated_session
from avatarbot.bot.types import ReplyKind
from avatarbot.bot.write_gate import WriteGate
from avatarbot.errors import AvatarbotError, DeliveryRefused, ExternalServiceError
from avatarbot.jobs import service as task_service
from avatarbot.jobs.lease import PROCESS_ID, dead_owners, heartbeat, lease_until
from avatarbot.killpoint import kill_point
from avatarbot.services import Services
from avatarbot.storage.base import utcnow
from avatarbot.storage.models import Delivery, Task, TaskStatus

logger = logging.getLogger(__name__)

LEASE_S = 120.0
WAIT_S = 5.0  # re-check a task that is still running this often (events wake us sooner)
MAX_PARALLEL = 8

SenderFor = Callable[[str, dict[str, Any]], ChannelSender]


class Dispatcher:
    def __init__(
        self,
        services: Services,
        sender_for: SenderFor,
        owner: str = PROCESS_ID,
        gate: WriteGate | None = None,
    ) -> None:
        self.services = services
        self.gate = gate or db_gate(services)
        self.sender_for = sender_for
        self.owner = owner
        self.wake = asyncio.Event()
        self.sent = 0
        self._inflight: dict[int, asyncio.Task[str]] = {}
        self._slots = asyncio.Semaphore(MAX_PARALLEL)
        self._cards: dict[str, tuple[str, dict[str, Any], str, str]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def _session(self) -> Any:
        return gated_session(self.services, self.gate)

    @property
    def _settings(self) -> Any:
        return self.services.settings.bot

    async def start(self) -> None:
        await self._load_cards()
        self._tasks = [
            asyncio.create_task(self._run_forever(), name="outbox"),
            asyncio.create_task(self._follow_progress(), name="outbox-progress"),
        ]

    async def stop(self) -> None:
        for task in [*self._tasks, *self._inflight.values()]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._inflight.values(), return_exceptions=True)

    # --- the loop ------------------------------------------------------------------------

    async def _run_forever(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # the next round tries again
                logger.exception("outbox round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self._settings.recover_interval_s)
            self.wake.clear()

    async def run_once(self, group_key: str | None = None) -> list[asyncio.Task[str]]:
        """Claim and start sending every due row (of one group, if given)."""
        async with self._session() as session:
            pending = await _pending(session, group_key)
        dead = dead_owners(r.lease_owner for r in pending)
        started = []
        for row in outbox.heads(pending, dead=dead):
            if row.id in self._inflight:
                continue
            async with self._session() as session:
                if not await outbox.claim(
                    session, row.id, owner=self.owner, lease_s=LEASE_S, dead=dead
                ):
                    continue  # another process has it
            row.attempts += 1
            row.lease_owner = self.owner
            job = asyncio.create_task(self._guarded(row), name=f"outbox-{row.id}")
            self._inflight[row.id] = job
            job.add_done_callback(lambda _j, rid=row.id: self._inflight.pop(rid, None))
            started.append(job)
        return started

    async def deliver_group(self, group_key: str) -> None:
        """Send what is due in one group now, in order (rows waiting on a task stay queued)."""
        for _ in range(64):  # bounded: each round sends at least one row or stops
            jobs = await self.run_once(group_key)
            if not jobs:
                return
            outcomes = await asyncio.gather(*jobs)
            if "sent" not in outcomes and "failed" not in outcomes:
                return

    async def wait_group(self, group_key: str, timeout_s: float) -> list[Delivery]:
        """Until every row of the group is final (sent or given up); returns the rows."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            await self.deliver_group(group_key)
            async with self._session() as session:
                rows = await outbox.group_rows(session, group_key)
            if all(r.status != outbox.PENDING for r in rows) or loop.time() > deadline:
                return rows
            await asyncio.sleep(0.5)

    # --- one row -------------------------------------------------------------------------

    async def _guarded(self, row: Delivery) -> str:
        renew = self._renew(row.id)
        async with self._slots, heartbeat(renew, LEASE_S / 3, f"delivery {row.id}"):
            try:
                return await self._process(row)
            except _LeaseLost:
                logger.warning("delivery %s was taken over by another process", row.id)
                return "lost"

    def _renew(self, row_id: int) -> Callable[[], Any]:
        async def renew() -> bool:
            async with self._session() as session:
                return await outbox.update_row(
                    session, row_id, self.owner, lease_until=lease_until(LEASE_S)
                )

        return renew

    async def _process(self, row: Delivery) -> str:
        if row.expires_at is not None and row.expires_at < utcnow():
            return await self._give_up(row, "expired before it could be sent", outbox.EXPIRED)
        try:
            sender = self.sender_for(row.platform, row.target)
            target = outbox.chat_target(row.target)
            if row.kind == outbox.PROGRESS:
                await self._send_progress(row, sender, target)
            elif row.task_id and row.kind in outbox.MEDIA_KINDS:
                if not await self._send_task_media(row, sender, target):
                    return "waiting"
            elif row.kind in outbox.MEDIA_KINDS and row.path:
                await self._send_file(row, sender, target, Path(row.path), {})
            elif row.kind == "markdown":
                await sender.send_markdown(target, row.text, key=outbox.idempotency_key(row))
            else:
                await self._send_text(row, sender, target, row.text, outbox.idempotency_key(row))
            kill_point("send", row.kind)
        except _LeaseLost:
            raise
        except ExternalServiceError as exc:
            return await self._retry(row, exc.message)
        except (AvatarbotError, OSError) as exc:
            message = exc.message if isinstance(exc, AvatarbotError) else str(exc)
            return await self._give_up(row, message, outbox.FAILED)
        except Exception as exc:
            logger.exception("delivery %s failed unexpectedly", row.id)
            return await self._retry(row, f"internal error ({type(exc).__name__})")
        await self._set(row, status=outbox.SENT, sent_at=utcnow(), lease_until=None)
        self.sent += 1
        return "sent"

    async def _send_text(
        self, row: Delivery, sender: ChannelSender, target: ChatTarget, text: str, key: str
    ) -> None:
        # WeCom deduplicates by content only: on for retries, where a copy may have landed.
        if row.attempts > 1 and getattr(sender, "content_dedup", False):
            await sender.send_text(target, text, key=key, dedup=True)  # type: ignore[call-arg]
        else:
            await sender.send_text(target, text, key=key)

    async def _send_progress(
        self, row: Delivery, sender: ChannelSender, target: ChatTarget
    ) -> None:
        handle = await sender.start_progress(target, row.text, key=outbox.idempotency_key(row))
        if handle:
            await self._set(row, state={"handle": handle})
            if row.task_id:
                self._cards[row.task_id] = (row.platform, row.target, handle, "")

    async def _send_task_media(
        self, row: Delivery, sender: ChannelSender, target: ChatTarget
    ) -> bool:
        async with self._session() as session:
            task = await session.get(Task, row.task_id)
            handle = await outbox.progress_handle(session, row)
        if task is not None and not task.status.finished:
            await self._set(  # not ours to hold while the task runs
                row,
                lease_owner=None,
                lease_until=None,
                attempts=max(0, row.attempts - 1),
                next_attempt_at=utcnow() + timedelta(seconds=WAIT_S),
            )
            return False
        what = "video" if row.kind == "video" else "audio"
        if task is None or task.status != TaskStatus.COMPLETED or not task.result_path:
            reason = task.error_message or task.status.value if task is not None else "lost"
            await _close_card(sender, handle, f"Failed: {reason}")
            await self._send_text(
                row,
                sender,
                target,
                f"Sorry, I could not make the {what}: {reason}",
                outbox.idempotency_key(row, "failed"),
            )
        else:
            await self._send_file(row, sender, target, Path(task.result_path), task.result or {})
            await _close_card(sender, handle, "Done ✅")
        self._cards.pop(row.task_id or "", None)
        return True

    async def _send_file(
        self,
        row: Delivery,
        sender: ChannelSender,
        target: ChatTarget,
        path: Path,
        info: dict[str, Any],
    ) -> None:
        key = outbox.idempotency_key(row)
        upload = getattr(sender, "upload", None)
        send_uploaded = getattr(sender, "send_uploaded", None)
        if upload is None or send_uploaded is None:
            await send_media(sender, target, ReplyKind(row.kind), path, key=key, info=info)
            await self._send_actions(row, sender, target)
            return
        limit = sender.max_video_bytes
        size = (await asyncio.to_thread(path.stat)).st_size
        if row.kind == "video" and limit is not None and size > limit:
            await sender.send_text(
                target,
                f"The video is {size / 1e6:.1f} MB, over this platform's {limit / 1e6:.0f} MB limit.",
                key=outbox.idempotency_key(row, "too-big"),
            )
            return
        handles = (row.state or {}).get("upload")
        if not handles:
            cover = await cover_for(path, info) if row.kind == "video" else None
            duration = await duration_for(path, info) if row.kind in ("video", "audio") else 0.0
            handles = await upload(row.kind, path, cover=cover, duration_s=duration)
            kill_point("upload", row.kind)
            await self._set(row, state={**(row.state or {}), "upload": handles})
        await send_uploaded(target, row.kind, handles, key=key)
        await self._send_actions(row, sender, target)

    async def _send_actions(self, row: Delivery, sender: ChannelSender, target: ChatTarget) -> None:
        send_actions = getattr(sender, "send_actions", None)
        if row.kind == "video" and row.task_id and send_actions is not None:
            try:  # buttons under the video (bot.card_actions); the video itself is delivered
                await send_actions(
                    target, f"{row.task_id}:video", key=outbox.idempotency_key(row, "actions")
                )
            except (ExternalServiceError, DeliveryRefused) as exc:  # never resend the video
                logger.warning("video buttons not sent: %s", exc.message)

    async def _retry(self, row: Delivery, error: str) -> str:
        attempts = row.attempts  # already counted by the claim
        if attempts >= self._settings.delivery_max_attempts:
            return await self._give_up(row, error, outbox.FAILED)
        delay = min(
            self._settings.delivery_backoff_max_s,
            self._settings.delivery_backoff_s * 2 ** max(0, attempts - 1),
        )
        logger.warning(
            "delivery %s failed (attempt %d), retry in %.0f s: %s", row.id, attempts, delay, error
        )
        await self._set(
            row,
            lease_owner=None,
            lease_until=None,
            last_error=error[:2000],
            next_attempt_at=utcnow() + timedelta(seconds=delay),
        )
        return "retry"

    async def _give_up(self, row: Delivery, error: str, status: str) -> str:
        logger.error("delivery %s to %s given up: %s", row.id, row.platform, error)
        await self._set(row, status=status, last_error=error[:2000], lease_until=None)
        if row.kind not in outbox.MEDIA_KINDS:
            return "failed"
        what = "video" if row.kind == "video" else "audio" if row.kind == "audio" else "file"
        if row.task_id:
            async with self._session() as session:
                await task_service.finish(
                    session=session,
                    task_id=row.task_id,
                    status=TaskStatus.FAILED,
                    error=f"delivery to {row.platform} failed: {error}",
                )
        # Often only the upload failed (size, type, one endpoint down): a text may still get
        # through, and the user should hear about it rather than wait forever.
        with contextlib.suppress(ExternalServiceError, AvatarbotError):
            sender = self.sender_for(row.platform, row.target)
            async with self._session() as session:
                handle = await outbox.progress_handle(session, row)
            await _close_card(sender, handle, "Failed")
            await sender.send_text(
                outbox.chat_target(row.target),
                f"Sorry, I could not send the {what}.",
                key=outbox.idempotency_key(row, "error"),
            )
        return "failed"

    async def _set(self, row: Delivery, **values: Any) -> None:
        async with self._session() as session:
            if not await outbox.update_row(session, row.id, self.owner, **values):
                raise _LeaseLost(row.id)
        for name, value in values.items():
            setattr(row, name, value)

    # --- progress cards ------------------------------------------------------------------

    async def _load_cards(self) -> None:
        """Cards whose media row is still pending (a restart): keep updating them."""
        async with self._session() as session:
            stmt = select(Delivery).where(
                Delivery.kind == outbox.PROGRESS, Delivery.status == outbox.SENT
            )
            for card in (await session.scalars(stmt)).all():
                handle = (card.state or {}).get("handle")
                media = await session.scalar(
                    select(Delivery.id).where(
                        Delivery.group_key == card.group_key,
                        Delivery.task_id == card.task_id,
                        Delivery.kind != outbox.PROGRESS,
                        Delivery.status == outbox.PENDING,
                    )
                )
                if handle and media is not None and card.task_id:
                    self._cards[card.task_id] = (card.platform, card.target, str(handle), "")

    async def _follow_progress(self) -> None:
        async with self.services.bus.subscribe() as queue:
            while True:
                event = await queue.get()
                if event.status in ("completed", "failed", "cancelled"):
                    self.wake.set()  # a media row may be ready to go
                    continue
                card = self._cards.get(event.task_id)
                if card is None or not event.stage or event.stage == card[3]:
                    continue
                platform, target, handle, _ = card
                self._cards[event.task_id] = (platform, target, handle, event.stage)
                try:
                    sender = self.sender_for(platform, target)
                    await sender.update_progress(
                        handle, f"{stage_label(event.stage)}…", event.percent
                    )
                except (ExternalServiceError, AvatarbotError) as exc:  # a courtesy only
                    logger.warning("progress update for %s failed: %s", event.task_id, exc)


class _LeaseLost(AvatarbotError):
    def __init__(self, row_id: int) -> None:
        super().__init__(f"delivery {row_id} was taken over by another process")


async def _pending(session: Any, group_key: str | None) -> list[Delivery]:
    stmt = select(Delivery).where(Delivery.status == outbox.PENDING)
    if group_key is not None:
        stmt = stmt.where(Delivery.group_key == group_key)
    stmt = stmt.order_by(Delivery.group_key, Delivery.seq).limit(500)
    return list((await session.scalars(stmt)).all())


async def _close_card(sender: ChannelSender, handle: str | None, text: str) -> None:
    if handle is None:
        return
    try:
        await sender.update_progress(handle, text, 100.0)
    except ExternalServiceError as exc:
        logger.warning("final progress update failed: %s", exc.message)
