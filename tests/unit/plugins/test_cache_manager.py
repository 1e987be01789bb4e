from __future__ import annotations

import time

import pytest

from avatarbot.errors import InvalidInput
from avatarbot.plugins.manager import PluginManager


@pytest.fixture
def manager(tmp_path):
    mgr = PluginManager(tmp_path / "data")
    yield mgr
    mgr.shutdown()


def test_memory_cache_tools_ttl_lru_and_stats(manager):
    plugin = manager.load_plugin("cache_manager")
    call = manager.call_tool
    assert call("cache_manager.set", key="a", value={"x": [1, 2]}) == {"stored": True}
    assert call("cache_manager.get", key="a") == {"found": True, "value": {"x": [1, 2]}}
    assert call("cache_manager.get", key="nope") == {"found": False, "value": None}
    stats = call("cache_manager.stats")
    assert stats["hits"] == 1 and stats["misses"] == 1 and stats["hit_rate"] == 0.5
    assert stats["backend"] == "memory" and stats["entries"] == 1

    cache = plugin.cache
    cache.set("short", 1, ttl=1)
    cache.backend._items["short"] = (time.monotonic() - 1, "1")  # already expired
    assert cache.get("short") is None
    cache.set("gone", 1, ttl=1)
    cache.backend._items["gone"] = (time.monotonic() - 1, "1")
    assert cache.cleanup_expired() == 1
    with pytest.raises(InvalidInput, match="JSON"):
        cache.set("bad", object())

    cache.max_entries = 2
    cache.set("b", 2)
    cache.get("a")  # a is now more recently used than b
    cache.set("c", 3)
    assert cache.exists("a") and cache.exists("c") and not cache.exists("b")
    assert cache.get_stats()["evictions"] == 1
    assert call("cache_manager.delete", key="a") == {"deleted": True}
    assert call("cache_manager.clear") == {"cleared": 1}


def test_entries_survive_hot_reload(manager):
    manager.load_plugin("cache_manager")
    manager.call_tool("cache_manager.set", key="k", value="v")
    assert manager.reload_plugin("cache_manager")
    assert manager.call_tool("cache_manager.get", key="k") == {"found": True, "value": "v"}


def test_redis_backend_with_real_server(manager, redis_url):
    import uuid

    import redis

    namespace = f"t{uuid.uuid4().hex[:8]}:"
    server = redis.Redis.from_url(redis_url)
    try:
        manager.set_config("cache_manager", {"redis_url": redis_url, "namespace": namespace})
        assert manager.describe("cache_manager")["error"] is None
        plugin = manager.load_plugin("cache_manager")
        manager.call_tool("cache_manager.set", key="k", value=[1, "two"], ttl=60)
        assert server.get(f"{namespace}k") == b'[1, "two"]'
        assert 0 < server.ttl(f"{namespace}k") <= 60
        assert manager.call_tool("cache_manager.get", key="k")["value"] == [1, "two"]
        assert manager.call_tool("cache_manager.stats")["backend"] == "redis"
        assert plugin.cache.get_size() == len('[1, "two"]')
        assert manager.call_tool("cache_manager.clear") == {"cleared": 1}
        assert manager.config_for("cache_manager").as_dict()["redis_url"] == "********"
    finally:
        manager.shutdown()
        server.close()
