"""Pushes from replicas that do not hold the bot's connection, sent by the one that does.

WeCom allows one socket per AI bot, so a scheduled report that fires on another replica
cannot push itself. It writes a relay row and waits; the holder claims pending rows
(an UPDATE … WHERE status='pending' that only one replica wins), sends them (uploading a
media file from the shared data directory when there is one) and writes back done or the
error, which the waiting replica raises, so the schedule's run history tells the reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update

from avatarbot.errors import AvatarbotError, ExternalServiceError
from avatarbot.storage.base import utcnow
from avatarbot.storage.db import Database
from avatarbot.storage.models import ChannelRelay

logger = logging.getLogger(__name__)

# (chat_id, chat_type, body, media path, media type) -> sent, or raises
Sender = Callable[[str, str, dict[str, Any], Path | None, str | None], Awaitable[None]]


class Relay:
    def __init__(self, db: Database, channel: str, *, poll_s: float = 0.5) -> None:
        self.db = db
        self.channel = channel
        self.poll_s = poll_s
        self.relayed = 0
        self._pruned_at = float("-inf")

    async def submit(
        self,
        chat_id: str,
        chat_type: str,
        body: dict[str, Any],
        *,
        media: tuple[Path, str] | None = None,
        timeout_s: float = 120.0,
    ) -> None:
        """Queue a push for the holder and wait for its outcome."""
        row = ChannelRelay(
            channel=self.channel,
            chat_id=chat_id[:200],
            chat_type=chat_type,
            body=body,
            media_path=str(media[0]) if media else None,
            media_type=media[1] if media else None,
        )
        async with self.db.session() as session:
            session.add(row)
            await session.commit()
            row_id = row.id
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            await asyncio.sleep(self.poll_s)  # the holder works in another process
            async with self.db.session() as session:
                found = await session.get(ChannelRelay, row_id)
            if found is not None and found.status == "done":
                return
            if found is not None and found.status == "failed":
                raise ExternalServiceError(found.error or "the relayed message failed")
        async with self.db.session() as session:  # give up: the holder must not send it late
            await session.execute(
                update(ChannelRelay)
                .where(ChannelRelay.id == row_id, ChannelRelay.status == "pending")
                .values(status="failed", error="expired")
            )
            await session.commit()
        raise ExternalServiceError(
            f"no replica holding the {self.channel} connection sent this within {timeout_s:.0f}s"
        )

    async def prune(self, older_than_s: float = 24 * 3600) -> None:
        """Forget finished rows (their waiters gave up long ago)."""
        cutoff = utcnow() - timedelta(seconds=older_than_s)
        async with self.db.session() as session:
            await session.execute(delete(ChannelRelay).where(ChannelRelay.created_at < cutoff))
            await session.commit()

    async def drain(self, send: Sender) -> int:
        """Send the pending rows this replica can claim; returns how many it handled."""
        loop_time = asyncio.get_running_loop().time()
        if loop_time - self._pruned_at > 3600:
            self._pruned_at = loop_time
            await self.prune()
        async with self.db.session() as session:
            ids = list(
                (
                    await session.scalars(
                        select(ChannelRelay.id)
                        .where(
                            ChannelRelay.channel == self.channel, ChannelRelay.status == "pending"
                        )
                        .order_by(ChannelRelay.id)
                        .limit(20)
                    )
                ).all()
            )
        handled = 0
        for row_id in ids:
            async with self.db.session() as session:
                claimed = await session.execute(
                    update(ChannelRelay)
                    .where(ChannelRelay.id == row_id, ChannelRelay.status == "pending")
                    .values(status="sending")
                )
                await session.commit()
                if int(claimed.rowcount or 0) != 1:  # type: ignore[attr-defined]
                    continue
                row = await session.get(ChannelRelay, row_id)
            assert row is not None
            status, error = "done", None
            try:
                media = Path(row.media_path) if row.media_path else None
                await send(row.chat_id, row.chat_type, dict(row.body), media, row.media_type)
            except AvatarbotError as exc:
                status, error = "failed", exc.message
            except Exception as exc:
                logger.exception("relayed %s message %s failed", self.channel, row_id)
                status, error = "failed", f"internal error ({type(exc).__name__})"
            async with self.db.session() as session:
                await session.execute(
                    update(ChannelRelay)
                    .where(ChannelRelay.id == row_id)
                    .values(status=status, error=error)
                )
                await session.commit()
            handled += 1
            self.relayed += 1
        return handled
