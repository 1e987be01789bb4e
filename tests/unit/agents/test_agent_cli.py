from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from avatarbot.cli import app


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AVATARBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AVATARBOT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    monkeypatch.setenv("AVATARBOT_AUTH__SECRET_KEY", "cli-test-secret-0123456789abcdef0123")


def test_agent_list_and_chat(env: None) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["agent", "list"])
    assert listed.exit_code == 0, listed.output
    assert (
        "assistant (default)" in listed.output and "video,voice,plugins,schedule" in listed.output
    )
    chat = runner.invoke(app, ["agent", "chat", "what can you do"])
    assert chat.exit_code == 0, chat.output
    assert "make a talking digital-human video" in chat.output
