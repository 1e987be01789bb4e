"""Digital humans: a named portrait (+ optional voice profile) and video generation from it."""

from __future__ import annotations

import asyncio
import shutil
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, UploadFile, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from avatarbot.api.deps import CurrentUser, ServicesDep, SessionDep
from avatarbot.api.uploads import read_upload
from avatarbot.auth.access import (
    Caller,
    may_use_human,
    require_change,
    usable_voice_profile,
    visible_humans,
)
from avatarbot.errors import InvalidInput, NotFound, PermissionDenied, TooLarge
from avatarbot.pipeline import service as pipeline_service
from avatarbot.pipeline.image_limits import check_image_bytes
from avatarbot.storage.base import new_id
from avatarbot.storage.models import DigitalHuman, User

router = APIRouter(prefix="/digital-human", tags=["digital humans"])

IMAGE_SUFFIXES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}
VIDEO_SUFFIXES = (".mp4", ".mov", ".webm")
AUDIO_SUFFIXES = (".wav", ".mp3", ".ogg", ".m4a", ".amr", ".opus", ".flac", ".webm")


class DigitalHumanPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    description: str
    voice_profile_id: str | None
    default_mode: str
    is_builtin: bool
    created_at: datetime
    portrait_url: str = ""
    source_type: Literal["image", "video"] = "image"

    @classmethod
    def of(cls, human: DigitalHuman) -> DigitalHumanPublic:
        public = cls.model_validate(human)
        public.portrait_url = f"/api/v1/digital-human/{human.id}/portrait"
        if Path(human.image_path).suffix.lower() in VIDEO_SUFFIXES:
            public.source_type = "video"
        return public


class GenerateRequest(BaseModel):
    text: str = Field(min_length=1, max_length=20_000)
    digital_human_id: str | None = None
    mode: str | None = None
    voice: str | None = Field(default=None, max_length=100)
    framing: Literal["auto", "full", "portrait"] | None = Field(
        default=None,
        description="auto: crop head and shoulders when the face is small (default from "
        "config); full: the whole picture; portrait: always crop",
    )

    # Backends: "auto" lets the mode choose (GET /health says what it picks and why).
    animator: str = Field(default="auto", max_length=50)
    enhancer: str = Field(default="auto", max_length=50)


class GenerateResponse(BaseModel):
    task_id: str
    status: str
    status_url: str
    result_url: str


def _check_access(human: DigitalHuman, user: User) -> None:
    if not may_use_human(human, Caller.of(user)):
        raise NotFound(f"digital human {human.id} not found")


async def _get_visible(session: SessionDep, human_id: str, user: User) -> DigitalHuman:
    human = await session.get(DigitalHuman, human_id)
    if human is None:
        raise NotFound(f"digital human {human_id} not found")
    _check_access(human, user)
    return human


def _image_suffix(data: bytes) -> str | None:
    """.jpg/.png/.webp from the file's magic bytes; None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return None


def _validate_portrait(path: Path) -> None:
    """Reject images without exactly one detectable face (blocking: run in a thread).

    A video source is checked (length, container, one face in every frame of its loop), its
    per-frame face analysis cached next to it, and its first frame kept as the poster."""
    from avatarbot.pipeline import video_source

    if path.suffix in VIDEO_SUFFIXES:
        video_source.analyse_video(path)
        video_source.write_poster(path, path.with_name("poster.jpg"))
        return
    from avatarbot.pipeline.face import analyse_portrait
    from avatarbot.pipeline.framing import load_framed

    # Framed as a render would frame it: a small face in a full-body photo is found too.
    analyse_portrait(load_framed(path).portrait)


@router.post("/create", response_model=DigitalHumanPublic, status_code=status.HTTP_201_CREATED)
async def create_digital_human(
    user: CurrentUser,
    services: ServicesDep,
    session: SessionDep,
    name: Annotated[str, Form(min_length=1, max_length=100)],
    image: Annotated[
        UploadFile,
        File(
            description="Portrait: JPEG, PNG or WebP, one face; or a short video of the person "
            "(mp4, mov or webm, at most 60 s and 100 MB, one face)"
        ),
    ],
    description: Annotated[str, Form(max_length=2000)] = "",
    voice_profile_id: Annotated[str | None, Form()] = None,
    default_mode: Annotated[str | None, Form()] = None,
) -> DigitalHumanPublic:
    """Create a digital human from an uploaded portrait or short video (checked for one face)."""
    from avatarbot.pipeline.video_source import MAX_VIDEO_BYTES, video_suffix

    settings = services.settings
    mode = pipeline_service.validate_mode(default_mode, settings.pipeline.default_mode)
    if voice_profile_id:
        # Someone else's private voice cannot be borrowed: it looks like a missing one.
        try:
            await usable_voice_profile(session, voice_profile_id, Caller.of(user))
        except NotFound:
            raise InvalidInput(f"voice profile {voice_profile_id} not found") from None
    image_limit = settings.pipeline.max_upload_mb * 1024 * 1024
    data = await read_upload(image, max_bytes=max(image_limit, MAX_VIDEO_BYTES))
    # By the bytes, not the declared type: a JPEG sent as image/png was stored as portrait.png.
    suffix = _image_suffix(data)
    if suffix is not None and len(data) > image_limit:
        raise TooLarge(f"upload too large (limit {settings.pipeline.max_upload_mb} MB)")
    name_stem = "portrait"
    if suffix is None:
        suffix, name_stem = video_suffix(data[:12]), "source"
    if suffix is None:
        raise InvalidInput(
            "the portrait must be a JPEG, PNG or WebP image, or an mp4, mov or webm video"
        )
    if name_stem == "portrait":
        check_image_bytes(data, settings.pipeline.max_image_megapixels)
    human_id = new_id()
    folder = settings.data_dir / "digital_humans" / human_id
    path = folder / f"{name_stem}{suffix}"

    def _store() -> None:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        try:
            _validate_portrait(path)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # nothing half-written stays behind
            raise

    await asyncio.to_thread(_store)
    human = DigitalHuman(
        id=human_id,
        user_id=user.id,
        name=name,
        description=description,
        image_path=str(path),
        voice_profile_id=voice_profile_id or None,
        default_mode=mode.value,
    )
    session.add(human)
    await session.commit()
    await session.refresh(human)
    return DigitalHumanPublic.of(human)


@router.post("/generate", response_model=GenerateResponse, status_code=status.HTTP_202_ACCEPTED)
async def generate_video(
    user: CurrentUser,
    services: ServicesDep,
    session: SessionDep,
    body: GenerateRequest,
) -> GenerateResponse:
    """Start a video of a digital human speaking `text`; poll the task or watch WS /ws/progress."""
    if body.digital_human_id:
        await _get_visible(session, body.digital_human_id, user)
    task = await pipeline_service.create_video_task(
        services,
        text=body.text,
        digital_human_id=body.digital_human_id,
        mode=body.mode,
        voice=body.voice,
        user_id=user.id,
        extra={"framing": body.framing} if body.framing else None,
        animator=body.animator,
        enhancer=body.enhancer,
    )
    return _accepted(task.id, task.status.value)


@router.post(
    "/generate-from-audio", response_model=GenerateResponse, status_code=status.HTTP_202_ACCEPTED
)
async def generate_video_from_audio(
    user: CurrentUser,
    services: ServicesDep,
    session: SessionDep,
    audio: Annotated[UploadFile, File(description="Speech: wav, mp3, ogg, m4a, amr, ...")],
    digital_human_id: Annotated[str | None, Form()] = None,
    mode: Annotated[str | None, Form()] = None,
    framing: Annotated[Literal["auto", "full", "portrait"] | None, Form()] = None,
    animator: Annotated[str, Form(max_length=50)] = "auto",
    enhancer: Annotated[str, Form(max_length=50)] = "auto",
) -> GenerateResponse:
    """Start a video of a digital human lip-syncing an uploaded recording."""
    if digital_human_id:
        await _get_visible(session, digital_human_id, user)
    settings = services.settings
    suffix = Path(audio.filename or "").suffix.lower()
    if suffix not in AUDIO_SUFFIXES:
        raise InvalidInput(
            f"unsupported audio type {suffix or '(none)'}; use one of {AUDIO_SUFFIXES}"
        )
    data = await read_upload(audio, max_bytes=settings.pipeline.max_upload_mb * 1024 * 1024)
    path = settings.media_dir / "uploads" / f"{new_id()}{suffix}"
    await asyncio.to_thread(_store_audio, path, data)
    try:
        task = await pipeline_service.create_video_task(
            services,
            audio_path=str(path),
            digital_human_id=digital_human_id,
            mode=mode,
            user_id=user.id,
            name=f"audio: {audio.filename or path.name}"[:60],
            extra={"framing": framing} if framing else None,
            animator=animator,
            enhancer=enhancer,
        )
    except BaseException:
        await asyncio.to_thread(path.unlink, True)  # no orphan upload without a task
        raise
    return _accepted(task.id, task.status.value)


def _store_audio(path: Path, data: bytes) -> None:
    """Write the upload and check it decodes, so junk is a 422 now rather than a failed task
    later; a refused file is removed again (blocking: run in a thread)."""
    from avatarbot.pipeline.upload_checks import check_speech_file

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    try:
        check_speech_file(path)  # fully decoded, as the render will read it
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _accepted(task_id: str, task_status: str) -> GenerateResponse:
    return GenerateResponse(
        task_id=task_id,
        status=task_status,
        status_url=f"/api/v1/tasks/{task_id}",
        result_url=f"/api/v1/tasks/{task_id}/result",
    )


@router.get("/list", response_model=list[DigitalHumanPublic])
async def list_digital_humans(
    user: CurrentUser, services: ServicesDep, session: SessionDep
) -> list[DigitalHumanPublic]:
    """Your digital humans plus the built-in ones (all of them for superusers)."""
    await pipeline_service.ensure_default_digital_human(services)
    stmt = select(DigitalHuman).order_by(DigitalHuman.created_at)
    stmt = stmt.where(visible_humans(Caller.of(user)))
    return [DigitalHumanPublic.of(h) for h in (await session.scalars(stmt)).all()]


@router.get("/{human_id}", response_model=DigitalHumanPublic)
async def read_digital_human(
    human_id: str, user: CurrentUser, session: SessionDep
) -> DigitalHumanPublic:
    """One digital human."""
    return DigitalHumanPublic.of(await _get_visible(session, human_id, user))


@router.get(
    "/{human_id}/portrait",
    responses={200: {"content": {mime: {} for mime in IMAGE_SUFFIXES}}},
)
async def read_portrait(human_id: str, user: CurrentUser, session: SessionDep) -> object:
    """The portrait image (for a video source: its first frame, as JPEG)."""
    from fastapi.responses import FileResponse

    human = await _get_visible(session, human_id, user)
    path = Path(human.image_path)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        path = path.with_name("poster.jpg")
    if not await asyncio.to_thread(path.is_file):
        raise NotFound(f"the portrait of digital human {human_id} is missing on disk")
    return FileResponse(path)


@router.delete("/{human_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_digital_human(
    human_id: str, user: CurrentUser, services: ServicesDep, session: SessionDep
) -> None:
    """Delete a digital human and its stored files (built-in ones cannot be deleted)."""
    human = await _get_visible(session, human_id, user)
    if human.is_builtin:
        raise PermissionDenied("the built-in digital human cannot be deleted")
    require_change(human.user_id, Caller.of(user), "digital human")
    folder = services.settings.data_dir / "digital_humans" / human.id
    await session.delete(human)
    await session.commit()
    await asyncio.to_thread(shutil.rmtree, folder, True)
