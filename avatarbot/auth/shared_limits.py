"""Rate limiters that every replica shares (Redis), with the in-process one as the default.

With AVATARBOT_REDIS_URL set, the login, chat and WebSocket limits count across all API
processes: 10 logins a minute per IP means 10 in total, not 10 per replica. Without Redis the
product is one process, and the in-memory `RateLimiter` is exact and cheaper.

The Redis window is a sorted set per key (score = Redis server time, so replicas with skewed
clocks agree), trimmed and counted in one Lua script: check-and-add is atomic across replicas.
If Redis fails, the limiter falls back to its local window rather than refusing every login.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Protocol

from avatarbot.auth.ratelimit import RateLimiter

logger = logging.getLogger(__name__)
RETRY_REDIS_AFTER_S = 5.0  # after a failure count locally for a while: no stall per login

# KEYS[1] = window key; ARGV = limit, window_ms, member. Returns {allowed, oldest_ms, now_ms}.
_HIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  allowed = 1
end
redis.call('PEXPIRE', KEYS[1], window)
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local first = now
if oldest[2] then first = tonumber(oldest[2]) end
return {allowed, first, now}
"""


class Limiter(Protocol):
    """What the login route, the bot and the agent WebSocket need from a limiter."""

    limit: int
    window_s: float

    def hit(self, key: str) -> bool: ...

    def retry_after(self, key: str) -> int: ...


class RedisRateLimiter:
    """Sliding window in Redis, shared by every process that uses the same `prefix`."""

    def __init__(self, client: Any, prefix: str, limit: int, window_s: float = 60.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_HIT)
        self._local = RateLimiter(limit, window_s)  # used only while Redis is unreachable
        self._down_until = 0.0

    def _key(self, key: str) -> str:
        return f"avatarbot:ratelimit:{self._prefix}:{key}"

    def _redis_down(self) -> bool:
        return time.monotonic() < self._down_until

    def _failed(self, exc: Exception) -> None:
        self._down_until = time.monotonic() + RETRY_REDIS_AFTER_S
        logger.warning("shared rate limit unavailable (%s); counting locally", type(exc).__name__)

    def hit(self, key: str) -> bool:
        if self._redis_down():
            return self._local.hit(key)
        try:
            allowed, _oldest, _now = self._script(
                keys=[self._key(key)],
                args=[self.limit, int(self.window_s * 1000), uuid.uuid4().hex],
            )
        except Exception as exc:  # connection refused, timeout: keep limiting, per process
            self._failed(exc)
            return self._local.hit(key)
        return bool(int(allowed))

    def retry_after(self, key: str) -> int:
        if self._redis_down():
            return self._local.retry_after(key)
        try:
            oldest = self._client.zrange(self._key(key), 0, 0, withscores=True)
            now_s, now_us = self._client.time()
        except Exception as exc:
            self._failed(exc)
            return self._local.retry_after(key)
        if not oldest:
            return 0
        now_ms = int(now_s) * 1000 + int(now_us) // 1000
        left_ms = self.window_s * 1000 - (now_ms - float(oldest[0][1]))
        return max(1, int(left_ms / 1000) + 1)


def make_limiter(redis_url: str | None, prefix: str, limit: int, window_s: float = 60.0) -> Limiter:
    """The shared limiter when Redis is configured, else the in-process one."""
    if not redis_url:
        return RateLimiter(limit, window_s)
    import redis  # lazy: the base install works without Redis

    client = redis.Redis.from_url(
        redis_url, decode_responses=True, socket_connect_timeout=2, socket_timeout=2
    )
    return RedisRateLimiter(client, prefix, limit, window_s)
