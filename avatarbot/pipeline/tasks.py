"""Job handlers for pipeline work (video generation, speech); registered with jobs.handlers."""

from __future__ import annotations

from avatarbot.pipeline import (
    video_task,  # noqa: F401  (registers TaskType.VIDEO_GENERATION)
    voice_task,  # noqa: F401  (registers TaskType.VOICE_SYNTHESIS)
)
