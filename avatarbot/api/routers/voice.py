"""Voice API: speak text to audio bytes, list voices/backends, and manage voice profiles."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from avatarbot.api.deps import CurrentUser, SessionDep, SettingsDep
from avatarbot.api.uploads import read_upload
from avatarbot.auth.access import Caller, require_change
from avatarbot.pipeline import voice_profiles
from avatarbot.pipeline.audio_io import AUDIO_MIME_TYPES
from avatarbot.storage.models import VoiceProfile

router = APIRouter(prefix="/voice", tags=["voice"])

AudioFormat = Literal["wav", "mp3", "opus", "amr"]


class SynthesizeRequest(BaseModel):
    text: str
    voice: str | None = None
    language: str | None = None
    speed: float | None = Field(None, ge=0.25, le=4.0)
    pitch: float | None = Field(None, ge=0.25, le=2.0)
    format: AudioFormat = "wav"
    backend: str | None = None
    profile_id: str | None = None  # take backend/voice/language/params from a profile


class VoiceInfoPublic(BaseModel):
    id: str
    name: str
    language: str
    backend: str
    gender: str


class BackendPublic(BaseModel):
    name: str
    available: bool
    reason: str


class VoiceProfilePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    backend: str
    voice: str
    language: str
    params: dict[str, Any]
    has_reference: bool = False
    quality: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, profile: VoiceProfile) -> VoiceProfilePublic:
        public = cls.model_validate(profile)
        public.has_reference = bool(profile.reference_path)
        return public


class VoiceProfileUpdate(BaseModel):
    name: str | None = None
    backend: str | None = None
    voice: str | None = None
    language: str | None = None
    params: dict[str, Any] | None = None


def _speak(
    text: str, backend: str, options: dict[str, Any], reference: str | None, fmt: str
) -> tuple[bytes, float]:
    from avatarbot.pipeline.audio_io import encode_audio_bytes
    from avatarbot.pipeline.synthesizer import VoiceSynthesizer

    synth = VoiceSynthesizer(backend=backend)
    speaker_wav = reference if reference and synth.supports_cloning else None
    speech = synth.synthesize_speech(text, speaker_wav=speaker_wav, **options)
    return encode_audio_bytes(speech.samples, speech.sample_rate, fmt), speech.duration


@router.post(
    "/synthesize",
    response_class=Response,
    responses={200: {"content": {mime: {} for mime in set(AUDIO_MIME_TYPES.values())}}},
)
async def synthesize(
    body: SynthesizeRequest, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> Response:
    """Speak `text` and return the audio file (wav, mp3, opus in ogg, or AMR-NB)."""
    from avatarbot.pipeline.service import validate_text

    text = validate_text(body.text, settings.pipeline.max_text_chars)
    backend = body.backend or settings.pipeline.tts_backend
    options: dict[str, Any] = {"voice": body.voice, "language": body.language}
    reference: str | None = None
    if body.profile_id:
        profile = await voice_profiles.get_profile(session, body.profile_id, user)
        backend = body.backend or profile.backend
        params = profile.params or {}
        options = {
            "voice": body.voice or profile.voice or None,
            "language": body.language or profile.language or None,
            "speed": params.get("speed"),
            "pitch": params.get("pitch"),
        }
        reference = profile.reference_path
    if body.speed is not None:
        options["speed"] = body.speed
    if body.pitch is not None:
        options["pitch"] = body.pitch
    audio, duration = await asyncio.to_thread(
        _speak, text, backend, options, reference, body.format
    )
    return Response(
        content=audio,
        media_type=AUDIO_MIME_TYPES[body.format],
        headers={
            "Content-Disposition": f'attachment; filename="speech.{body.format}"',
            "X-Audio-Duration": f"{duration:.3f}",
        },
    )


@router.get("/voices", response_model=list[VoiceInfoPublic])
async def read_voices(
    _user: CurrentUser,
    settings: SettingsDep,
    backend: str | None = None,
    language: str | None = None,
) -> list[VoiceInfoPublic]:
    """Voices of a TTS backend (default: the configured one), optionally for one language."""
    from avatarbot.pipeline.synthesizer import VoiceSynthesizer

    def _list() -> list[VoiceInfoPublic]:
        synth = VoiceSynthesizer(backend=backend or settings.pipeline.tts_backend)
        return [VoiceInfoPublic(**vars(v)) for v in synth.list_voices(language)]

    return await asyncio.to_thread(_list)


@router.get("/backends", response_model=list[BackendPublic])
async def read_backends(_user: CurrentUser) -> list[BackendPublic]:
    """Every TTS backend in auto order, and why it cannot run here when it cannot."""
    from avatarbot.pipeline.tts import list_tts_backends

    found = await asyncio.to_thread(list_tts_backends)
    return [BackendPublic(name=n, available=a.ok, reason=a.reason) for n, a in found]


@router.get("/profiles", response_model=list[VoiceProfilePublic])
async def read_profiles(user: CurrentUser, session: SessionDep) -> list[VoiceProfilePublic]:
    return [VoiceProfilePublic.of(p) for p in await voice_profiles.list_profiles(session, user)]


@router.post("/profiles", response_model=VoiceProfilePublic, status_code=201)
async def create_profile(
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    name: Annotated[str, Form()],
    backend: Annotated[str, Form()] = "espeak",
    voice: Annotated[str, Form()] = "",
    language: Annotated[str, Form()] = "",
    params: Annotated[str, Form(description='JSON object, e.g. {"speed": 1.1}')] = "",
    reference: Annotated[UploadFile | None, File()] = None,
) -> VoiceProfilePublic:
    """Create a profile; an optional reference recording is cleaned and quality-checked."""
    data: bytes | None = None
    if reference is not None:
        data = await read_upload(reference, max_bytes=settings.pipeline.max_upload_mb * 1024 * 1024)
    profile = await voice_profiles.create_profile(
        session,
        user,
        data_dir=settings.data_dir,
        name=name,
        backend=backend,
        voice=voice.strip(),
        language=language.strip(),
        params=voice_profiles.parse_params(params),
        reference=data,
        reference_filename=(reference.filename or "") if reference is not None else "",
    )
    return VoiceProfilePublic.of(profile)


@router.get("/profiles/{profile_id}", response_model=VoiceProfilePublic)
async def read_profile(
    profile_id: str, user: CurrentUser, session: SessionDep
) -> VoiceProfilePublic:
    return VoiceProfilePublic.of(await voice_profiles.get_profile(session, profile_id, user))


@router.put("/profiles/{profile_id}", response_model=VoiceProfilePublic)
async def update_profile(
    profile_id: str, body: VoiceProfileUpdate, user: CurrentUser, session: SessionDep
) -> VoiceProfilePublic:
    profile = await voice_profiles.get_profile(session, profile_id, user)
    require_change(profile.user_id, Caller.of(user), "voice profile")
    changes = body.model_dump(exclude_unset=True)
    return VoiceProfilePublic.of(await voice_profiles.update_profile(session, profile, changes))


@router.delete("/profiles/{profile_id}", status_code=204)
async def delete_profile(profile_id: str, user: CurrentUser, session: SessionDep) -> Response:
    profile = await voice_profiles.get_profile(session, profile_id, user)
    require_change(profile.user_id, Caller.of(user), "voice profile")
    await voice_profiles.delete_profile(session, profile)
    return Response(status_code=204)


__all__ = ["router"]
