"""With AVATARBOT_REDIS_URL set, every limiter the product uses is the shared one."""

from __future__ import annotations

from pathlib import Path

from avatarbot.app import build_services
from avatarbot.auth.ratelimit import RateLimiter
from avatarbot.auth.shared_limits import RedisRateLimiter
from avatarbot.bot.service import BotService
from avatarbot.config import ConfigManager
from tests.conftest import make_settings


async def _limiters(settings) -> tuple[object, object]:  # type: ignore[no-untyped-def]
    services = await build_services(ConfigManager(settings))
    try:
        return services.login_limiter, BotService(services).limiter
    finally:
        await services.bus.stop()
        services.redis.close()
        await services.db.dispose()


async def test_login_and_chat_limits_are_shared_with_redis(tmp_path: Path, redis_url: str) -> None:
    login, chat = await _limiters(make_settings(tmp_path, redis_url=redis_url))
    assert isinstance(login, RedisRateLimiter) and isinstance(chat, RedisRateLimiter)
    assert login.limit == 10 and chat.limit == 20


async def test_without_redis_they_stay_in_process(tmp_path: Path) -> None:
    login, chat = await _limiters(make_settings(tmp_path))
    assert isinstance(login, RateLimiter) and isinstance(chat, RateLimiter)
