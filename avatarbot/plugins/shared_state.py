"""Where the set of disabled plugins lives, so that every replica follows an enable/disable.

Default: `<data_dir>/plugins_state.json` (one process, or replicas sharing the data volume).
The API also records each enable/disable in the database (`plugin_states`); every server
follows changes to those rows (`DatabaseFollower`), so replicas on one database agree even
without Redis or a shared volume.
With AVATARBOT_REDIS_URL set, the set lives in Redis and the file is kept as a local copy that
seeds Redis the first time. Every process re-reads the set on its plugin-watch poll (every 2 s)
and loads or unloads plugins to match, so a `disable` sent to one replica reaches all of them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from avatarbot.plugins.fsutil import atomic_write_text

log = logging.getLogger(__name__)
REDIS_KEY = "avatarbot:plugins:state"


class PluginStateStore:
    """The disabled set in a JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> set[str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return {str(name) for name in data.get("disabled", [])}
        except (OSError, ValueError, AttributeError, TypeError):
            return set()

    def write(self, disabled: set[str]) -> None:
        atomic_write_text(self.path, json.dumps({"disabled": sorted(disabled)}))


class RedisPluginStateStore(PluginStateStore):
    """The disabled set in Redis (shared), mirrored to the file (local copy)."""

    def __init__(self, path: Path, client: Any) -> None:
        super().__init__(path)
        self._client = client

    def read(self) -> set[str]:
        try:
            raw = self._client.get(REDIS_KEY)
            if raw is None:  # first replica with Redis: the file's state becomes the shared one
                local = super().read()
                self._client.set(REDIS_KEY, json.dumps({"disabled": sorted(local)}), nx=True)
                raw = self._client.get(REDIS_KEY)
            return {str(name) for name in json.loads(raw or "{}").get("disabled", [])}
        except Exception as exc:  # Redis down: keep serving what the local copy says
            log.warning("shared plugin state unavailable (%s); using the file", type(exc).__name__)
            return super().read()

    def write(self, disabled: set[str]) -> None:
        super().write(disabled)
        try:
            self._client.set(REDIS_KEY, json.dumps({"disabled": sorted(disabled)}))
        except Exception as exc:  # the API still records it in the DB, which replicas follow
            log.warning("shared plugin state not saved (%s)", type(exc).__name__)


def make_state_store(path: Path, redis_url: str | None) -> PluginStateStore:
    if not redis_url:
        return PluginStateStore(path)
    import redis  # lazy: the base install works without Redis

    client = redis.Redis.from_url(
        redis_url, decode_responses=True, socket_connect_timeout=2, socket_timeout=2
    )
    return RedisPluginStateStore(path, client)


class DatabaseFollower:
    """Polls `plugin_states` and applies rows that changed since the last look.

    The first look applies every row: a replica starting with its own (or no) file adopts the
    state the others recorded. Later looks apply only changed rows, so a plugin toggled
    directly on the manager (CLI, tests) is not reverted to a stale row.
    """

    def __init__(self, db: Any, manager: Any, interval_s: float = 2.0) -> None:
        self.db = db
        self.manager = manager
        self.interval_s = interval_s
        self._seen: dict[str, tuple[bool, datetime | None]] = {}
        self._task: asyncio.Task[None] | None = None
        # Held by the API across "change the manager, record the row": a poll that read the
        # row before a click must not apply that stale row after it (it would undo the click).
        self.lock = asyncio.Lock()

    async def poll(self) -> dict[str, bool]:
        async with self.lock:
            rows = await self._read_rows()
            changed = {
                name: bool(enabled)
                for name, enabled, stamp in rows
                if self._seen.get(name) != (bool(enabled), stamp)
            }
            self._seen = {name: (bool(enabled), stamp) for name, enabled, stamp in rows}
            if changed:
                await asyncio.to_thread(self.manager.apply_enabled, changed)
        return changed

    async def _read_rows(self) -> list[tuple[str, bool, datetime | None]]:
        from sqlalchemy import select

        from avatarbot.storage.models import PluginState

        async with self.db.session() as session:
            rows = (
                await session.execute(
                    select(PluginState.name, PluginState.enabled, PluginState.updated_at)
                )
            ).all()
        return [(str(n), bool(e), stamp) for n, e, stamp in rows]

    async def _run(self) -> None:
        while True:
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception:  # a DB hiccup: try again next time
                log.warning("following plugin state from the database failed", exc_info=True)
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="plugin-state-follow")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
