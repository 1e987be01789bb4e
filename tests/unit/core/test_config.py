from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from avatarbot.config import ConfigManager, Settings


def test_env_prefix_and_nested_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVATARBOT_FEISHU__APP_ID", "cli_123")
    monkeypatch.setenv("AVATARBOT_FEISHU__APP_SECRET", "s3cret")
    monkeypatch.setenv("AVATARBOT_AUTH__OPEN_REGISTRATION", "true")
    monkeypatch.setenv("AVATARBOT_REDIS_URL", "")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.feishu.app_id == "cli_123" and s.feishu.enabled
    assert s.auth.open_registration is True
    assert s.redis_url is None
    assert "s3cret" not in repr(s) and "s3cret" not in s.model_dump_json()
    assert s.database_url == "sqlite+aiosqlite:///./data/avatarbot.db"


def test_dotenv_and_yaml_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("AVATARBOT_WECOM__CORP_ID=ww1\n")
    yaml_file = tmp_path / "conf.yaml"
    yaml_file.write_text(
        "llm:\n  base_url: http://127.0.0.1:1/v1\n  model: m\nwecom:\n  corp_id: yaml\n"
    )
    monkeypatch.setenv("AVATARBOT_CONFIG_FILE", str(yaml_file))
    s = Settings()
    assert s.wecom.corp_id == "ww1"  # .env beats YAML
    assert s.llm.enabled and s.llm.model == "m"


def test_generated_secret_key_is_stable(tmp_path: Path) -> None:
    s = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    key = s.secret_key()
    assert len(key) > 40 and s.secret_key() == key
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_reload_keeps_old_config_on_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    manager = ConfigManager(Settings())
    (tmp_path / ".env").write_text("AVATARBOT_LOG_LEVEL=DEBUG\n")
    result = manager.reload()
    assert manager.settings.log_level == "DEBUG" and "log_level" in result["changed"]
    (tmp_path / ".env").write_text("AVATARBOT_PORT=not-a-number\n")
    with pytest.raises(ValueError, match="port"):
        manager.reload()
    assert manager.settings.log_level == "DEBUG" and manager.settings.port == 8000


async def test_reload_endpoint_is_superuser_only(
    client: httpx.AsyncClient, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await client.post("/api/v1/admin/reload-config")).status_code == 401
    monkeypatch.setenv("AVATARBOT_JOBS__MAX_ATTEMPTS", "oops")
    r = await client.post("/api/v1/admin/reload-config", headers=admin_headers)
    assert r.status_code == 422 and "old config kept" in r.json()["detail"]
    monkeypatch.setenv("AVATARBOT_JOBS__MAX_ATTEMPTS", "5")
    r = await client.post("/api/v1/admin/reload-config", headers=admin_headers)
    assert r.status_code == 200 and "jobs" in r.json()["changed"]
