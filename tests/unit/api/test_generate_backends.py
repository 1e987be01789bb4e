"""POST /digital-human/generate: optional animator/enhancer (default auto, unknown -> 422); the
task result and /health say which backend served each mode and why a better one was skipped."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from avatarbot.config import Settings
from tests.conftest import make_settings


@pytest.fixture
def settings(tmp_path) -> Settings:
    return make_settings(tmp_path, pipeline={"video_size": 128})  # small: fast renders


@pytest.fixture(autouse=True)
def real_video_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pipeline's own handler, whatever stand-in an earlier test left registered."""
    from avatarbot.jobs import handlers
    from avatarbot.pipeline.video_task import run_video_generation
    from avatarbot.storage.models import TaskType

    monkeypatch.setitem(handlers._HANDLERS, TaskType.VIDEO_GENERATION, run_video_generation)


async def _finished(client: httpx.AsyncClient, app: Any, headers: dict, task_id: str) -> dict:
    await app.state.services.executor.wait(task_id, timeout=120)
    r = await client.get(f"/api/v1/tasks/{task_id}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_unknown_backend_names_are_422_and_queue_nothing(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    for field, name in (("animator", "nosuch"), ("enhancer", "gfpgn")):
        r = await client.post(
            "/api/v1/digital-human/generate",
            json={"text": "Hello.", field: name},
            headers=admin_headers,
        )
        assert r.status_code == 422, r.text
        assert f"unknown {field} backend {name!r}" in r.json()["detail"]
    tasks = await client.get("/api/v1/tasks", headers=admin_headers)
    assert tasks.status_code == 200 and tasks.json() == []


async def test_auto_result_names_the_backends_and_why_better_ones_were_skipped(
    client: httpx.AsyncClient, app: Any, admin_headers: dict[str, str]
) -> None:
    r = await client.post(
        "/api/v1/digital-human/generate",
        json={"text": "Hi.", "mode": "enhanced_lipsync", "animator": "auto"},
        headers=admin_headers,
    )
    assert r.status_code == 202, r.text
    task = await _finished(client, app, admin_headers, r.json()["task_id"])
    assert task["status"] == "completed", task["error_message"]
    result = task["result"]
    assert (result["mode"], result["animator"], result["enhancer"]) == (
        "enhanced_lipsync", "procedural", "detail",
    )  # fmt: skip
    assert "models/wav2lip/wav2lip_gan.pth" in result["skipped_backends"]["wav2lip"]
    assert "GFPGANv1.4.pth" in result["skipped_backends"]["gfpgan"]


async def test_a_named_backend_without_its_files_fails_the_task_with_the_reason(
    client: httpx.AsyncClient, app: Any, admin_headers: dict[str, str]
) -> None:
    r = await client.post(
        "/api/v1/digital-human/generate",
        json={"text": "Hi.", "mode": "lipsync", "animator": "wav2lip", "enhancer": "none"},
        headers=admin_headers,
    )
    assert r.status_code == 202, r.text  # the worker that runs it may have the file
    task = await _finished(client, app, admin_headers, r.json()["task_id"])
    assert task["status"] == "failed"
    assert "wav2lip" in task["error_message"] and "wav2lip_gan.pth" in task["error_message"]


async def test_health_says_what_serves_each_mode(client: httpx.AsyncClient) -> None:
    pipeline = (await client.get("/health")).json()["components"]["pipeline"]
    modes = pipeline["modes"]
    assert set(modes) == {"lipsync", "talking_head", "enhanced_lipsync", "enhanced_talking_head"}
    assert modes["lipsync"]["animator"] == "procedural"
    assert modes["lipsync"]["skipped"]["wav2lip"].startswith("missing models/wav2lip/")
    assert "SadTalker checkout" in modes["talking_head"]["skipped"]["sadtalker"]
    assert modes["enhanced_talking_head"]["enhancer"] == "detail"
    assert pipeline["models"]["loaded"] == [] and pipeline["models"]["budget_mb"] == 4096.0
