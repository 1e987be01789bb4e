"""Speech to text for voice messages through an OpenAI-compatible /audio/transcriptions."""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
from pathlib import Path

import httpx

from avatarbot.config import AsrSettings
from avatarbot.errors import ExternalServiceError


def _audio_name(data: bytes) -> str:
    if data.startswith(b"OggS"):
        return "voice.ogg"  # Feishu voice: Opus in Ogg
    if data.startswith(b"RIFF"):
        return "voice.wav"
    if data[:3] == b"ID3" or data[:2] == b"\xff\xfb":
        return "voice.mp3"
    return "voice.bin"


def _amr_to_wav(data: bytes) -> bytes:
    """WeCom voice is AMR-NB, which transcription services rarely take (blocking)."""
    from avatarbot.pipeline.ffmpeg import ffmpeg_exe

    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.amr", Path(tmp) / "out.wav"
        src.write_bytes(data)
        proc = subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-i", str(src), "-ar", "16000",
             "-ac", "1", str(out)],
            capture_output=True, timeout=120, check=False,
        )  # fmt: skip
        if proc.returncode != 0 or not out.exists():
            raise ExternalServiceError("the voice message could not be decoded")
        return out.read_bytes()


async def transcribe(settings: AsrSettings, data: bytes) -> str:
    """The recognised text ("" when nothing was heard); ExternalServiceError on failure."""
    if data.startswith(b"#!AMR"):
        data = await asyncio.to_thread(_amr_to_wav, data)
    name = _audio_name(data)
    key = settings.api_key.get_secret_value()
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    url = settings.base_url.rstrip("/") + "/audio/transcriptions"
    try:
        async with httpx.AsyncClient(timeout=settings.timeout_s) as client:
            response = await client.post(
                url,
                data={"model": settings.model, "response_format": "json"},
                files={"file": (name, data, "application/octet-stream")},
                headers=headers,
            )
    except httpx.HTTPError as exc:
        raise ExternalServiceError(
            f"the speech service is unreachable ({type(exc).__name__})"
        ) from exc
    if response.status_code != 200:
        raise ExternalServiceError(f"the speech service answered HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise ExternalServiceError("the speech service answered without JSON") from None
    return str(body.get("text") or "").strip() if isinstance(body, dict) else ""
