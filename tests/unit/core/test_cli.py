"""The `avatarbot` command, run as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from avatarbot.storage import migrate

REPO_ROOT = Path(__file__).resolve().parents[3]


def _run(args: list[str], tmp_path: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AVATARBOT_")},
        "PYTHONPATH": str(REPO_ROOT),
        "AVATARBOT_DATA_DIR": str(tmp_path / "data"),
        "AVATARBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
    }
    return subprocess.run(
        [sys.executable, "-m", "avatarbot", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )


@pytest.mark.parametrize("args", [[], ["serve"], ["db"], ["user"], ["user", "create"]])
def test_help_everywhere(args: list[str], tmp_path: Path) -> None:
    out = _run([*args, "--help"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Usage" in out.stdout


def test_db_and_user_commands(tmp_path: Path) -> None:

    head = migrate.head()  # the newest revision, whichever migrations are merged
    out = _run(["db", "upgrade"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"database at {head}" in out.stdout
    out = _run(["db", "current"], tmp_path)
    assert f"current: {head}" in out.stdout
    out = _run(
        ["user", "create", "--email", "root@example.com", "--superuser"],
        tmp_path,
        stdin="long enough password\n",
    )
    assert out.returncode == 0, out.stderr
    assert "superuser=True" in out.stdout
    out = _run(["user", "create", "--email", "root@example.com"], tmp_path, stdin="another pass\n")
    assert out.returncode == 2 and "already exists" in out.stderr
    out = _run(["user", "create", "--email", "x@example.com"], tmp_path, stdin="short\n")
    assert out.returncode == 2 and "at least 8" in out.stderr


def test_version_needs_no_sub_command(tmp_path: Path) -> None:
    from avatarbot import __version__

    out = _run(["--version"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == __version__


def test_worker_without_redis_says_what_to_set(tmp_path: Path) -> None:
    out = _run(["worker"], tmp_path)
    assert out.returncode == 2
    assert "AVATARBOT_REDIS_URL" in out.stderr and "Traceback" not in out.stderr


def test_serve_names_the_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from avatarbot.cli import missing_extras
    from avatarbot.config import Settings

    plain = Settings(_env_file=None, redis_url=None, database_url="sqlite+aiosqlite:///x.db")
    scaled = Settings(
        _env_file=None,
        redis_url="redis://127.0.0.1:6379/0",
        database_url="postgresql+asyncpg://u:p@127.0.0.1/db",
    )
    real_find_spec = importlib.util.find_spec
    absent = {"celery", "asyncpg"}
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in absent else real_find_spec(name, *a),
    )
    assert missing_extras(plain) == []
    assert missing_extras(scaled) == ["redis", "postgres"]
    absent.clear()
    assert missing_extras(scaled) == []
