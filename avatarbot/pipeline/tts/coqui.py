"""Coqui XTTS v2 (package `coqui-tts`, import name `TTS`): multilingual TTS with voice cloning.

The model directory (model.pth, config.json, vocab.json, ...) is placed by hand at
DATA_DIR/models/coqui/xtts_v2 or named by `pipeline.xtts_model_dir`. A voice is a reference
wav: either a VoiceCloner profile id (DATA_DIR/voices/<id>/reference.wav) or a wav path.
XTTS's model licence (CPML) is non-commercial.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np

from avatarbot.errors import BackendUnavailable, InvalidInput
from avatarbot.pipeline.types import Availability, SpeechResult, VoiceInfo

XTTS_SAMPLE_RATE = 24000
XTTS_LANGUAGES = (
    "en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru", "nl",
    "cs", "ar", "zh-cn", "ja", "hu", "ko", "hi",
)  # fmt: skip
REQUIRED_FILES = ("model.pth", "config.json", "vocab.json")


def xtts_language(language: str | None) -> str:
    lang = (language or "en").lower().replace("_", "-")
    if lang.startswith("zh"):
        return "zh-cn"
    lang = lang if lang in XTTS_LANGUAGES else lang.split("-")[0]
    if lang not in XTTS_LANGUAGES:
        raise InvalidInput(f"XTTS v2 does not speak {language!r}")
    return lang


class CoquiXTTS:
    name = "coqui"

    def __init__(
        self, model_dir: str | Path, voices_dir: str | Path, *, device: str = "cpu"
    ) -> None:
        self.model_dir = Path(model_dir)
        self.voices_dir = Path(voices_dir)
        self.device = device
        self._model: Any = None
        self._latents: dict[str, tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any, data_dir: str | Path) -> CoquiXTTS:
        from avatarbot.pipeline.backend_settings import pipeline_setting

        model_dir = pipeline_setting(settings, "xtts_model_dir") or (
            Path(data_dir) / "models" / "coqui" / "xtts_v2"
        )
        return cls(model_dir, Path(data_dir) / "voices")

    def availability(self) -> Availability:
        if importlib.util.find_spec("TTS") is None:
            return Availability.no(
                "python package coqui-tts is not installed (pip install coqui-tts)"
            )
        missing = [f for f in REQUIRED_FILES if not (self.model_dir / f).is_file()]
        if missing:
            return Availability.no(
                f"missing XTTS v2 model files in {self.model_dir}: {', '.join(missing)}"
            )
        if not self.voices():
            return Availability.no(f"no voice profile yet: clone one into {self.voices_dir}")
        return Availability.yes()

    def voices(self) -> list[VoiceInfo]:
        if not self.voices_dir.is_dir():
            return []
        return [
            VoiceInfo(id=d.name, name=d.name, language="multi", backend=self.name)
            for d in sorted(self.voices_dir.iterdir())
            if (d / "reference.wav").is_file()
        ]

    def reference_for(self, voice: str | None) -> Path:
        if voice and Path(voice).suffix == ".wav" and Path(voice).is_file():
            return Path(voice)
        profiles = self.voices()
        if not profiles:
            raise BackendUnavailable(f"coqui: no voice profile in {self.voices_dir}")
        chosen = voice or profiles[0].id
        ref = self.voices_dir / chosen / "reference.wav"
        if not ref.is_file():
            raise InvalidInput(f"unknown voice profile {chosen!r}")
        return ref

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from TTS.tts.configs.xtts_config import XttsConfig  # type: ignore[import-not-found]
                from TTS.tts.models.xtts import Xtts  # type: ignore[import-not-found]

                config = XttsConfig()
                config.load_json(str(self.model_dir / "config.json"))
                model = Xtts.init_from_config(config)
                model.load_checkpoint(
                    config, checkpoint_dir=str(self.model_dir), use_deepspeed=False
                )
                self._model = model.to(self.device).eval()
            return self._model

    def synthesize(
        self,
        text: str,
        *,
        voice: str | None = None,
        language: str | None = None,
        speed: float = 1.0,
        pitch: float = 1.0,  # XTTS has no pitch control
    ) -> SpeechResult:
        if not text.strip():
            raise InvalidInput("text is empty")
        avail = self.availability()
        if not avail.ok and not (voice and Path(voice).is_file()):
            raise BackendUnavailable(f"coqui: {avail.reason}")
        return self.synthesize_cloned(text, self.reference_for(voice), language, speed)

    def synthesize_cloned(
        self, text: str, reference_wav: Path, language: str | None, speed: float = 1.0
    ) -> SpeechResult:
        model = self._load()
        key = str(reference_wav.resolve())
        if key not in self._latents:
            self._latents[key] = model.get_conditioning_latents(audio_path=[key])
        gpt_latent, speaker_embedding = self._latents[key]
        out = model.inference(
            text, xtts_language(language), gpt_latent, speaker_embedding, speed=float(speed)
        )
        wav = out["wav"]
        samples = wav.cpu().numpy() if hasattr(wav, "cpu") else np.asarray(wav)
        return SpeechResult(
            np.asarray(samples, np.float32).reshape(-1),
            XTTS_SAMPLE_RATE,
            language=language or "",
            voice=reference_wav.parent.name,
        )
