"""cache_manager: a shared key-value cache exposed to agents and to other plugins."""

from __future__ import annotations

from typing import Any

from avatarbot.plugins.base import Plugin
from avatarbot.tools import ToolSpec

from .cache import CacheManager, MemoryBackend, RedisBackend


class CacheManagerPlugin(Plugin):
    """Other plugins use `context.get_plugin("cache_manager").cache` directly."""

    cache: CacheManager

    def on_load(self, context) -> None:
        super().on_load(context)
        # Its own setting first, else the app's AVATARBOT_REDIS_URL (shared by every replica).
        url = self.config.get("redis_url") or context.redis_url
        backend = RedisBackend(url, self.config.get("namespace")) if url else MemoryBackend()
        self.cache = CacheManager(
            backend,
            default_ttl=self.config.get("default_ttl"),
            max_entries=self.config.get("max_entries"),
            max_size_mb=self.config.get("max_size_mb"),
        )

    def on_unload(self) -> None:
        # A memory backend may have been handed to the reloaded instance: leave it to the GC.
        if isinstance(self.cache.backend, RedisBackend):
            self.cache.backend.close()

    def get_state(self) -> dict[str, Any]:
        # A hot reload keeps the cached entries and counters when both use memory.
        return {"backend": self.cache.backend, "stats": dict(self.cache.stats)}

    def set_state(self, state: dict[str, Any]) -> None:
        old = state.get("backend")
        # Class identity differs between loads (each reload imports fresh modules): compare names.
        if type(old).__name__ == "MemoryBackend" and isinstance(self.cache.backend, MemoryBackend):
            self.cache.backend = old
        self.cache.stats.update(state.get("stats", {}))

    def _set(self, key: str, value: Any, ttl: int | None = None) -> dict[str, Any]:
        return {"stored": self.cache.set(key, value, ttl)}

    def _get(self, key: str) -> dict[str, Any]:
        value = self.cache.get(key)
        return {"found": value is not None, "value": value}

    def tools(self) -> list[ToolSpec]:
        key = {"key": {"type": "string", "minLength": 1, "maxLength": 512}}
        return [
            self.tool(
                "set",
                "Store a JSON value under a key for ttl seconds (default from config).",
                self._set,
                {**key, "value": {}, "ttl": {"type": "integer", "minimum": 1}},
                ["key", "value"],
            ),
            self.tool("get", "Read the value stored under a key.", self._get, key, ["key"]),
            self.tool(
                "delete",
                "Remove a key.",
                lambda key: {"deleted": self.cache.delete(key)},
                key,
                ["key"],
            ),
            self.tool("stats", "Cache hits, misses, hit rate, entries.", self.cache.get_stats),
            self.tool("clear", "Remove every cached key.", lambda: {"cleared": self.cache.clear()}),
        ]
