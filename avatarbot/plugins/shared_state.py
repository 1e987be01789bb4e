"""Where the set of disabled plugins lives, so that every replica follows an enable/disable.

Default: `<data_dir>/plugins_state.json` (one process, or replicas sharing the data volume).
With AVATARBOT_REDIS_URL set, the set lives in Redis and the file is kept as a local copy that
seeds Redis the first time. Every process re-reads the set on its plugin-watch poll (every 2 s)
and loads or unloads plugins to match, so a `disable` sent to one replica reaches all of them.
"""

from __future__ import annotations

import json
import logging
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
        self._client.set(REDIS_KEY, json.dumps({"disabled": sorted(disabled)}))


def make_state_store(path: Path, redis_url: str | None) -> PluginStateStore:
    if not redis_url:
        return PluginStateStore(path)
    import redis  # lazy: the base install works without Redis

    client = redis.Redis.from_url(
        redis_url, decode_responses=True, socket_connect_timeout=2, socket_timeout=2
    )
    return RedisPluginStateStore(path, client)
