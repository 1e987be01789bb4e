"""Entry points other domains use to ask the pipeline for media (bot, agents, scheduler, API).

Everything a worker needs goes into the Task params (resolved image path, voice), so the
handler itself never touches the database and runs the same in a thread or a Celery worker.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from avatarbot.errors import InvalidInput, NotFound
from avatarbot.jobs import service as task_service
from avatarbot.pipeline.types import Mode
from avatarbot.storage.models import DigitalHuman, Task, TaskType, VoiceProfile
from avatarbot.textnorm import normalize_text

if TYPE_CHECKING:  # type-only: services -> jobs -> handlers would import back
    from avatarbot.services import Services

WECOM_MAX_VIDEO_BYTES = 10 * 1024 * 1024
FEISHU_MAX_VIDEO_BYTES = 30 * 1024 * 1024


def default_portrait_path() -> Path:
    """The portrait shipped with the package (see pipeline/assets/README.md)."""
    return Path(__file__).parent / "assets" / "default_portrait.jpg"


async def ensure_default_digital_human(services: Services) -> DigitalHuman:
    """The built-in digital human, created on first start so everything works out of the box."""
    async with services.db.session() as session:
        existing = (
            await session.scalars(select(DigitalHuman).where(DigitalHuman.is_builtin.is_(True)))
        ).first()
        if existing is not None:
            return existing
        human = DigitalHuman(
            name="Grace",
            description="Built-in presenter (public-domain portrait shipped with avatarbot).",
            image_path=str(default_portrait_path()),
            default_mode=services.settings.pipeline.default_mode,
            is_builtin=True,
        )
        session.add(human)
        await session.commit()
        await session.refresh(human)
        return human


def validate_text(text: str | None, max_chars: int) -> str:
    cleaned = normalize_text(text or "").strip()  # no lone surrogates or controls into TTS
    if not cleaned:
        raise InvalidInput("the text to speak is empty")
    if len(cleaned) > max_chars:
        raise InvalidInput(
            f"the text is too long ({len(cleaned)} characters; the limit is {max_chars})"
        )
    return cleaned


def validate_mode(mode: str | None, default: str) -> Mode:
    value = mode or default
    try:
        return Mode(value)
    except ValueError:
        choices = ", ".join(m.value for m in Mode)
        raise InvalidInput(f"unknown mode {value!r}; choose one of: {choices}") from None


async def create_video_task(
    services: Services,
    *,
    text: str | None = None,
    audio_path: str | None = None,
    digital_human_id: str | None = None,
    mode: str | None = None,
    voice: str | None = None,
    user_id: int | None = None,
    max_bytes: int | None = None,
    name: str = "",
    extra: dict[str, Any] | None = None,
    animator: str | None = None,
    enhancer: str | None = None,
) -> Task:
    """Validate a video request, store it as a pending Task and hand it to the executor."""
    from avatarbot.pipeline.backend_choice import check_backend_name

    settings = services.settings
    if audio_path is None:
        text = validate_text(text, settings.pipeline.max_text_chars)
    chosen_mode = validate_mode(mode, settings.pipeline.default_mode)
    # Unknown names are the caller's mistake (422) now; a known backend that lacks its files
    # here may still be present on the worker that runs the task.
    backends = {
        "animator": check_backend_name("animator", animator),
        "enhancer": check_backend_name("enhancer", enhancer),
    }
    async with services.db.session() as session:
        if digital_human_id:
            human = await session.get(DigitalHuman, digital_human_id)
            if human is None:
                raise NotFound(f"digital human {digital_human_id} not found")
        else:
            human = await ensure_default_digital_human(services)
        voice_params: dict[str, Any] = {}
        if human.voice_profile_id and not voice:
            profile = await session.get(VoiceProfile, human.voice_profile_id)
            if profile is not None:
                voice_params = {
                    "backend": profile.backend,
                    "voice": profile.voice or None,
                    "language": profile.language or None,
                    "reference_path": profile.reference_path,
                    **(profile.params or {}),
                }
        params: dict[str, Any] = {
            "text": text,
            "audio_path": audio_path,
            "digital_human_id": human.id,
            "image_path": human.image_path,
            "mode": chosen_mode.value,
            "voice": voice or voice_params.get("voice"),
            "voice_params": voice_params,
            "max_bytes": max_bytes,
            "size": settings.pipeline.video_size,
            # "auto" is left out: the worker's pipeline.*_backend setting then applies.
            **{k: v for k, v in backends.items() if v != "auto"},
            **(extra or {}),
        }
        task = await task_service.create(
            session=session,
            task_type=TaskType.VIDEO_GENERATION,
            params=params,
            user_id=user_id,
            name=name or (text or "audio")[:60],
            queue="gpu" if chosen_mode.enhanced else "cpu",
        )
    await services.executor.submit(task.id)
    return task
