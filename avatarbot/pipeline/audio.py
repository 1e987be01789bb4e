"""AudioPreprocessor: load, resample, normalise, trim, denoise and quality-check speech audio.

Used for voice-profile reference recordings and for audio-driven videos. Decoding goes through
ffmpeg (see audio_io); the signal processing is numpy/scipy only (scipy imported lazily).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from math import gcd
from pathlib import Path
from typing import Any

import numpy as np

from avatarbot.errors import InvalidInput
from avatarbot.pipeline.audio_io import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_SECONDS,
    convert_audio_file,
    decode_audio_bytes,
    decode_audio_file,
    encode_audio,
    encode_audio_bytes,
    temp_audio_path,
)
from avatarbot.pipeline.types import SpeechResult

__all__ = [
    "AudioPreprocessor",
    "AudioQuality",
    "encode_audio",
    "encode_audio_bytes",
    "frame_rms",
]

_EPS = 1e-10


@dataclass
class AudioQuality:
    """What validate_audio_quality measured, and whether it is good enough for a voice reference."""

    duration_s: float
    sample_rate: int
    peak: float
    rms: float
    rms_db: float
    clipping_ratio: float  # fraction of samples at full scale
    snr_db: float  # loud-frame level over quiet-frame level: a rough SNR estimate
    silence_ratio: float  # fraction of 20 ms frames more than 40 dB below the loudest
    ok: bool = True
    issues: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def frame_rms(audio: np.ndarray, frame: int, hop: int | None = None) -> np.ndarray:
    """RMS per frame (no padding beyond one partial last frame)."""
    hop = hop or frame
    x = np.asarray(audio, dtype=np.float32).reshape(-1)
    if x.size == 0:
        return np.zeros(0, dtype=np.float32)
    n = max(1, 1 + (x.size - 1) // hop)
    padded = np.zeros((n - 1) * hop + frame, dtype=np.float32)
    padded[: x.size] = x
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    return np.sqrt(np.mean(padded[idx] ** 2, axis=1) + 0.0).astype(np.float32)


class AudioPreprocessor:
    def __init__(
        self,
        sample_rate: int = 22050,
        device: str = "cpu",
        normalize: bool = True,
        *,
        max_seconds: float = DEFAULT_MAX_SECONDS,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if sample_rate < 8000 or sample_rate > 192000:
            raise InvalidInput(f"sample rate {sample_rate} is outside 8000..192000 Hz")
        self.sample_rate = int(sample_rate)
        self.device = device  # kept for the seed API; everything here runs on the CPU
        self.normalize = normalize
        self.max_seconds = float(max_seconds)
        self.max_bytes = int(max_bytes)

    # -- loading and saving ---------------------------------------------------------------
    def load_audio(self, audio_path: str | Path) -> tuple[np.ndarray, int]:
        """Decode any common format to float32 mono at self.sample_rate."""
        samples = decode_audio_file(
            audio_path, self.sample_rate, max_seconds=self.max_seconds, max_bytes=self.max_bytes
        )
        return samples, self.sample_rate

    def load_audio_bytes(self, data: bytes, filename: str = "") -> tuple[np.ndarray, int]:
        suffix = Path(filename).suffix.lower() if filename else ""
        samples = decode_audio_bytes(
            data,
            self.sample_rate,
            suffix=suffix,
            max_seconds=self.max_seconds,
            max_bytes=self.max_bytes,
        )
        return samples, self.sample_rate

    def load_speech(self, audio_path: str | Path) -> SpeechResult:
        """An audio file as a SpeechResult without phonemes (for audio-driven videos)."""
        samples, sr = self.load_audio(audio_path)
        if float(np.max(np.abs(samples))) < 1e-4:
            raise InvalidInput("audio is silent")
        return SpeechResult(samples=samples, sample_rate=sr)

    def save_audio(
        self, audio_data: np.ndarray, output_path: str | Path, sr: int | None = None
    ) -> str:
        return str(encode_audio(audio_data, sr or self.sample_rate, output_path))

    def convert_format(
        self, input_path: str | Path, output_path: str | Path, target_format: str | None = None
    ) -> str:
        return str(convert_audio_file(input_path, output_path, target_format))

    # -- signal processing ----------------------------------------------------------------
    @staticmethod
    def convert_sample_rate(audio_data: np.ndarray, original_sr: int, target_sr: int) -> np.ndarray:
        """Polyphase resampling (anti-aliased)."""
        x = np.asarray(audio_data, dtype=np.float32).reshape(-1)
        if original_sr == target_sr or x.size == 0:
            return x.copy()
        if original_sr <= 0 or target_sr <= 0:
            raise InvalidInput("sample rates must be positive")
        from scipy.signal import resample_poly

        g = gcd(int(original_sr), int(target_sr))
        return resample_poly(x, int(target_sr) // g, int(original_sr) // g).astype(np.float32)

    @staticmethod
    def normalize_audio(
        audio_data: np.ndarray, target_db: float = -20.0, peak_db: float = -1.0
    ) -> np.ndarray:
        """Scale to `target_db` dBFS RMS, then limit so the peak stays under `peak_db` dBFS."""
        x = np.asarray(audio_data, dtype=np.float32).reshape(-1)
        rms = float(np.sqrt(np.mean(x**2))) if x.size else 0.0
        if rms < 1e-6:
            return x.copy()  # silence: nothing to scale
        gain = 10 ** (target_db / 20) / rms
        peak_limit = 10 ** (peak_db / 20)
        peak = float(np.max(np.abs(x))) * gain
        if peak > peak_limit:
            gain *= peak_limit / peak
        return (x * gain).astype(np.float32)

    def trim_silence(
        self,
        audio_data: np.ndarray,
        threshold_db: float = -40.0,
        frame_length: int = 1024,
        *,
        keep_s: float = 0.05,
    ) -> np.ndarray:
        """Cut leading/trailing frames quieter than `threshold_db` below the loudest frame (or
        within ~10 dB of the noise floor)."""
        x = np.asarray(audio_data, dtype=np.float32).reshape(-1)
        if x.size == 0:
            return x
        hop = max(1, frame_length // 4)
        rms = frame_rms(x, frame_length, hop)
        loudest = float(rms.max())
        if loudest < 1e-6:
            return x[:0]
        # A noisy recording's hiss can sit above the relative threshold: also require frames to
        # rise clearly over the noise floor (capped at -20 dB so soft speech is never cut).
        noise_floor = float(np.percentile(rms, 10))
        gate = max(loudest * 10 ** (-abs(threshold_db) / 20), min(3.0 * noise_floor, 0.1 * loudest))
        voiced = np.flatnonzero(rms > gate)
        keep = int(keep_s * self.sample_rate)
        start = max(0, int(voiced[0]) * hop - keep)
        end = min(x.size, int(voiced[-1]) * hop + frame_length + keep)
        return x[start:end].copy()

    @staticmethod
    def reduce_noise(
        audio_data: np.ndarray, sr: int, noise_reduce_strength: float = 0.5
    ) -> np.ndarray:
        """Spectral gating: estimate the noise floor per frequency from the quietest frames and
        attenuate time-frequency cells that do not rise clearly above it."""
        from scipy.ndimage import uniform_filter
        from scipy.signal import istft, stft

        x = np.asarray(audio_data, dtype=np.float32).reshape(-1)
        strength = float(np.clip(noise_reduce_strength, 0.0, 1.0))
        if x.size < 2048 or strength == 0.0:
            return x.copy()
        nperseg = 1024 if sr > 32000 else 512
        _, _, spec = stft(x, fs=sr, nperseg=nperseg, noverlap=nperseg * 3 // 4)
        mag = np.abs(spec)
        frame_energy = mag.mean(axis=0)
        quiet = frame_energy <= np.percentile(frame_energy, 15)
        noise = mag[:, quiet].mean(axis=1, keepdims=True) + _EPS
        # Cells below ~2x the noise floor go; above ~4x stay; a soft ramp between.
        snr = mag / noise
        lo, hi = 1.5 + strength, 3.0 + 2 * strength
        mask = np.clip((snr - lo) / (hi - lo), 0.0, 1.0)
        mask = uniform_filter(mask, size=(3, 5), mode="nearest")  # no musical-noise speckles
        floor = 1.0 - strength * 0.97  # how far gated cells are attenuated
        gain = floor + (1.0 - floor) * mask
        _, y = istft(spec * gain, fs=sr, nperseg=nperseg, noverlap=nperseg * 3 // 4)
        return y[: x.size].astype(np.float32)

    # -- quality ----------------------------------------------------------------------------
    def validate_audio_quality(
        self, audio_data: np.ndarray, sr: int | None = None, *, min_seconds: float = 1.0
    ) -> AudioQuality:
        sr = sr or self.sample_rate
        x = np.asarray(audio_data, dtype=np.float32).reshape(-1)
        duration = x.size / float(sr)
        peak = float(np.max(np.abs(x))) if x.size else 0.0
        rms = float(np.sqrt(np.mean(x**2))) if x.size else 0.0
        frames = frame_rms(x, max(1, int(0.02 * sr))) if x.size else np.zeros(1, np.float32)
        loud = float(np.percentile(frames, 95)) if frames.size else 0.0
        quiet = float(np.percentile(frames, 5)) if frames.size else 0.0
        snr_db = float(20 * np.log10((loud + _EPS) / (quiet + 1e-5)))
        silence_ratio = float(np.mean(frames < max(loud, _EPS) * 0.01)) if frames.size else 1.0
        clipping = float(np.mean(np.abs(x) >= 0.999)) if x.size else 0.0
        issues: list[str] = []
        if duration < min_seconds:
            issues.append(f"too short: {duration:.2f} s, need at least {min_seconds:.1f} s")
        if peak < 1e-3:
            issues.append("silent: no audible sound")
        if clipping > 0.001:
            issues.append(f"clipped: {clipping:.2%} of samples at full scale")
        if peak >= 1e-3 and snr_db < 15.0:
            issues.append(f"noisy: estimated SNR {snr_db:.1f} dB, want at least 15 dB")
        return AudioQuality(
            duration_s=round(duration, 3),
            sample_rate=int(sr),
            peak=round(peak, 4),
            rms=round(rms, 5),
            rms_db=round(float(20 * np.log10(rms + _EPS)), 2),
            clipping_ratio=round(clipping, 5),
            snr_db=round(snr_db, 2),
            silence_ratio=round(silence_ratio, 3),
            ok=not issues,
            issues=issues,
        )

    # -- whole pipeline -------------------------------------------------------------------
    def process(
        self,
        audio_data: np.ndarray,
        *,
        denoise: bool = True,
        trim: bool = True,
        normalize: bool | None = None,
        noise_reduce_strength: float = 0.5,
        target_db: float = -20.0,
    ) -> np.ndarray:
        x = np.asarray(audio_data, dtype=np.float32).reshape(-1)
        if denoise:
            x = self.reduce_noise(x, self.sample_rate, noise_reduce_strength)
        if trim:
            x = self.trim_silence(x)
        if normalize if normalize is not None else self.normalize:
            x = self.normalize_audio(x, target_db)
        return x

    def preprocess(
        self,
        input_path: str | Path,
        output_path: str | Path | None = None,
        *,
        denoise: bool = True,
        trim: bool = True,
        normalize: bool | None = None,
        noise_reduce_strength: float = 0.5,
        target_db: float = -20.0,
    ) -> tuple[str, dict[str, Any]]:
        """Load, clean and save; returns (output path, quality report of the cleaned audio)."""
        audio, sr = self.load_audio(input_path)
        cleaned = self.process(
            audio,
            denoise=denoise,
            trim=trim,
            normalize=normalize,
            noise_reduce_strength=noise_reduce_strength,
            target_db=target_db,
        )
        if cleaned.size == 0:
            raise InvalidInput("audio is silent: nothing left after trimming silence")
        if output_path is None:
            output_path = temp_audio_path(".wav")
        out = self.save_audio(cleaned, output_path, sr)
        return out, self.validate_audio_quality(cleaned, sr).as_dict()
