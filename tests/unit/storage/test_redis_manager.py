from __future__ import annotations

import httpx

from avatarbot.app import create_app
from avatarbot.storage.redis import RedisManager
from tests.conftest import make_settings


def test_redis_manager_against_real_redis(redis_url: str) -> None:
    r = RedisManager(redis_url)
    assert r.enabled and r.ping()
    assert r.set("k", "v", ex=60)
    assert r.set("k", "other", nx=True) is False
    assert r.get("k") == "v" and r.exists("k", "missing") == 1
    assert 0 < r.ttl("k") <= 60
    assert r.set_json("j", {"a": [1, "二"]}) and r.get_json("j") == {"a": [1, "二"]}
    assert r.hset("h", "f", "1") == 1 and r.hget("h", "f") == "1" and r.hgetall("h") == {"f": "1"}
    assert r.hdel("h", "f") == 1
    assert r.delete("k", "j") == 2 and r.get("k") is None
    r.close()
    assert not r.enabled and not r.ping()


def test_disabled_and_unreachable_redis() -> None:
    assert RedisManager(None).enabled is False
    down = RedisManager("redis://127.0.0.1:1/0")
    assert down.enabled and down.ping() is False


async def test_health_reports_redis(redis_url: str, tmp_path) -> None:
    app = create_app(make_settings(tmp_path, redis_url=redis_url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            body = (await c.get("/health")).json()
    assert body["components"]["redis"]["status"] == "ok"
