"""config/avatarbot.example.env is the documented list of settings: it must match config.py."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from avatarbot.config import Settings

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "avatarbot.example.env"


def _setting_names() -> set[str]:
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            names |= {f"AVATARBOT_{name}__{leaf}".upper() for leaf in sub.model_fields}
        else:
            names.add(f"AVATARBOT_{name}".upper())
    return names


def _example_names() -> set[str]:
    # Active lines and commented-out examples ("# AVATARBOT_X=...") both document a key.
    pattern = re.compile(r"^#?\s*(AVATARBOT_[A-Z0-9_]+)=", re.MULTILINE)
    return set(pattern.findall(EXAMPLE.read_text(encoding="utf-8")))


def test_every_setting_is_in_the_example_env_and_nothing_else() -> None:
    settings, example = _setting_names(), _example_names()
    assert settings - example == set(), "settings missing from config/avatarbot.example.env"
    assert example - settings == set(), "keys in the example that config.py does not read"


def test_example_env_values_parse_as_settings(monkeypatch) -> None:
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.startswith("AVATARBOT_") and "=" in line:
            key, value = line.split("=", 1)
            monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)
    assert settings.pipeline.default_mode == "talking_head"
    assert settings.jobs.heartbeat_timeout_s == 60.0 and settings.redis_url is None
