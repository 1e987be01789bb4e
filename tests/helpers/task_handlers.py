"""Tiny stand-in job handlers for agent tests (the real pipeline handlers are the lead's)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from avatarbot.jobs import handlers
from avatarbot.jobs.handlers import JobContext
from avatarbot.storage.models import TaskType


def fake_media_handler(ctx: JobContext) -> dict[str, object]:
    """Reports two progress steps and writes a small file named after the task."""
    ctx.report("synthesize", 30.0, "speaking")
    ctx.report("render", 70.0, "rendering")
    suffix = ".mp4" if "image_path" in ctx.params else ".mp3"
    out = Path(ctx.settings.media_dir) / f"{ctx.task_id}{suffix}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(b"fake media for " + str(ctx.params.get("text")).encode())
    return {"path": str(out), "text": ctx.params.get("text")}


@contextmanager
def media_handlers() -> Iterator[None]:
    """Register the fake handler for video and voice tasks, restoring what was there after."""
    import avatarbot.pipeline.tasks  # noqa: F401  (load the real registrations first, then override)

    saved = dict(handlers._HANDLERS)
    handlers.register_handler(TaskType.VIDEO_GENERATION, fake_media_handler)
    handlers.register_handler(TaskType.VOICE_SYNTHESIS, fake_media_handler)
    try:
        yield
    finally:
        handlers._HANDLERS.clear()
        handlers._HANDLERS.update(saved)
