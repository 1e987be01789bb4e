"""CacheManager: the seed API over a memory backend (LRU + TTL) or a Redis backend."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from typing import Any, Protocol

from avatarbot.errors import BackendUnavailable, InvalidInput


class _Backend(Protocol):
    def set(self, key: str, data: str, ttl: int) -> None: ...
    def get(self, key: str) -> str | None: ...
    def delete(self, key: str) -> bool: ...
    def clear(self) -> int: ...
    def cleanup_expired(self) -> int: ...
    def count(self) -> int: ...
    def size_bytes(self) -> int: ...
    def evict(self, max_entries: int, max_bytes: int) -> int: ...
    def close(self) -> None: ...


class MemoryBackend:
    def __init__(self) -> None:
        self._items: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def set(self, key: str, data: str, ttl: int) -> None:
        with self._lock:
            self._drop(key)
            self._items[key] = (time.monotonic() + ttl, data)
            self._bytes += len(data)

    def get(self, key: str) -> str | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if item[0] <= time.monotonic():
                self._drop(key)
                return None
            self._items.move_to_end(key)  # most recently used last
            return item[1]

    def _drop(self, key: str) -> bool:
        item = self._items.pop(key, None)
        if item is not None:
            self._bytes -= len(item[1])
        return item is not None

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._drop(key)

    def clear(self) -> int:
        with self._lock:
            count = len(self._items)
            self._items.clear()
            self._bytes = 0
            return count

    def cleanup_expired(self) -> int:
        now = time.monotonic()
        with self._lock:
            expired = [k for k, (exp, _) in self._items.items() if exp <= now]
            for key in expired:
                self._drop(key)
            return len(expired)

    def count(self) -> int:
        return len(self._items)

    def size_bytes(self) -> int:
        return self._bytes

    def evict(self, max_entries: int, max_bytes: int) -> int:
        evicted = 0
        with self._lock:
            while self._items and (len(self._items) > max_entries or self._bytes > max_bytes):
                key = next(iter(self._items))  # least recently used
                self._drop(key)
                evicted += 1
        return evicted

    def close(self) -> None:
        self.clear()


class RedisBackend:
    """Keys live under a namespace prefix; Redis expires them itself."""

    def __init__(self, url: str, namespace: str) -> None:
        try:
            import redis
        except ImportError as exc:
            raise BackendUnavailable(
                "redis_url is set but redis-py is missing: pip install 'avatarbot[redis]'"
            ) from exc
        self._client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)
        self._ns = namespace

    def set(self, key: str, data: str, ttl: int) -> None:
        self._client.set(self._ns + key, data, ex=ttl)

    def get(self, key: str) -> str | None:
        return self._client.get(self._ns + key)

    def delete(self, key: str) -> bool:
        return bool(self._client.delete(self._ns + key))

    def _keys(self) -> list[str]:
        return list(self._client.scan_iter(match=self._ns + "*", count=500))

    def clear(self) -> int:
        keys = self._keys()
        return int(self._client.delete(*keys)) if keys else 0

    def cleanup_expired(self) -> int:
        return 0

    def count(self) -> int:
        return len(self._keys())

    def size_bytes(self) -> int:
        return sum(int(self._client.strlen(k)) for k in self._keys())

    def evict(self, max_entries: int, max_bytes: int) -> int:
        return 0  # Redis applies its own maxmemory policy

    def close(self) -> None:
        self._client.close()


class CacheManager:
    def __init__(
        self,
        backend: _Backend,
        default_ttl: int = 3600,
        max_entries: int = 10000,
        max_size_mb: int = 64,
    ) -> None:
        self.backend = backend
        self.default_ttl = default_ttl
        self.max_entries = max_entries
        self.max_bytes = max_size_mb * 1024 * 1024
        self.stats = {"hits": 0, "misses": 0, "sets": 0, "deletes": 0, "evictions": 0}

    def set(self, key: str, value: Any, ttl: int | None = None) -> bool:
        if not key:
            raise InvalidInput("cache key must not be empty")
        try:
            data = json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"cache values must be JSON-serialisable: {exc}") from exc
        ttl = self.default_ttl if ttl is None else int(ttl)
        if ttl <= 0:
            raise InvalidInput("ttl must be positive")
        self.backend.set(key, data, ttl)
        self.stats["sets"] += 1
        self.enforce_size_limit()
        return True

    def get(self, key: str) -> Any | None:
        data = self.backend.get(key)
        if data is None:
            self.stats["misses"] += 1
            return None
        self.stats["hits"] += 1
        return json.loads(data)

    def exists(self, key: str) -> bool:
        return self.backend.get(key) is not None

    def delete(self, key: str) -> bool:
        removed = self.backend.delete(key)
        self.stats["deletes"] += int(removed)
        return removed

    def clear(self) -> int:
        return self.backend.clear()

    def cleanup_expired(self) -> int:
        return self.backend.cleanup_expired()

    def get_size(self) -> int:
        return self.backend.size_bytes()

    def enforce_size_limit(self) -> int:
        evicted = self.backend.evict(self.max_entries, self.max_bytes)
        self.stats["evictions"] += evicted
        return evicted

    def get_stats(self) -> dict[str, Any]:
        lookups = self.stats["hits"] + self.stats["misses"]
        return {
            **self.stats,
            "hit_rate": round(self.stats["hits"] / lookups, 4) if lookups else 0.0,
            "entries": self.backend.count(),
            "size_bytes": self.backend.size_bytes(),
            "backend": "redis" if isinstance(self.backend, RedisBackend) else "memory",
        }
