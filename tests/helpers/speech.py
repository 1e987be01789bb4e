"""Hand-built speech for pipeline tests before/without TTS: a MouthTrack from a viseme script and
matching synthetic audio (a voiced buzz whose loudness follows the script)."""

from __future__ import annotations

import numpy as np

from avatarbot.pipeline.types import FPS, VISEMES, MouthTrack, SpeechResult, Viseme

# (viseme, seconds, loudness 0..1); loudness 0 = silence
DEMO_SCRIPT: list[tuple[Viseme, float, float]] = [
    (Viseme.REST, 0.4, 0.0),
    (Viseme.MBP, 0.08, 0.3),
    (Viseme.OPEN, 0.2, 0.9),
    (Viseme.MID, 0.12, 0.5),
    (Viseme.SPREAD, 0.2, 0.7),
    (Viseme.FV, 0.1, 0.3),
    (Viseme.ROUND, 0.22, 0.8),
    (Viseme.MBP, 0.08, 0.2),
    (Viseme.OPEN, 0.24, 1.0),
    (Viseme.REST, 0.45, 0.0),
    (Viseme.MID, 0.12, 0.5),
    (Viseme.SPREAD, 0.2, 0.6),
    (Viseme.ROUND, 0.2, 0.7),
    (Viseme.OPEN, 0.2, 0.9),
    (Viseme.MBP, 0.1, 0.2),
    (Viseme.REST, 0.4, 0.0),
]


def script_track_and_audio(
    script: list[tuple[Viseme, float, float]] = DEMO_SCRIPT,
    sample_rate: int = 16000,
    repeat: int = 1,
) -> tuple[MouthTrack, SpeechResult]:
    script = script * repeat
    total = sum(d for _, d, _ in script)
    n = int(np.ceil(total * FPS))
    weights = np.zeros((n, len(VISEMES)), dtype=np.float32)
    openness = np.zeros(n, dtype=np.float32)
    samples = np.zeros(int(total * sample_rate), dtype=np.float32)
    t = 0.0
    rng = np.random.default_rng(1)
    for vis, dur, loud in script:
        f0, f1 = round(t * FPS), round((t + dur) * FPS)
        weights[f0:f1, VISEMES.index(vis)] = 1.0
        openness[f0:f1] = loud
        s0, s1 = int(t * sample_rate), int((t + dur) * sample_rate)
        if loud > 0:
            k = np.arange(s1 - s0) / sample_rate
            env = np.minimum(1.0, np.minimum(k, k[-1] - k) / 0.02 + 0.05)
            buzz = np.sign(np.sin(2 * np.pi * 140 * k)) * 0.5 + rng.normal(0, 0.1, len(k))
            samples[s0:s1] = (0.5 * loud * env * buzz).astype(np.float32)
        t += dur
    # light coarticulation, as visemes.py does: smooth the weights over ~80 ms
    kernel = np.array([0.25, 0.5, 0.25], dtype=np.float32)
    for j in range(weights.shape[1]):
        weights[:, j] = np.convolve(weights[:, j], kernel, mode="same")
    openness = np.convolve(openness, kernel, mode="same").astype(np.float32)
    speech = SpeechResult(samples=samples, sample_rate=sample_rate)
    return MouthTrack(FPS, weights, openness), speech
