"""SpeechResult -> MouthTrack: which mouth shape, and how open, for every video frame.

Shape (viseme weights) comes from the TTS phoneme timings when we have them, else from the
audio spectrum. Openness always comes from the audio loudness envelope, so the jaw follows the
sound exactly; m/b/p force the lips shut and silences close the mouth.

Coarticulation: each phoneme's shape starts ANTICIPATION_S before its sound (lips move before
the sound comes out) and overlaps the end of the previous one, so neighbours blend; the weight
curves are then smoothed with a ~30 ms Gaussian before being averaged into 25 fps frames.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from avatarbot.pipeline.types import FPS, VISEMES, MouthTrack, PhonemeEvent, SpeechResult, Viseme

ANTICIPATION_S = 0.05
SMOOTH_SIGMA_S = 0.03
GRID_HZ = 200  # resolution at which phoneme intervals are rasterised before frame averaging
SILENCE_GATE = 0.08  # frames quieter than this fraction of the loud-speech level are silent

_COL = {v: i for i, v in enumerate(VISEMES)}

# espeak mnemonics (English and Mandarin) by their letters. Consonants decide by the first
# letter; vowels may be diphthongs, split in time over the shapes of their letters.
_CONSONANT_VISEME = {
    "m": Viseme.MBP,
    "b": Viseme.MBP,
    "p": Viseme.MBP,
    "f": Viseme.FV,
    "v": Viseme.FV,
    "w": Viseme.ROUND,
    "j": Viseme.SPREAD,  # the y-glide: lips spread
}
_CONSONANT_LETTERS = set("bcdfghklmnpqrstvwxzjDNSTZXCR?")
_VOWEL_VISEME = {
    "a": Viseme.OPEN,
    "A": Viseme.OPEN,
    "V": Viseme.OPEN,  # English strut
    "e": Viseme.SPREAD,
    "E": Viseme.SPREAD,
    "i": Viseme.SPREAD,
    "I": Viseme.SPREAD,
    "o": Viseme.ROUND,
    "O": Viseme.ROUND,
    "0": Viseme.ROUND,
    "u": Viseme.ROUND,
    "U": Viseme.ROUND,
    "y": Viseme.ROUND,  # Mandarin ü
    "@": Viseme.MID,
    "3": Viseme.MID,
}
_PART_WEIGHT = {Viseme.OPEN: 2.0}  # the open nucleus of a diphthong lasts longest


@lru_cache(maxsize=512)
def phoneme_visemes(phoneme: str) -> tuple[tuple[Viseme, float], ...]:
    """The shapes of one espeak phoneme as (viseme, fraction of its duration) in time order."""
    name = phoneme.lstrip("',%=")
    if not name or name.startswith("_"):
        return ((Viseme.REST, 1.0),)
    first = name[0]
    if first in _CONSONANT_VISEME:
        return ((_CONSONANT_VISEME[first], 1.0),)
    if first in _CONSONANT_LETTERS:
        return ((Viseme.MID, 1.0),)
    parts: list[Viseme] = []
    for ch in name:
        shape = _VOWEL_VISEME.get(ch)
        if shape is not None and (not parts or parts[-1] != shape):
            parts.append(shape)
    if not parts:
        return ((Viseme.MID, 1.0),)
    total = sum(_PART_WEIGHT.get(p, 1.0) for p in parts)
    return tuple((p, _PART_WEIGHT.get(p, 1.0) / total) for p in parts)


def viseme_for_phoneme(phoneme: str) -> Viseme:
    """The dominant shape of a phoneme."""
    return max(phoneme_visemes(phoneme), key=lambda part: part[1])[0]


def frame_count(duration_s: float, fps: int = FPS) -> int:
    return max(1, round(duration_s * fps))


def rms_envelope(
    samples: np.ndarray, sample_rate: int, n_frames: int, fps: int = FPS
) -> np.ndarray:
    """RMS of the audio inside each video frame's time window [i/fps, (i+1)/fps)."""
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    edges = np.round(np.arange(n_frames + 1) * sample_rate / fps).astype(np.int64)
    edges = np.clip(edges, 0, x.size)
    csum = np.concatenate([[0.0], np.cumsum(x.astype(np.float64) ** 2)])
    counts = np.maximum(edges[1:] - edges[:-1], 1)
    energy = (csum[edges[1:]] - csum[edges[:-1]]) / counts
    return np.sqrt(np.maximum(energy, 0.0)).astype(np.float32)


def openness_from_rms(rms: np.ndarray) -> np.ndarray:
    """Normalised, lightly smoothed loudness, gated to 0 in silence."""
    if rms.size == 0:
        return rms.astype(np.float32)
    loud = float(np.percentile(rms, 95))
    if loud <= 1e-5:
        return np.zeros_like(rms, dtype=np.float32)
    noise = float(np.percentile(rms, 5))
    # Above the noise floor of a noisy recording, but never so high that steady sound is "silent".
    gate = max(SILENCE_GATE * loud, min(2.0 * noise, 0.5 * loud), 1e-4)
    level = np.clip(rms / loud, 0.0, 1.0)
    # A light 3-tap smoothing keeps the jaw from jittering yet follows syllables (~5 Hz).
    smoothed = np.convolve(np.pad(level, 1, mode="edge"), [0.2, 0.6, 0.2], mode="valid")
    smoothed[rms < gate] = 0.0
    return smoothed.astype(np.float32)


def _gaussian_smooth(curves: np.ndarray, sigma_samples: float) -> np.ndarray:
    radius = max(1, int(3 * sigma_samples))
    t = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (t / sigma_samples) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(curves, ((radius, radius), (0, 0)), mode="edge")
    out = np.empty_like(curves)
    for col in range(curves.shape[1]):
        out[:, col] = np.convolve(padded[:, col], kernel, mode="valid")
    return out


def _grid_to_frames(grid: np.ndarray, n_frames: int, fps: int) -> np.ndarray:
    per_frame = GRID_HZ // fps
    return grid[: n_frames * per_frame].reshape(n_frames, per_frame, -1).mean(axis=1)


def weights_from_phonemes(
    phonemes: list[PhonemeEvent], n_frames: int, fps: int = FPS
) -> np.ndarray:
    """(n_frames, len(VISEMES)) shape weights from phoneme timings, with coarticulation."""
    n_grid = n_frames * (GRID_HZ // fps)
    acc = np.zeros((n_grid, len(VISEMES)), dtype=np.float64)
    for event in phonemes:
        start = event.start
        for shape, fraction in phoneme_visemes(event.phoneme):
            end = start + fraction * (event.end - event.start)
            lo = max(0, int(np.floor((start - ANTICIPATION_S) * GRID_HZ)))
            hi = min(n_grid, int(np.ceil(end * GRID_HZ)))
            if hi > lo:
                acc[lo:hi, _COL[shape]] += 1.0
            start = end
    sums = acc.sum(axis=1, keepdims=True)
    grid = np.where(sums > 0, acc / np.maximum(sums, 1e-9), 0.0)
    grid[sums[:, 0] == 0, _COL[Viseme.REST]] = 1.0  # no phoneme here: resting mouth
    grid = _gaussian_smooth(grid, SMOOTH_SIGMA_S * GRID_HZ)
    return _grid_to_frames(grid, n_frames, fps)


def mbp_closure(phonemes: list[PhonemeEvent], n_frames: int, fps: int = FPS) -> np.ndarray:
    """Per frame, how firmly the lips must be shut for m/b/p (1 = fully closed)."""
    closure = np.zeros(n_frames, dtype=np.float64)
    for event in phonemes:
        if viseme_for_phoneme(event.phoneme) is not Viseme.MBP:
            continue
        first = max(0, int(np.floor(event.start * fps)))
        last = min(n_frames - 1, int(np.floor(max(event.start, event.end - 1e-6) * fps)))
        for i in range(first, last + 1):
            covered = min(event.end, (i + 1) / fps) - max(event.start, i / fps)
            closure[i] = max(closure[i], min(1.0, 2.0 * covered * fps))
        middle = int(np.floor((event.start + event.end) / 2 * fps))
        if 0 <= middle < n_frames:
            closure[middle] = 1.0  # a short /p/ still shuts the lips for one whole frame
    return closure


def weights_from_audio(
    samples: np.ndarray, sample_rate: int, n_frames: int, openness: np.ndarray, fps: int = FPS
) -> np.ndarray:
    """Guess shapes without phonemes: F1-band centroid -> jaw (OPEN), F2-band centroid ->
    SPREAD (high) / ROUND (low), noisy spectra (fricatives) -> MID, silence -> REST."""
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    hop = sample_rate / fps
    win = int(2 ** np.ceil(np.log2(max(hop, 256))))
    freqs = np.fft.rfftfreq(win, 1.0 / sample_rate)
    band1 = (freqs >= 250) & (freqs < 1000)
    band2 = (freqs >= 900) & (freqs < 2800)
    high = freqs >= 3500
    window = np.hanning(win).astype(np.float32)
    scores = np.zeros((n_frames, len(VISEMES)), dtype=np.float64)
    for i in range(n_frames):
        if openness[i] <= 0:
            scores[i, _COL[Viseme.REST]] = 1.0
            continue
        centre = int((i + 0.5) * hop)
        seg = x[max(0, centre - win // 2) : centre + win // 2]
        seg = np.pad(seg, (0, win - seg.size)) * window
        power = np.abs(np.fft.rfft(seg)) ** 2 + 1e-12
        total = power.sum()
        f1 = float((freqs[band1] * power[band1]).sum() / power[band1].sum())
        f2 = float((freqs[band2] * power[band2]).sum() / power[band2].sum())
        noisy = float(power[high].sum() / total)
        row = np.zeros(len(VISEMES))
        row[_COL[Viseme.OPEN]] = np.clip((f1 - 450) / 250, 0, 1)
        row[_COL[Viseme.SPREAD]] = np.clip((f2 - 1500) / 500, 0, 1)
        row[_COL[Viseme.ROUND]] = np.clip((1400 - f2) / 400, 0, 1)
        row[_COL[Viseme.MID]] = 0.3 + 2.0 * noisy
        scores[i] = row / row.sum()
    grid_like = _gaussian_smooth(scores, max(0.6, SMOOTH_SIGMA_S * fps))
    return grid_like / np.maximum(grid_like.sum(axis=1, keepdims=True), 1e-9)


def mouth_track(speech: SpeechResult, fps: int = FPS) -> MouthTrack:
    """The MouthTrack for a SpeechResult: exactly round(duration * fps) frames."""
    n_frames = frame_count(speech.duration, fps)
    rms = rms_envelope(speech.samples, speech.sample_rate, n_frames, fps)
    openness = openness_from_rms(rms)
    if speech.phonemes:
        weights = weights_from_phonemes(speech.phonemes, n_frames, fps)
        closure = mbp_closure(speech.phonemes, n_frames, fps)
        openness = openness * (1.0 - closure)
        mbp = _COL[Viseme.MBP]
        others = 1.0 - weights[:, mbp]
        # Anticipated/smoothed m/b/p shape only half-closes the lips; the exact timing shuts them.
        target = np.maximum(0.6 * weights[:, mbp], closure)
        scale = np.where(others > 1e-9, (1.0 - target) / np.maximum(others, 1e-9), 0.0)
        weights = weights * scale[:, None]
        weights[:, mbp] = target
    else:
        weights = weights_from_audio(speech.samples, speech.sample_rate, n_frames, openness, fps)
    weights = np.clip(weights, 0.0, 1.0)
    row_sums = weights.sum(axis=1, keepdims=True)
    weights = np.where(row_sums > 1.0, weights / row_sums, weights)
    return MouthTrack(
        fps=fps,
        weights=weights.astype(np.float32),
        openness=np.clip(openness, 0.0, 1.0).astype(np.float32),
    )
