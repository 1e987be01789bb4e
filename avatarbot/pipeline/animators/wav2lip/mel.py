"""Wav2Lip's audio front end (hparams.py / audio.py of the original), numpy only.

Pre-emphasis 0.97 -> STFT (hann, n_fft 800, hop 200, centred, reflect pad) -> |.| ->
Slaney mel filterbank (80 bands, 55..7600 Hz, area-normalised) -> dB - 20 ->
symmetric normalisation to [-4, 4]. 80 mel frames per second of 16 kHz audio.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SAMPLE_RATE = 16000
N_FFT = 800
HOP = 200
WIN = 800
NUM_MELS = 80
FMIN = 55.0
FMAX = 7600.0
PREEMPHASIS = 0.97
REF_LEVEL_DB = 20.0
MIN_LEVEL_DB = -100.0
MAX_ABS_VALUE = 4.0
MEL_STEP = 16  # mel frames fed to the network per video frame
MEL_FPS = SAMPLE_RATE / HOP  # 80


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney scale: linear below 1 kHz, logarithmic above (librosa htk=False)."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp = 200.0 / 3
    mel = hz / f_sp
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    above = hz >= min_log_hz
    mel = np.where(above, min_log_mel + np.log(np.maximum(hz, 1e-12) / min_log_hz) / logstep, mel)
    return mel


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    return np.where(
        mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel
    )


@lru_cache(maxsize=4)
def mel_filterbank(
    sr: int = SAMPLE_RATE,
    n_fft: int = N_FFT,
    n_mels: int = NUM_MELS,
    fmin: float = FMIN,
    fmax: float = FMAX,
) -> np.ndarray:
    """(n_mels, 1 + n_fft//2) triangular filters, Slaney area normalisation."""
    fft_freqs = np.linspace(0.0, sr / 2.0, 1 + n_fft // 2)
    mel_pts = np.linspace(_hz_to_mel(np.array(fmin)), _hz_to_mel(np.array(fmax)), n_mels + 2)
    hz_pts = _mel_to_hz(mel_pts)
    widths = np.diff(hz_pts)
    ramps = hz_pts[:, None] - fft_freqs[None, :]
    weights = np.zeros((n_mels, fft_freqs.size))
    for i in range(n_mels):
        rising = -ramps[i] / widths[i]
        falling = ramps[i + 2] / widths[i + 1]
        weights[i] = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (hz_pts[2 : n_mels + 2] - hz_pts[:n_mels]))[:, None]
    return weights.astype(np.float32)


def _stft_magnitude(y: np.ndarray) -> np.ndarray:
    """|STFT| (1 + n_fft//2, 1 + len(y)//hop), centred with reflect padding like librosa 0.7."""
    pad = N_FFT // 2
    mode = "reflect" if len(y) > pad else "constant"
    padded = np.pad(y, pad, mode=mode)
    # Periodic Hann window (scipy get_window fftbins=True), win == n_fft so no centring pad.
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(WIN) / WIN)
    n_frames = 1 + (len(padded) - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n_frames)[:, None]
    frames = padded[idx] * window[None, :]
    return np.abs(np.fft.rfft(frames, n=N_FFT, axis=1)).T


def melspectrogram(wav: np.ndarray) -> np.ndarray:
    """(80, 1 + len(wav)//200) normalised log-mel of mono 16 kHz float audio."""
    wav = np.asarray(wav, dtype=np.float64).reshape(-1)
    if wav.size == 0:
        raise ValueError("empty audio")
    emphasised = np.empty_like(wav)
    emphasised[0] = wav[0]
    emphasised[1:] = wav[1:] - PREEMPHASIS * wav[:-1]
    mel = mel_filterbank() @ _stft_magnitude(emphasised)
    min_level = 10.0 ** (MIN_LEVEL_DB / 20.0)
    db = 20.0 * np.log10(np.maximum(min_level, mel)) - REF_LEVEL_DB
    normed = (2 * MAX_ABS_VALUE) * ((db - MIN_LEVEL_DB) / -MIN_LEVEL_DB) - MAX_ABS_VALUE
    out = np.clip(normed, -MAX_ABS_VALUE, MAX_ABS_VALUE).astype(np.float32)
    if np.isnan(out).any():
        raise ValueError("mel spectrogram contains NaN")
    return out


def mel_windows(mel: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
    """(n_frames, 80, 16) windows; frame i starts at int(i * 80 / fps), clamped to the end."""
    if mel.shape[1] < MEL_STEP:  # audio shorter than 0.2 s: pad with silence level
        mel = np.pad(mel, ((0, 0), (0, MEL_STEP - mel.shape[1])), constant_values=-MAX_ABS_VALUE)
    last_start = mel.shape[1] - MEL_STEP
    starts = [min(int(i * MEL_FPS / fps), last_start) for i in range(n_frames)]
    return np.stack([mel[:, s : s + MEL_STEP] for s in starts]).astype(np.float32)


def to_16k_mono(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Resample float mono audio to 16 kHz (polyphase, like librosa's load(sr=16000))."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim > 1:
        samples = samples.mean(axis=1)
    if sample_rate == SAMPLE_RATE:
        return samples
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(int(sample_rate), SAMPLE_RATE)
    return resample_poly(samples, SAMPLE_RATE // g, int(sample_rate) // g).astype(np.float32)
