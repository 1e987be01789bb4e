from __future__ import annotations

import json
import os

import pytest
import yaml

from avatarbot.errors import InvalidInput
from avatarbot.plugins.config import ConfigField, PluginConfig, PluginConfigSchema


def schema() -> PluginConfigSchema:
    return (
        PluginConfigSchema()
        .add(ConfigField("name", "string", required=True, min_value=2))
        .add(ConfigField("ttl", "integer", default=60, min_value=1, max_value=3600))
        .add(ConfigField("ratio", "float", default=0.5, min_value=0.0, max_value=1.0))
        .add(ConfigField("enabled", "boolean", default=True))
        .add(ConfigField("mode", "string", default="fast", choices=["fast", "slow"]))
        .add(ConfigField("tags", "list", default=[]))
        .add(ConfigField("extra", "dict"))
        .add(ConfigField("api_key", "string", secret=True))
        .add(
            ConfigField(
                "url",
                "string",
                validator=lambda v: None if v.startswith("http") else "must be an http URL",
            )
        )
    )


def test_validation_messages():
    config = PluginConfig(schema())
    ok, errors = config.validate()
    assert not ok and errors == ["name: required"]
    bad = {
        "name": "x",
        "ttl": True,
        "ratio": 2,
        "enabled": "yes",
        "mode": "medium",
        "tags": "a",
        "extra": [],
        "url": "ftp://x",
        "surprise": 1,
    }
    ok, errors = schema().validate(bad)
    assert not ok
    assert set(errors) == {
        "name: must be at least 2 in length",
        "ttl: expected integer, got bool",
        "ratio: must be at most 1.0",
        "enabled: expected boolean, got str",
        "mode: 'medium' is not one of ['fast', 'slow']",
        "tags: expected list, got str",
        "extra: expected dict, got list",
        "url: must be an http URL",
        "surprise: unknown setting",
    }


def test_get_set_defaults_and_secrets():
    config = PluginConfig(schema(), values={"name": "bot"})
    assert config.get("ttl") == 60 and config.get("missing", 7) == 7
    config.set("ttl", 120)
    assert config.get("ttl") == 120
    with pytest.raises(InvalidInput, match="at most 3600"):
        config.set("ttl", 99999)
    with pytest.raises(InvalidInput, match="unknown"):
        config.set("nope", 1)
    config.set("api_key", "sk-very-secret")
    assert config.as_dict()["api_key"] == "********"
    assert config.as_dict(mask_secrets=False)["api_key"] == "sk-very-secret"
    secret_schema = PluginConfigSchema().add(ConfigField("k", secret=True, choices=["aa"]))
    ok, errors = secret_schema.validate({"k": "leaked-value"})
    assert not ok and "leaked-value" not in " ".join(errors)


def test_custom_validator_that_raises():
    field = ConfigField("port", "integer", validator=lambda v: 1 / (v - v))
    assert field.validate(5) == ["port: division by zero"]
    assert ConfigField("p", "integer", validator=lambda v: v > 3).validate(2) == [
        "p: failed validation"
    ]


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_save_and_reload(tmp_path, fmt):
    path = tmp_path / "cfg.json"
    config = PluginConfig(schema(), path)
    config.update({"name": "bot", "ttl": 30, "tags": ["a"]})
    assert config.save(fmt) is True
    saved = config.path
    assert saved.suffix == (".json" if fmt == "json" else ".yaml")
    text = saved.read_text()
    data = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    assert data == {"name": "bot", "ttl": 30, "tags": ["a"]}
    again = PluginConfig(schema(), saved)
    assert again.get("ttl") == 30 and again.get("tags") == ["a"]


def test_hot_reload_on_file_change_and_bad_file_kept_out(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("name: bot\nttl: 10\n")
    config = PluginConfig(schema(), path)
    seen = []
    config.on_change(lambda c: seen.append(c.get("ttl")))
    assert config.check_for_changes() is False
    path.write_text("name: bot\nttl: 20\n")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert config.check_for_changes() is True
    assert config.get("ttl") == 20 and seen == [20]
    path.write_text("name: bot\nttl: -5\n")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 2_000_000))
    assert config.check_for_changes() is False
    assert config.get("ttl") == 20
    assert "at least 1" in config.last_error


def test_watch_thread_picks_up_change(tmp_path):
    import time

    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"name": "bot", "ttl": 5}))
    config = PluginConfig(schema(), path)
    config.watch(interval=0.02)
    try:
        path.write_text(json.dumps({"name": "bot", "ttl": 6}))
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
        deadline = time.monotonic() + 5
        while config.get("ttl") != 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert config.get("ttl") == 6
    finally:
        config.stop_watching()
