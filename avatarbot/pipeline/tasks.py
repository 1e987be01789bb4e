"""Job handlers for pipeline work (video generation, speech).

The pipeline bootstrap registers them (jobs/ never imports the pipeline: that upward import
closed an import circle). Importing this module registers them too, for scripts and tests
that load the handlers without a bootstrap.
"""

from __future__ import annotations

from avatarbot.jobs.handlers import has_handler, register_handler
from avatarbot.storage.models import TaskType


def register_pipeline_handlers() -> None:
    """Register the video and speech handlers, keeping any handler already in place
    (tests and deployments install stand-ins before the services start)."""
    from avatarbot.pipeline.video_task import run_video_generation
    from avatarbot.pipeline.voice_task import run_voice_synthesis

    for task_type, handler in (
        (TaskType.VIDEO_GENERATION, run_video_generation),
        (TaskType.VOICE_SYNTHESIS, run_voice_synthesis),
    ):
        if not has_handler(task_type):
            register_handler(task_type, handler)


register_pipeline_handlers()
