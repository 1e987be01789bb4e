"""`avatarbot worker` refuses to start without Redis or with an unknown queue."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from avatarbot.cli import app


def test_worker_needs_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AVATARBOT_REDIS_URL", raising=False)
    result = CliRunner().invoke(app, ["worker"])
    assert result.exit_code == 2
    assert "AVATARBOT_REDIS_URL" in result.output


def test_worker_rejects_unknown_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVATARBOT_REDIS_URL", "redis://127.0.0.1:1/0")
    result = CliRunner().invoke(app, ["worker", "--queues", "cpu,tpu"])
    assert result.exit_code == 2
    assert "unknown queue(s) ['tpu']" in result.output
