"""HTTP retry policy shared by the platform clients: back off on network errors, 5xx and 429."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from avatarbot.errors import ExternalServiceError

logger = logging.getLogger(__name__)


@dataclass
class RetryPolicy:
    attempts: int = 4  # total tries of one call
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff with jitter, so many workers don't retry in lockstep."""
        raw = min(self.max_delay_s, self.base_delay_s * (2 ** (attempt - 1)))
        return raw * (0.75 + random.random() * 0.5)


class CachedToken:
    """An access token shared by concurrent calls, fetched again `refresh_early_s` before it
    expires (so a token never dies mid-upload) or when a call says it is invalid (`force`)."""

    def __init__(self, refresh_early_s: float = 300.0) -> None:
        self.refresh_early_s = refresh_early_s
        self._value = ""
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def get(
        self, fetch: Callable[[], Awaitable[tuple[str, int]]], *, force: bool = False
    ) -> str:
        """The cached token, or `fetch()` -> (token, lifetime in seconds) under one lock."""
        async with self._lock:
            if not force and self._value and time.monotonic() < self._expires:
                return self._value
            value, lifetime_s = await fetch()
            self._value = value
            self._expires = time.monotonic() + max(60, lifetime_s - self.refresh_early_s)
            return value


class RetryableStatus(Exception):
    """A platform answer worth retrying (5xx, 429, or a platform busy code)."""


async def send_with_retry(
    platform: str,
    what: str,
    call: Callable[[], Awaitable[httpx.Response]],
    policy: RetryPolicy,
) -> httpx.Response:
    """Run `call` until it gives a non-5xx answer; ExternalServiceError after the last attempt."""
    last = ""
    for attempt in range(1, policy.attempts + 1):
        try:
            response = await call()
            if response.status_code < 500 and response.status_code != 429:
                return response
            last = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        if attempt < policy.attempts:
            delay = policy.delay(attempt)
            logger.warning(
                "%s %s failed (%s), retry %d/%d in %.1fs",
                platform,
                what,
                last,
                attempt,
                policy.attempts - 1,
                delay,
            )
            await asyncio.sleep(delay)
    raise ExternalServiceError(
        f"{platform} API {what} failed after {policy.attempts} tries: {last}"
    )
