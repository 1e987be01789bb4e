"""Speech as a background Task through the real local executor and the tasks API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from avatarbot.errors import InvalidInput, NotFound
from avatarbot.jobs import service as task_service
from avatarbot.pipeline.audio import AudioPreprocessor
from avatarbot.pipeline.voice_task import create_voice_task
from avatarbot.services import Services
from avatarbot.storage.models import TaskStatus, VoiceProfile


@pytest.fixture
def services(app: Any) -> Services:
    return app.state.services


async def _finished(services: Services, task_id: str) -> Any:
    assert await services.executor.wait(task_id, timeout=30) == TaskStatus.COMPLETED
    async with services.db.session() as s:
        return await task_service.get_or_raise(session=s, task_id=task_id)


@pytest.mark.parametrize(("fmt", "ext"), [("opus", "ogg"), ("amr", "amr")])
async def test_voice_task_writes_channel_audio(services: Services, fmt: str, ext: str) -> None:
    task = await create_voice_task(services, text="你好。Hello.", audio_format=fmt)
    done = await _finished(services, task.id)
    path = Path(done.result_path)
    assert path.suffix == f".{ext}" and path.parent == services.settings.media_dir / "voice"
    assert done.result["format"] == fmt and done.result["backend"] == "espeak"
    audio, sr = AudioPreprocessor(sample_rate=16000).load_audio(path)
    assert abs(len(audio) / sr - done.result["duration_s"]) < 0.1


async def test_voice_task_uses_profile_and_serves_result(
    services: Services, client: httpx.AsyncClient, admin_headers: dict
) -> None:
    async with services.db.session() as s:
        profile = VoiceProfile(name="slow", backend="espeak", voice="en-gb", params={"speed": 0.6})
        s.add(profile)
        await s.commit()
        profile_id = profile.id
    normal = await _finished(
        services, (await create_voice_task(services, text="A sentence to time.")).id
    )
    slow = await _finished(
        services,
        (await create_voice_task(services, text="A sentence to time.", profile_id=profile_id)).id,
    )
    assert slow.result["language"] == "en-gb"
    assert slow.result["duration_s"] > 1.3 * normal.result["duration_s"]
    r = await client.get(f"/api/v1/tasks/{slow.id}/result", headers=admin_headers)
    assert r.status_code == 200 and r.content[:4] == b"RIFF"


async def test_voice_task_rejects_bad_requests(services: Services) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        await create_voice_task(services, text="  ")
    with pytest.raises(InvalidInput, match="unsupported audio format"):
        await create_voice_task(services, text="hi", audio_format="flac")
    with pytest.raises(NotFound):
        await create_voice_task(services, text="hi", profile_id="missing")
