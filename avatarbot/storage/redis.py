"""RedisManager (seed API): optional shared cache and pub/sub.

With no AVATARBOT_REDIS_URL the product uses in-process fallbacks; this class then reports
itself as disabled and every caller checks `enabled` first.
"""

from __future__ import annotations

import json
import logging
from typing import Any

logger = logging.getLogger(__name__)


class RedisManager:
    def __init__(self, url: str | None) -> None:
        self.url = url
        self._client: Any = None
        if url:
            import redis  # lazy: the base install works without Redis

            self._client = redis.Redis.from_url(
                url, decode_responses=True, socket_connect_timeout=3, health_check_interval=30
            )

    @property
    def enabled(self) -> bool:
        return self._client is not None

    @property
    def client(self) -> Any:
        if self._client is None:
            raise RuntimeError("Redis is not configured (set AVATARBOT_REDIS_URL)")
        return self._client

    def ping(self) -> bool:
        if self._client is None:
            return False
        try:
            return bool(self._client.ping())
        except Exception as exc:  # connection refused, timeout, auth error
            logger.warning("redis ping failed: %s", type(exc).__name__)
            return False

    def get(self, key: str) -> str | None:
        return self.client.get(key)

    def set(self, key: str, value: str, ex: int | None = None, nx: bool = False) -> bool:
        return bool(self.client.set(key, value, ex=ex, nx=nx))

    def delete(self, *keys: str) -> int:
        return int(self.client.delete(*keys)) if keys else 0

    def exists(self, *keys: str) -> int:
        return int(self.client.exists(*keys)) if keys else 0

    def expire(self, key: str, seconds: int) -> bool:
        return bool(self.client.expire(key, seconds))

    def ttl(self, key: str) -> int:
        return int(self.client.ttl(key))

    def get_json(self, key: str) -> Any | None:
        raw = self.get(key)
        return None if raw is None else json.loads(raw)

    def set_json(self, key: str, value: Any, ex: int | None = None, nx: bool = False) -> bool:
        return self.set(key, json.dumps(value, ensure_ascii=False), ex=ex, nx=nx)

    def hget(self, name: str, key: str) -> str | None:
        return self.client.hget(name, key)

    def hset(self, name: str, key: str, value: str) -> int:
        return int(self.client.hset(name, key, value))

    def hgetall(self, name: str) -> dict[str, str]:
        return dict(self.client.hgetall(name))

    def hdel(self, name: str, *keys: str) -> int:
        return int(self.client.hdel(name, *keys)) if keys else 0

    def publish(self, channel: str, message: str) -> int:
        return int(self.client.publish(channel, message))

    def flushdb(self) -> bool:
        return bool(self.client.flushdb())

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
