"""Piper neural TTS (package `piper-tts`) with a voice `.onnx` (+ `.onnx.json`) file.

Voice files are placed by hand under DATA_DIR/models/piper/ or named by `pipeline.piper_voice`.
Works with the piper-tts >= 1.3 API (`synthesize` yields AudioChunk) and the older one
(`synthesize_stream_raw` yields int16 bytes).
"""

from __future__ import annotations

import importlib.util
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

from avatarbot.errors import BackendUnavailable, InvalidInput
from avatarbot.pipeline.types import Availability, SpeechResult, VoiceInfo


class PiperTTS:
    name = "piper"

    def __init__(
        self, voice_path: str | Path | None, *, voices_dir: str | Path | None = None
    ) -> None:
        self.voice_path = Path(voice_path) if voice_path else None
        self.voices_dir = Path(voices_dir) if voices_dir else None
        self._voices: dict[Path, Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any, data_dir: str | Path) -> PiperTTS:
        from avatarbot.pipeline.backend_settings import pipeline_setting

        return cls(
            pipeline_setting(settings, "piper_voice"),
            voices_dir=Path(data_dir) / "models" / "piper",
        )

    def _voice_files(self) -> list[Path]:
        files = [self.voice_path] if self.voice_path else []
        if self.voices_dir and self.voices_dir.is_dir():
            files += sorted(self.voices_dir.glob("*.onnx"))
        return [f for f in files if f is not None]

    def availability(self) -> Availability:
        if importlib.util.find_spec("piper") is None:
            return Availability.no(
                "python package piper-tts is not installed (pip install piper-tts)"
            )
        files = self._voice_files()
        present = [f for f in files if f.is_file()]
        if not present:
            where = self.voice_path or (self.voices_dir or Path("models/piper")) / "<voice>.onnx"
            return Availability.no(f"missing piper voice model {where}")
        config = Path(f"{present[0]}.json")
        if not config.is_file():
            return Availability.no(f"missing piper voice config {config}")
        return Availability.yes()

    def voices(self) -> list[VoiceInfo]:
        out = []
        for path in self._voice_files():
            if not path.is_file():
                continue
            language = ""
            config = Path(f"{path}.json")
            if config.is_file():
                language = json.loads(config.read_text()).get("language", {}).get("code", "")
            out.append(
                VoiceInfo(id=path.stem, name=path.stem, language=language, backend=self.name)
            )
        return out

    def _resolve(self, voice: str | None) -> Path:
        files = [f for f in self._voice_files() if f.is_file()]
        if not files:
            raise BackendUnavailable(f"piper: {self.availability().reason}")
        if voice is None:
            return files[0]
        for path in files:
            if voice in (path.stem, path.name, str(path)):
                return path
        raise InvalidInput(
            f"unknown piper voice {voice!r} (have: {', '.join(f.stem for f in files)})"
        )

    def _load(self, path: Path) -> Any:
        with self._lock:
            if path not in self._voices:
                from piper import PiperVoice  # type: ignore[import-not-found]

                self._voices[path] = PiperVoice.load(str(path), config_path=f"{path}.json")
            return self._voices[path]

    def synthesize(
        self,
        text: str,
        *,
        voice: str | None = None,
        language: str | None = None,
        speed: float = 1.0,
        pitch: float = 1.0,  # piper has no pitch control
    ) -> SpeechResult:
        if not text.strip():
            raise InvalidInput("text is empty")
        avail = self.availability()
        if not avail.ok:
            raise BackendUnavailable(f"piper: {avail.reason}")
        path = self._resolve(voice)
        model = self._load(path)
        length_scale = 1.0 / max(0.25, min(4.0, speed))
        sample_rate = int(model.config.sample_rate)
        try:
            from piper import SynthesisConfig  # type: ignore[import-not-found]
        except ImportError:  # piper-tts < 1.3: raw int16 stream
            raw = b"".join(model.synthesize_stream_raw(text, length_scale=length_scale))
            samples = np.frombuffer(raw, dtype=np.int16).astype(np.float32) / 32768.0
        else:
            chunks = list(
                model.synthesize(text, syn_config=SynthesisConfig(length_scale=length_scale))
            )
            if chunks:
                sample_rate = int(chunks[0].sample_rate)
            parts = [np.asarray(c.audio_float_array, np.float32) for c in chunks]
            samples = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        return SpeechResult(samples, sample_rate, language=language or "", voice=path.stem)
