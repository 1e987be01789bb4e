"""create_video_task -> local executor -> run_video_generation -> MP4 + cover on disk, Task completed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from avatarbot.jobs import service as task_service
from avatarbot.pipeline import mux
from avatarbot.pipeline.service import create_video_task
from avatarbot.services import Services
from avatarbot.storage.models import TaskStatus

pytestmark = pytest.mark.slow


@pytest.fixture
def services(app: Any) -> Services:
    return app.state.services


async def test_video_task_renders_with_progress(services: Services) -> None:
    services.settings.pipeline.video_size = 256
    task = await create_video_task(services, text="Hello from avatarbot.", mode="talking_head")
    await services.executor.wait(task.id, timeout=120)
    async with services.db.session() as s:
        done = await task_service.get_or_raise(session=s, task_id=task.id)
    assert done.status == TaskStatus.COMPLETED, done.error_message
    assert done.progress == 100.0
    path = Path(done.result["path"])
    assert path.parent == services.settings.media_dir / "video"
    info = mux.probe(path)  # fails if the file is missing
    assert info.faststart and info.stream("audio") is not None
    with open(done.result["cover_path"], "rb") as cover:  # noqa: ASYNC230 - a test, tiny file
        assert cover.read(2) == b"\xff\xd8"
    assert done.result["animator"] == "procedural"


async def test_video_task_with_bad_image_fails_cleanly(services: Services, tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    task = await create_video_task(services, text="Hello.", extra={"image_path": str(bad)})
    await services.executor.wait(task.id, timeout=60)
    async with services.db.session() as s:
        done = await task_service.get_or_raise(session=s, task_id=task.id)
    assert done.status == TaskStatus.FAILED
    assert "corrupt" in (done.error_message or "")
    assert not list((services.settings.media_dir / "video").glob(f"{task.id}*"))
