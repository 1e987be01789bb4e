"""A lease row in the database: which replica may hold a connection that must exist once.

WeCom allows one long connection per AI bot and a new subscribe kicks the old socket, so two
replicas that both connected would knock each other off forever. Only the lease holder
connects; the others wait. A holder renews well before expiry; a lease is taken over only
after it expired (its holder stopped renewing), so two live replicas never swap it back and
forth.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, or_, update
from sqlalchemy.exc import IntegrityError

from avatarbot.storage.base import utcnow
from avatarbot.storage.db import Database
from avatarbot.storage.models import ChannelLease

logger = logging.getLogger(__name__)


class Lease:
    def __init__(self, db: Database, name: str, holder: str, ttl_s: float) -> None:
        self.db = db
        self.name = name[:128]
        self.holder = holder[:128]
        self.ttl_s = ttl_s

    async def acquire(self) -> bool:
        """Take or renew the lease; False while another live holder has it."""
        now = utcnow()
        expires = now + timedelta(seconds=self.ttl_s)
        async with self.db.session() as session:
            result = await session.execute(
                update(ChannelLease)
                .where(
                    ChannelLease.name == self.name,
                    or_(ChannelLease.holder == self.holder, ChannelLease.expires_at < now),
                )
                .values(holder=self.holder, expires_at=expires)
            )
            await session.commit()
            if int(result.rowcount or 0) == 1:  # type: ignore[attr-defined]
                return True
        try:
            async with self.db.session() as session:
                session.add(ChannelLease(name=self.name, holder=self.holder, expires_at=expires))
                await session.commit()
            return True
        except IntegrityError:  # the row exists and someone else holds it
            return False

    async def release(self) -> None:
        async with self.db.session() as session:
            await session.execute(
                delete(ChannelLease).where(
                    ChannelLease.name == self.name, ChannelLease.holder == self.holder
                )
            )
            await session.commit()
