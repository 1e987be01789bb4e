"""Chaos: the real server (`avatarbot serve`, SQLite in a tmp dir) is SIGKILLed at each stage.

For every kind of work (a /video command, an agent asked for a video, /voice, a scheduled
video report) and every stage (just after the ack, mid-render, mid-upload, mid-send), the
server runs as a subprocess against a fake Feishu, kills itself at exactly that stage
(AVATARBOT_TEST_KILL_AT, a test-only switch, see avatarbot/killpoint.py), and is started
again. The user must then get exactly one reply: one video (or audio), no doubled text.
No sleeps: the kill point is deterministic, and the check waits until the database says
that nothing is left to do (no unfinished event, task, run or delivery).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from avatarbot.killpoint import KILL_ENV
from tests.helpers.fake_feishu import FakeFeishu, message_event, signed_body
from tests.helpers.servers import wait_until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TOKEN, ENCRYPT_KEY = "chaos-token", "chaos-encrypt-key"
STAGES = ("ack", "render", "upload", "send")
KINDS = {  # kind -> (what the user sends, the media kind of the reply)
    "command": ("/video hi", "video"),
    "agent": ("make a video saying hi", "video"),
    "voice": ("/voice hi", "audio"),
    "scheduled": ("make a video saying good morning", "video"),
}
FEISHU_TYPE = {"video": "media", "audio": "audio"}
RESULTS: dict[tuple[str, str], str] = {}


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(tmp: Path, fake: FakeFeishu, kill_at: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARBOT_")}
    env.update(
        PYTHONPATH=str(ROOT),
        AVATARBOT_ENV="test",
        AVATARBOT_DATABASE_URL=f"sqlite+aiosqlite:///{tmp / 'avatarbot.db'}",
        AVATARBOT_DATA_DIR=str(tmp / "data"),
        AVATARBOT_AUTH__SECRET_KEY="chaos-secret-key-0123456789abcdef0123456789",
        AVATARBOT_LOG_LEVEL="WARNING",
        AVATARBOT_FEISHU__APP_ID=fake.app_id,
        AVATARBOT_FEISHU__APP_SECRET=fake.app_secret,
        AVATARBOT_FEISHU__VERIFICATION_TOKEN=TOKEN,
        AVATARBOT_FEISHU__ENCRYPT_KEY=ENCRYPT_KEY,
        AVATARBOT_FEISHU__BASE_URL=fake.base_url,
        AVATARBOT_BOT__RECOVER_INTERVAL_S="0.5",
        AVATARBOT_JOBS__HEARTBEAT_INTERVAL_S="1",
        AVATARBOT_PIPELINE__VIDEO_SIZE="192",  # a real render, kept small: 16 cases on 2 cores
    )
    if kill_at:
        env[KILL_ENV] = kill_at
    return env


def _start(tmp: Path, fake: FakeFeishu, kill_at: str | None, run: int) -> Server:
    port = _free_port()
    log = tmp / f"server-{run}.log"
    proc = subprocess.Popen(  # the product as an operator runs it
        [sys.executable, "-m", "avatarbot", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp,
        env=_env(tmp, fake, kill_at),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    server = Server(proc, f"http://127.0.0.1:{port}", log)

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{server.base_url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, timeout=120, interval=0.1)
    return server


def _post_event(server: Server, event_id: str, chat: str, text: str) -> None:
    event = message_event(event_id=event_id, chat_id=chat, text=text, token=TOKEN)
    raw, headers = signed_body(event, ENCRYPT_KEY)
    response = httpx.post(
        f"{server.base_url}/webhooks/feishu", content=raw, headers=headers, timeout=30
    )
    assert response.status_code == 200  # the ack: from here on the message is ours to keep


def _schedule_and_run(server: Server, chat: str, prompt: str) -> None:
    url = f"{server.base_url}/api/v1"
    credentials = {"email": "ops@example.com", "password": "correct horse battery"}
    assert httpx.post(f"{url}/auth/register", json=credentials, timeout=30).status_code == 201
    login = httpx.post(
        f"{url}/auth/login",
        data={"username": credentials["email"], "password": credentials["password"]},
        timeout=30,
    )
    auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
    agents = httpx.get(f"{url}/agents/list", headers=auth, timeout=30).json()
    agent = next((a["name"] for a in agents if a.get("is_default")), agents[0]["name"])
    schedule = httpx.post(
        f"{url}/scheduler/create",
        headers=auth,
        timeout=30,
        json={
            "name": "morning",
            "cron": "0 0 1 1 *",  # never due during the test: only "run now" fires it
            "timezone": "UTC",
            "agent": agent,
            "prompt": prompt,
            "output": "video",
            "target": {"platform": "feishu", "chat_id": chat},
        },
    )
    assert schedule.status_code in (200, 201), schedule.text
    with contextlib.suppress(httpx.HTTPError):  # the server dies during this call: the point
        httpx.post(f"{url}/scheduler/{schedule.json()['id']}/run", headers=auth, timeout=120)


def _settled(db: Path) -> bool:
    """Nothing left to do: every event, task, run and delivery is final."""
    with sqlite3.connect(db) as conn:
        open_work = [
            "SELECT count(*) FROM processed_events WHERE status = 'received'",
            "SELECT count(*) FROM tasks WHERE status IN ('pending', 'running')",
            "SELECT count(*) FROM schedule_runs WHERE status = 'running'",
            "SELECT count(*) FROM deliveries WHERE status = 'pending'",
        ]
        return all(conn.execute(sql).fetchone()[0] == 0 for sql in open_work)


@pytest.fixture(scope="module")
def fake(request: pytest.FixtureRequest) -> Iterator[FakeFeishu]:
    platform = FakeFeishu().start()
    yield platform
    platform.stop()
    if RESULTS:
        # Past pytest's output capture, so that the table shows in every run, green or red.
        capture: Any = request.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled():
            print("\nchaos: replies after SIGKILL + restart (stage x kind)")
            print("stage    " + "".join(f"{k:>12}" for k in KINDS))
            for stage in STAGES:
                cells = "".join(f"{RESULTS.get((stage, k), '-'):>12}" for k in KINDS)
                print(f"{stage:<9}{cells}")


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("stage", STAGES)
def test_sigkill_then_restart_gives_exactly_one_reply(
    fake: FakeFeishu, tmp_path: Path, stage: str, kind: str
) -> None:
    text, media = KINDS[kind]
    chat = f"oc_{kind}_{stage}"
    kill_at = stage if stage in ("ack", "render") else f"{stage}:{media}"

    first = _start(tmp_path, fake, kill_at, run=1)
    try:
        if kind == "scheduled":
            _schedule_and_run(first, chat, text)
        else:
            _post_event(first, f"ev-{kind}-{stage}", chat, text)
        assert first.proc.wait(timeout=240) == -signal.SIGKILL, first.log.read_text()[-3000:]
    finally:
        first.stop()

    second = _start(tmp_path, fake, None, run=2)
    try:
        wait_until(lambda: _settled(tmp_path / "avatarbot.db"), timeout=240, interval=0.2)
    finally:
        second.stop()

    mine = [m for m in fake.sent() if m["receive_id"] == chat]
    replies = [m for m in mine if m["msg_type"] == FEISHU_TYPE[media]]
    texts = [m["content"]["text"] for m in mine if m["msg_type"] == "text"]
    RESULTS[(stage, kind)] = f"{len(replies)} {media}"
    assert len(replies) == 1, f"{len(replies)} {media} messages; texts: {texts}"
    assert not [t for t in texts if t.startswith("Sorry")], texts
    assert len(texts) == len(set(texts)), f"a text was sent twice: {texts}"
    upload = fake.uploads[replies[0]["content"]["file_key"]]
    assert len(upload["data"]) > 1000  # a real file, not a stub
