"""Data passed between pipeline stages and the Protocols every backend implements.

Stages: TTS (text -> SpeechResult) -> visemes (SpeechResult -> MouthTrack)
-> animator (portrait + MouthTrack -> frames) -> enhancer (frame -> frame) -> mux (frames + audio -> MP4).
Backends register in a per-stage registry; the first available one wins unless a request names one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

import numpy as np

FPS = 25


class Mode(StrEnum):
    LIPSYNC = "lipsync"
    TALKING_HEAD = "talking_head"
    ENHANCED_LIPSYNC = "enhanced_lipsync"
    ENHANCED_TALKING_HEAD = "enhanced_talking_head"

    @property
    def enhanced(self) -> bool:
        return self.value.startswith("enhanced_")

    @property
    def moves_head(self) -> bool:
        return self.value.endswith("talking_head")


class Viseme(StrEnum):
    """Mouth shapes the procedural animator can draw. Column order of MouthTrack.weights."""

    REST = "rest"  # silence, lips closed and relaxed
    MBP = "mbp"  # lips pressed together (m, b, p)
    FV = "fv"  # lower lip tucked to the upper teeth (f, v)
    ROUND = "round"  # rounded, protruded (o, u, w, Mandarin -u/-ü)
    SPREAD = "spread"  # wide, teeth visible (i, e)
    OPEN = "open"  # jaw open (a)
    MID = "mid"  # slightly open, teeth close (t, d, s, n, k, l, ...)


VISEMES: tuple[Viseme, ...] = tuple(Viseme)


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here; `reason` names the missing file or package when not."""

    ok: bool
    reason: str = ""

    @classmethod
    def yes(cls) -> Availability:
        return cls(True, "")

    @classmethod
    def no(cls, reason: str) -> Availability:
        return cls(False, reason)


@dataclass(frozen=True)
class PhonemeEvent:
    """One phoneme as reported by the TTS engine, times in seconds from the audio start."""

    start: float
    end: float
    phoneme: str  # the engine's own mnemonic, e.g. espeak "m", "a:", "i", "u"


@dataclass
class SpeechResult:
    samples: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int
    phonemes: list[PhonemeEvent] = field(default_factory=list)  # empty when unknown (audio input)
    language: str = ""
    voice: str = ""

    @property
    def duration(self) -> float:
        return len(self.samples) / float(self.sample_rate)


@dataclass
class MouthTrack:
    """Per-video-frame mouth shape: weights over VISEMES (rows sum to <= 1) and loudness-driven openness."""

    fps: int
    weights: np.ndarray  # (n_frames, len(VISEMES)) float32
    openness: np.ndarray  # (n_frames,) float32 in [0, 1]

    @property
    def n_frames(self) -> int:
        return int(self.weights.shape[0])


@dataclass(frozen=True)
class VoiceInfo:
    id: str
    name: str
    language: str
    backend: str
    gender: str = ""


ProgressCallback = Callable[[str, float, str], None]  # (stage, percent 0-100, message)
CancelCheck = Callable[[], bool]  # returns True when the job was cancelled


@runtime_checkable
class TTSBackend(Protocol):
    name: str

    def availability(self) -> Availability: ...

    def voices(self) -> list[VoiceInfo]: ...

    def synthesize(
        self,
        text: str,
        *,
        voice: str | None = None,
        language: str | None = None,
        speed: float = 1.0,
        pitch: float = 1.0,
    ) -> SpeechResult: ...


@dataclass
class AnimationJob:
    portrait_bgr: np.ndarray  # the portrait, uint8 BGR, already resized to the output size
    speech: SpeechResult
    track: MouthTrack
    mode: Mode
    fps: int = FPS
    portrait_key: str = ""  # stable id (e.g. sha256 of the file) for caching per-portrait analysis
    seed: int | None = None  # blinks/head motion randomness; None: the animator's own default


@runtime_checkable
class Animator(Protocol):
    name: str

    def availability(self) -> Availability: ...

    def animate(self, job: AnimationJob) -> Iterator[np.ndarray]:
        """Yield exactly job.track.n_frames uint8 BGR frames of the portrait's size."""
        ...


@runtime_checkable
class Enhancer(Protocol):
    name: str

    def availability(self) -> Availability: ...

    def enhance(self, frame_bgr: np.ndarray, face_box: tuple[int, int, int, int]) -> np.ndarray:
        """Return the frame with the face region (x, y, w, h) restored; same shape and dtype."""
        ...
