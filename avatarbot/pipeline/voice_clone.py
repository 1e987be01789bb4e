"""`VoiceCloner` (seed API): voice profiles from reference audio, for cloning TTS backends.

A profile is a cleaned, quality-checked reference recording stored as
DATA_DIR/voices/<id>/reference.wav plus profile.json. Database rows are the voice API's job:
this module only deals in files and plain dataclasses.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from avatarbot.errors import BackendUnavailable, InvalidInput, NotFound
from avatarbot.pipeline.types import SpeechResult

MIN_SECONDS = 3.0
MAX_SECONDS = 60.0
PROFILE_SAMPLE_RATE = 22050  # XTTS resamples internally; 22.05 kHz keeps the voice band


class CloningBackend(Protocol):
    name: str

    def synthesize_cloned(
        self, text: str, reference_wav: Path, language: str | None, speed: float = 1.0
    ) -> SpeechResult: ...


@dataclass
class VoiceProfile:
    id: str
    name: str
    language: str
    reference_path: str
    sample_rate: int
    duration_s: float
    quality: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VoiceProfile:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


Sample = str | Path | bytes | tuple[np.ndarray, int]


class VoiceCloner:
    def __init__(
        self,
        data_dir: str | Path,
        *,
        backend: CloningBackend | None = None,
        preprocessor: Any = None,
    ) -> None:
        self.voices_dir = Path(data_dir) / "voices"
        self.backend = backend
        if preprocessor is None:
            from avatarbot.pipeline.audio import AudioPreprocessor

            preprocessor = AudioPreprocessor(sample_rate=PROFILE_SAMPLE_RATE)
        self.pre = preprocessor

    # ---- reference audio ---------------------------------------------------------------
    def _decode(self, sample: Sample) -> np.ndarray:
        if isinstance(sample, tuple):
            audio, sr = sample
            return self.pre.convert_sample_rate(audio, sr, self.pre.sample_rate)
        if isinstance(sample, bytes):
            return self.pre.load_audio_bytes(sample)[0]
        return self.pre.load_audio(sample)[0]

    def check_reference(self, audio: np.ndarray) -> dict[str, Any]:
        """Quality report of cleaned audio; raises InvalidInput listing every problem found."""
        quality = self.pre.validate_audio_quality(
            audio, self.pre.sample_rate, min_seconds=MIN_SECONDS
        )
        issues = list(quality.issues)
        if quality.duration_s > MAX_SECONDS:
            issues.append(f"too long: {quality.duration_s:.1f} s, at most {MAX_SECONDS:.0f} s")
        if issues:
            raise InvalidInput("voice reference rejected: " + "; ".join(issues))
        return quality.as_dict()

    def prepare_reference(self, samples: list[Sample]) -> tuple[np.ndarray, dict[str, Any]]:
        if not samples:
            raise InvalidInput("give at least one reference recording")
        raw = [self._decode(s) for s in samples]
        # Quality is judged before denoising too: clipping cannot be undone by cleaning.
        joined_raw = np.concatenate(raw)
        clipped = float(np.mean(np.abs(joined_raw) >= 0.999)) if joined_raw.size else 0.0
        if clipped > 0.001:
            raise InvalidInput(
                f"voice reference rejected: clipped: {clipped:.2%} of samples at full scale"
            )
        pause = np.zeros(int(0.3 * self.pre.sample_rate), np.float32)
        cleaned = [self.pre.process(x) for x in raw]
        parts: list[np.ndarray] = []
        for x in cleaned:
            parts += [x, pause]
        audio = np.concatenate(parts[:-1]) if parts else np.zeros(0, np.float32)
        return audio, self.check_reference(audio)

    # ---- profiles ----------------------------------------------------------------------
    def create_profile(
        self, samples: list[Sample], *, name: str, language: str = "", profile_id: str | None = None
    ) -> VoiceProfile:
        audio, quality = self.prepare_reference(samples)
        pid = profile_id or uuid.uuid4().hex[:12]
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", pid):
            raise InvalidInput("voice id may only hold letters, digits, '-' and '_'")
        folder = self.voices_dir / pid
        folder.mkdir(parents=True, exist_ok=True)
        ref = folder / "reference.wav"
        self.pre.save_audio(audio, ref, self.pre.sample_rate)
        profile = VoiceProfile(
            id=pid,
            name=name,
            language=language,
            reference_path=str(ref),
            sample_rate=self.pre.sample_rate,
            duration_s=round(len(audio) / self.pre.sample_rate, 3),
            quality=quality,
        )
        (folder / "profile.json").write_text(json.dumps(profile.to_dict(), indent=2))
        return profile

    def train(self, samples: list[Sample], name: str = "voice", language: str = "") -> VoiceProfile:
        """Seed API name: 'training' a zero-shot cloner is building the reference profile."""
        return self.create_profile(samples, name=name, language=language)

    def get_profile(self, profile_id: str) -> VoiceProfile:
        path = self.voices_dir / profile_id / "profile.json"
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", profile_id) or not path.is_file():
            raise NotFound(f"voice profile {profile_id!r} not found")
        return VoiceProfile.from_dict(json.loads(path.read_text()))

    def list_profiles(self) -> list[VoiceProfile]:
        if not self.voices_dir.is_dir():
            return []
        return [
            VoiceProfile.from_dict(json.loads((d / "profile.json").read_text()))
            for d in sorted(self.voices_dir.iterdir())
            if (d / "profile.json").is_file()
        ]

    def delete_profile(self, profile_id: str) -> bool:
        try:
            self.get_profile(profile_id)
        except NotFound:
            return False
        shutil.rmtree(self.voices_dir / profile_id)
        return True

    # ---- synthesis ---------------------------------------------------------------------
    def synthesize_speech(
        self,
        text: str,
        model: VoiceProfile | str,
        *,
        language: str | None = None,
        speed: float = 1.0,
    ) -> SpeechResult:
        if self.backend is None:
            raise BackendUnavailable("voice cloning needs a cloning TTS backend (coqui XTTS v2)")
        profile = model if isinstance(model, VoiceProfile) else self.get_profile(model)
        return self.backend.synthesize_cloned(
            text, Path(profile.reference_path), language or profile.language or None, speed
        )

    def synthesize(
        self, text: str, model: VoiceProfile | str, language: str | None = None
    ) -> bytes:
        """Seed API: WAV bytes of `text` in the profile's voice."""
        import soundfile as sf

        speech = self.synthesize_speech(text, model, language=language)
        buf = io.BytesIO()
        sf.write(buf, speech.samples, speech.sample_rate, format="WAV", subtype="PCM_16")
        return buf.getvalue()
