"""TTS through an OpenAI-compatible `POST /v1/audio/speech` server (OpenAI, or a local one)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np

from avatarbot.errors import ExternalServiceError, InvalidInput
from avatarbot.pipeline.types import Availability, SpeechResult, VoiceInfo

if TYPE_CHECKING:  # imported when speech is fetched: checking availability stays cheap
    import httpx

OPENAI_VOICES = ("alloy", "echo", "fable", "onyx", "nova", "shimmer")


def decode_wav_bytes(data: bytes) -> tuple[np.ndarray, int]:
    """WAV (or any libsndfile format) bytes -> float32 mono, sample rate."""
    import soundfile as sf

    try:
        samples, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:
        raise ExternalServiceError(f"speech server returned undecodable audio ({exc})") from exc
    return samples.mean(axis=1).astype(np.float32), int(sr)


class OpenAISpeechTTS:
    name = "openai"

    def __init__(
        self,
        base_url: str,
        api_key: str = "",
        model: str = "tts-1",
        *,
        default_voice: str = "alloy",
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.model = model
        self.default_voice = default_voice
        self.timeout = timeout
        self._transport = transport

    @classmethod
    def from_settings(cls, settings: Any) -> OpenAISpeechTTS:
        from avatarbot.pipeline.backend_settings import pipeline_setting

        key = pipeline_setting(settings, "openai_tts_api_key", "")
        key = key.get_secret_value() if hasattr(key, "get_secret_value") else str(key or "")
        return cls(
            str(pipeline_setting(settings, "openai_tts_base_url", "")),
            key,
            str(pipeline_setting(settings, "openai_tts_model", "tts-1")),
        )

    @property
    def endpoint(self) -> str:
        base = self.base_url if self.base_url.endswith("/v1") else f"{self.base_url}/v1"
        return f"{base}/audio/speech"

    def availability(self) -> Availability:
        if not self.base_url:
            return Availability.no("openai_tts_base_url is not set (pipeline.openai_tts_base_url)")
        return Availability.yes()

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo(id=v, name=v, language="multi", backend=self.name) for v in OPENAI_VOICES]

    def synthesize(
        self,
        text: str,
        *,
        voice: str | None = None,
        language: str | None = None,
        speed: float = 1.0,
        pitch: float = 1.0,  # not part of the API: ignored
    ) -> SpeechResult:
        if not text.strip():
            raise InvalidInput("text is empty")
        voice = voice or self.default_voice
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        body = {
            "model": self.model,
            "input": text,
            "voice": voice,
            "response_format": "wav",
            "speed": float(min(4.0, max(0.25, speed))),
        }
        import httpx

        try:
            with httpx.Client(timeout=self.timeout, transport=self._transport) as client:
                resp = client.post(self.endpoint, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ExternalServiceError(f"speech server unreachable: {type(exc).__name__}") from exc
        if resp.status_code != 200:
            # The body may echo the request; keep only the status and a short error text.
            detail = (
                resp.text[:200].replace(self._api_key, "***") if self._api_key else resp.text[:200]
            )
            raise ExternalServiceError(f"speech server answered HTTP {resp.status_code}: {detail}")
        samples, sr = decode_wav_bytes(resp.content)
        return SpeechResult(samples=samples, sample_rate=sr, language=language or "", voice=voice)
