"""Speech as a background Task (TaskType.VOICE_SYNTHESIS): for the bot's audio replies and agent
tools that want a file (opus for Feishu, AMR for WeCom) with progress and cancellation.

`create_voice_task` validates and queues; `run_voice_synthesis` is the blocking handler the
executor runs in a worker thread (or a Celery worker), writing DATA_DIR/media/voice/<task>.<ext>.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from avatarbot.errors import Cancelled, InvalidInput, NotFound
from avatarbot.jobs.handlers import JobContext
from avatarbot.storage.models import Task, TaskType, VoiceProfile

if TYPE_CHECKING:  # type-only: services -> jobs -> handlers would import back
    from avatarbot.services import Services

# Output format -> file extension (".ogg" for opus, which is what players and the task
# result endpoint recognise).
VOICE_TASK_FORMATS = {"wav": "wav", "mp3": "mp3", "opus": "ogg", "amr": "amr"}


def run_voice_synthesis(ctx: JobContext) -> dict[str, Any]:
    from avatarbot.pipeline.audio_io import encode_audio
    from avatarbot.pipeline.synthesizer import VoiceSynthesizer

    params = ctx.params
    fmt = params.get("format") or "wav"
    if fmt not in VOICE_TASK_FORMATS:
        raise InvalidInput(f"unsupported audio format {fmt!r}")
    ctx.report("tts", 5.0, "loading voice")
    synth = VoiceSynthesizer(backend=params.get("backend") or ctx.settings.pipeline.tts_backend)
    reference = params.get("reference_path")
    ctx.report("tts", 20.0, "synthesizing speech")
    speech = synth.synthesize_speech(
        params.get("text") or "",
        voice=params.get("voice"),
        language=params.get("language"),
        speed=params.get("speed"),
        pitch=params.get("pitch"),
        speaker_wav=reference if reference and synth.supports_cloning else None,
    )
    if ctx.cancelled():
        raise Cancelled("cancelled")
    ctx.report("encode", 70.0, f"encoding {fmt}")
    out = ctx.settings.media_dir / "voice" / f"{ctx.task_id}.{VOICE_TASK_FORMATS[fmt]}"
    encode_audio(speech.samples, speech.sample_rate, out, fmt)
    return {
        "path": str(out),
        "duration_s": round(speech.duration, 3),
        "format": fmt,
        "backend": synth.backend_name,
        "language": speech.language,
    }


async def create_voice_task(
    services: Services,
    *,
    text: str,
    voice: str | None = None,
    language: str | None = None,
    speed: float | None = None,
    pitch: float | None = None,
    audio_format: str = "wav",
    profile_id: str | None = None,
    user_id: int | None = None,
    name: str = "",
) -> Task:
    """Validate a speech request, store it as a pending Task and hand it to the executor."""
    from avatarbot.jobs import service as task_service
    from avatarbot.pipeline.service import validate_text

    text = validate_text(text, services.settings.pipeline.max_text_chars)
    if audio_format not in VOICE_TASK_FORMATS:
        choices = ", ".join(VOICE_TASK_FORMATS)
        raise InvalidInput(f"unsupported audio format {audio_format!r}; use one of {choices}")
    params: dict[str, Any] = {
        "text": text,
        "voice": voice,
        "language": language,
        "speed": speed,
        "pitch": pitch,
        "format": audio_format,
        "backend": None,
        "reference_path": None,
    }
    async with services.db.session() as session:
        if profile_id:
            profile = await session.get(VoiceProfile, profile_id)
            if profile is None or profile.user_id not in (None, user_id):
                raise NotFound(f"voice profile {profile_id} not found")
            profile_params = profile.params or {}
            params.update(
                backend=profile.backend,
                voice=voice or profile.voice or None,
                language=language or profile.language or None,
                speed=speed if speed is not None else profile_params.get("speed"),
                pitch=pitch if pitch is not None else profile_params.get("pitch"),
                reference_path=profile.reference_path,
            )
        task = await task_service.create(
            session=session,
            task_type=TaskType.VOICE_SYNTHESIS,
            params=params,
            user_id=user_id,
            name=name or text[:60],
            queue="cpu",
        )
    await services.executor.submit(task.id)
    return task
