"""Voice profiles: a named backend + voice + params, optionally with a cleaned reference recording.

The reference audio is decoded, denoised, trimmed and loudness-normalised with AudioPreprocessor,
quality-checked, and stored as DATA_DIR/voices/<profile id>.wav (neural backends clone from it).
The CPU work runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from avatarbot.errors import InvalidInput, NotFound
from avatarbot.storage.base import new_id
from avatarbot.storage.models import User, VoiceProfile

REFERENCE_SAMPLE_RATE = 22050
MAX_REFERENCE_SECONDS = 120.0
PARAM_RANGES = {"speed": (0.25, 4.0), "pitch": (0.25, 2.0)}


def voices_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "voices"


# Params are a few numbers and names; a cap keeps rows (and every answer listing them) small.
MAX_PARAMS_CHARS = 4096


def parse_params(raw: str | dict[str, Any] | None) -> dict[str, Any]:
    """Profile params from a JSON string or dict; speed/pitch must be numbers in range."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        if len(raw) > MAX_PARAMS_CHARS:  # before parsing: deep nesting is a RecursionError
            raise InvalidInput(f"params is too large (limit {MAX_PARAMS_CHARS} characters)")
        try:
            params = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"params is not valid JSON: {exc.msg}") from exc
        except RecursionError as exc:
            raise InvalidInput("params is nested too deeply") from exc
    else:
        params = raw
    if not isinstance(params, dict):
        raise InvalidInput("params must be a JSON object")
    try:
        size = len(json.dumps(params))
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidInput("params must be plain JSON") from exc
    if size > MAX_PARAMS_CHARS:
        raise InvalidInput(f"params is too large (limit {MAX_PARAMS_CHARS} characters)")
    for key, (low, high) in PARAM_RANGES.items():
        if key in params:
            value = params[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInput(f"params.{key} must be a number")
            if not low <= float(value) <= high:
                raise InvalidInput(f"params.{key} must be between {low} and {high}")
    return params


def check_backend(backend: str) -> str:
    from avatarbot.pipeline.tts import list_tts_backends

    names = [name for name, _ in list_tts_backends()]
    if backend not in names:
        raise InvalidInput(f"unknown TTS backend {backend!r}; known: {', '.join(names)}")
    return backend


def check_voice_settings(backend: str, voice: str, language: str, params: dict[str, Any]) -> None:
    """For espeak, prove the voice/language/speed/pitch work by speaking one word (milliseconds)."""
    if backend != "espeak":
        return  # neural backends load models lazily; they are checked when used
    from avatarbot.pipeline.tts import get_tts_backend

    get_tts_backend("espeak").synthesize(
        "ok",
        voice=voice or None,
        language=language or None,
        speed=float(params.get("speed", 1.0)),
        pitch=float(params.get("pitch", 1.0)),
    )


def clean_reference(data: bytes, filename: str, target: Path) -> dict[str, Any]:
    """Decode + clean + quality-check a reference recording, write it to `target` (wav).

    Silent or too short recordings are refused; noisy or clipped ones are kept, with the
    problem listed in the returned quality report."""
    from avatarbot.pipeline.audio import AudioPreprocessor

    pre = AudioPreprocessor(sample_rate=REFERENCE_SAMPLE_RATE, max_seconds=MAX_REFERENCE_SECONDS)
    raw, sr = pre.load_audio_bytes(data, filename)
    before = pre.validate_audio_quality(raw, sr)
    cleaned = pre.process(raw)
    if cleaned.size == 0:
        raise InvalidInput("reference audio is silent")
    quality = pre.validate_audio_quality(cleaned, sr, min_seconds=2.0)
    blocking = [i for i in quality.issues if i.startswith(("silent", "too short"))]
    if blocking:
        raise InvalidInput("reference audio is not usable: " + "; ".join(blocking))
    target.parent.mkdir(parents=True, exist_ok=True)
    pre.save_audio(cleaned, target, sr)
    report = quality.as_dict()
    report["input_snr_db"] = before.snr_db
    return report


def _visible(user: User) -> Any:
    if user.is_superuser:
        return True
    return or_(VoiceProfile.user_id == user.id, VoiceProfile.user_id.is_(None))


async def list_profiles(session: AsyncSession, user: User) -> list[VoiceProfile]:
    query = select(VoiceProfile).where(_visible(user)).order_by(VoiceProfile.created_at.desc())
    return list((await session.scalars(query)).all())


async def get_profile(session: AsyncSession, profile_id: str, user: User) -> VoiceProfile:
    profile = await session.get(VoiceProfile, profile_id)
    # Someone else's profile looks exactly like a missing one.
    if profile is None or not (user.is_superuser or profile.user_id in (None, user.id)):
        raise NotFound(f"voice profile {profile_id} not found")
    return profile


async def create_profile(
    session: AsyncSession,
    user: User,
    *,
    data_dir: Path,
    name: str,
    backend: str,
    voice: str,
    language: str,
    params: dict[str, Any],
    reference: bytes | None,
    reference_filename: str = "",
) -> VoiceProfile:
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("name must be 1-100 characters")
    check_backend(backend)
    await asyncio.to_thread(check_voice_settings, backend, voice, language, params)
    profile_id = new_id()
    reference_path: Path | None = None
    quality: dict[str, Any] | None = None
    if reference is not None:
        reference_path = voices_dir(data_dir) / f"{profile_id}.wav"
        quality = await asyncio.to_thread(
            clean_reference, reference, reference_filename, reference_path
        )
    profile = VoiceProfile(
        id=profile_id,
        user_id=user.id,
        name=name,
        backend=backend,
        voice=voice,
        language=language,
        params=params,
        reference_path=str(reference_path) if reference_path else None,
        quality=quality,
    )
    session.add(profile)
    try:
        await session.commit()
    except Exception:
        if reference_path is not None:
            reference_path.unlink(missing_ok=True)
        raise
    await session.refresh(profile)
    return profile


async def update_profile(
    session: AsyncSession, profile: VoiceProfile, changes: dict[str, Any]
) -> VoiceProfile:
    if "name" in changes:
        name = str(changes["name"] or "").strip()
        if not name or len(name) > 100:
            raise InvalidInput("name must be 1-100 characters")
        profile.name = name
    backend = changes.get("backend") or profile.backend
    voice = changes["voice"] if changes.get("voice") is not None else profile.voice
    language = changes["language"] if changes.get("language") is not None else profile.language
    params = parse_params(changes["params"]) if "params" in changes else profile.params or {}
    check_backend(backend)
    await asyncio.to_thread(check_voice_settings, backend, voice, language, params)
    profile.backend, profile.voice, profile.language, profile.params = (
        backend,
        voice,
        language,
        params,
    )
    await session.commit()
    await session.refresh(profile)
    return profile


async def delete_profile(session: AsyncSession, profile: VoiceProfile) -> None:
    reference = profile.reference_path
    await session.delete(profile)
    await session.commit()
    if reference:
        await asyncio.to_thread(Path(reference).unlink, missing_ok=True)
