"""Issue 15 item 7: things the code promised but did not do."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from avatarbot.config import Settings


def test_config_file_named_in_dotenv_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AVATARBOT_CONFIG_FILE", raising=False)
    (tmp_path / "conf.yaml").write_text("llm:\n  base_url: http://127.0.0.1:1/v1\n  model: m\n")
    (tmp_path / ".env").write_text("AVATARBOT_CONFIG_FILE=conf.yaml\nAVATARBOT_PORT=8123\n")
    settings = Settings()
    assert settings.port == 8123  # the .env itself is read...
    assert settings.llm.model == "m" and settings.llm.enabled  # ...and the YAML it names
    # The environment still wins over .env for the file name.
    (tmp_path / "other.yaml").write_text("llm:\n  base_url: http://127.0.0.1:1/v1\n  model: o\n")
    monkeypatch.setenv("AVATARBOT_CONFIG_FILE", str(tmp_path / "other.yaml"))
    assert Settings().llm.model == "o"


async def test_plugin_install_documents_its_request_body(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    body = spec["paths"]["/api/v1/plugins/install"]["post"]["requestBody"]
    assert body["required"] is True
    multipart = body["content"]["multipart/form-data"]["schema"]
    assert multipart["required"] == ["file", "sha256"]
    assert multipart["properties"]["file"]["format"] == "binary"
    assert body["content"]["application/json"]["schema"]["required"] == ["name"]


def test_cache_manager_uses_the_apps_redis_url(tmp_path: Path, redis_url: str) -> None:
    import redis

    from avatarbot.plugins.service import PluginService

    plugins = PluginService(tmp_path / "data", redis_url=redis_url)
    try:
        plugins.manager.load_plugin("cache_manager")
        key = f"k-{uuid.uuid4().hex}"
        plugins.manager.call_tool("cache_manager.set", key=key, value={"v": 1})
        assert plugins.manager.call_tool("cache_manager.stats")["backend"] == "redis"
        server = redis.Redis.from_url(redis_url)
        try:
            assert any(key in k.decode() for k in server.keys("*"))
        finally:
            server.close()
    finally:
        plugins.manager.shutdown()
    # Without any Redis URL it stays in memory.
    local = PluginService(tmp_path / "data2")
    try:
        local.manager.load_plugin("cache_manager")
        assert local.manager.call_tool("cache_manager.stats")["backend"] == "memory"
    finally:
        local.manager.shutdown()
