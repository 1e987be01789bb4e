"""VoiceSynthesizer: the seed's text-to-speech facade over the TTS backend registry.

synth = VoiceSynthesizer()                      # auto: best available backend
speech = synth.synthesize_speech("你好")         # SpeechResult (samples + phoneme timings)
path = synth.synthesize("Hello", "out.mp3")     # a file; format from the suffix
"""

from __future__ import annotations

import inspect
from dataclasses import replace
from pathlib import Path

import numpy as np

from avatarbot.errors import BackendUnavailable
from avatarbot.pipeline.audio_io import encode_audio, temp_audio_path
from avatarbot.pipeline.tts import get_tts_backend, list_tts_backends
from avatarbot.pipeline.types import PhonemeEvent, SpeechResult, TTSBackend, VoiceInfo


class VoiceSynthesizer:
    def __init__(
        self,
        backend: str | None = "auto",
        device: str = "cpu",
        model_path: str | None = None,
        sample_rate: int | None = None,
        *,
        voice: str | None = None,
        language: str | None = None,
        speed: float = 1.0,
        pitch: float = 1.0,
    ) -> None:
        """`sample_rate` None keeps the backend's own rate; `device`/`model_path` are passed on
        to neural backends that take them (espeak ignores them)."""
        self.device = device
        self.model_path = model_path
        self.sample_rate = sample_rate
        self.voice = voice
        self.language = language
        self.speed = speed
        self.pitch = pitch
        self._backend: TTSBackend | None = get_tts_backend(backend)
        self._temp_files: list[Path] = []

    @property
    def backend(self) -> TTSBackend:
        if self._backend is None:
            raise BackendUnavailable("VoiceSynthesizer was cleaned up")
        return self._backend

    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def supports_cloning(self) -> bool:
        """Whether the backend can speak in a voice cloned from reference audio (speaker_wav)."""
        return "speaker_wav" in inspect.signature(self.backend.synthesize).parameters

    def synthesize_speech(
        self,
        text: str,
        *,
        voice: str | None = None,
        language: str | None = None,
        speed: float | None = None,
        pitch: float | None = None,
        speaker_wav: str | Path | None = None,
    ) -> SpeechResult:
        """Speak `text`; the result carries samples and (when the backend knows) phoneme times."""
        kwargs: dict[str, object] = {
            "voice": voice if voice is not None else self.voice,
            "language": language if language is not None else self.language,
            "speed": self.speed if speed is None else speed,
            "pitch": self.pitch if pitch is None else pitch,
        }
        if speaker_wav is not None:
            if not self.supports_cloning:
                raise BackendUnavailable(
                    f"TTS backend {self.backend_name!r} cannot clone a voice from reference "
                    "audio; install and select a neural backend (coqui) for that"
                )
            kwargs["speaker_wav"] = str(speaker_wav)
        speech = self.backend.synthesize(text, **kwargs)  # type: ignore[arg-type]
        if self.sample_rate and self.sample_rate != speech.sample_rate:
            speech = _resample(speech, self.sample_rate)
        return speech

    def synthesize_to_array(self, text: str, **kwargs: object) -> tuple[np.ndarray, int]:
        speech = self.synthesize_speech(text, **kwargs)  # type: ignore[arg-type]
        return speech.samples, speech.sample_rate

    def synthesize(
        self,
        text: str,
        output_path: str | Path | None = None,
        speaker_wav: str | Path | None = None,
        *,
        voice: str | None = None,
        language: str | None = None,
        speed: float | None = None,
        pitch: float | None = None,
        fmt: str | None = None,
    ) -> str:
        """Speak `text` into a file (wav/mp3/opus/ogg/amr/m4a by suffix or `fmt`); return its path.

        Without output_path a temporary .wav is made; cleanup() removes those."""
        speech = self.synthesize_speech(
            text, voice=voice, language=language, speed=speed, pitch=pitch, speaker_wav=speaker_wav
        )
        if output_path is None:
            output_path = temp_audio_path(f".{fmt or 'wav'}", prefix="avatarbot-tts-")
            self._temp_files.append(output_path)
        return str(encode_audio(speech.samples, speech.sample_rate, output_path, fmt))

    def list_voices(self, language: str | None = None) -> list[VoiceInfo]:
        voices = self.backend.voices()
        if language:
            from avatarbot.pipeline.tts.text import normalize_language

            wanted = normalize_language(language)
            voices = [
                v
                for v in voices
                if normalize_language(v.language) == wanted
                or normalize_language(v.language.split("-")[0]) == wanted
            ]
        return voices

    @staticmethod
    def list_available_models() -> list[str]:
        """Names of the TTS backends that can run here, in auto order."""
        return [name for name, availability in list_tts_backends() if availability.ok]

    def cleanup(self) -> None:
        for path in self._temp_files:
            path.unlink(missing_ok=True)
        self._temp_files.clear()
        self._backend = None


def _resample(speech: SpeechResult, rate: int) -> SpeechResult:
    from avatarbot.pipeline.audio import AudioPreprocessor

    samples = AudioPreprocessor.convert_sample_rate(speech.samples, speech.sample_rate, rate)
    phonemes = [PhonemeEvent(p.start, p.end, p.phoneme) for p in speech.phonemes]
    return replace(speech, samples=samples, sample_rate=rate, phonemes=phonemes)
