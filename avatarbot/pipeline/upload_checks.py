"""Checks of uploaded media done at upload time, exactly as the render will later read them.

A WAV whose header lied about its size decoded to a few samples at the upload's check rate,
was accepted (202), and failed inside the task; the upload stayed on disk. Now the upload is
decoded completely at the render's own sample rate and must hold audible speech.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avatarbot.errors import InvalidInput

SPEECH_SAMPLE_RATE = 24000  # what VideoGenerator.generate_from_audio decodes at
MIN_SPEECH_SECONDS = 0.2
SPEECH_MAX_SECONDS = 300.0  # pipeline.generator.MAX_SECONDS


def check_speech_file(path: str | Path) -> float:
    """Decode the whole file as the render will; its duration, or InvalidInput (blocking)."""
    from avatarbot.pipeline.audio import AudioPreprocessor

    pre = AudioPreprocessor(sample_rate=SPEECH_SAMPLE_RATE, max_seconds=SPEECH_MAX_SECONDS)
    samples, rate = pre.load_audio(path)
    duration = samples.size / float(rate)
    if duration < MIN_SPEECH_SECONDS:
        raise InvalidInput(
            f"the audio is too short ({duration:.2f} s of sound; at least "
            f"{MIN_SPEECH_SECONDS} s); is the file truncated or its header wrong?"
        )
    if float(np.abs(samples).max(initial=0.0)) < 1e-4:
        raise InvalidInput("the audio is empty or silent")
    return duration
