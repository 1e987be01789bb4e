"""HTTP retry policy shared by the platform clients: back off on network errors, 5xx and 429."""

from __future__ import annotations

import asyncio
import logging
import random
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
