"""Video generation as a background Task (TaskType.VIDEO_GENERATION).

`pipeline.service.create_video_task` validates and queues; `run_video_generation` is the blocking
handler the executor runs in a worker thread (or a Celery worker). It writes
DATA_DIR/media/video/<task>.mp4 plus a JPEG cover next to it (Feishu wants one for video messages).
"""

from __future__ import annotations

import threading
from typing import Any

from avatarbot.errors import InvalidInput
from avatarbot.jobs.handlers import JobContext

_face_caches: dict[str, Any] = {}
_lock = threading.Lock()


def _face_cache(settings: Any) -> Any:
    """One analysis cache per data dir, shared by all tasks of this process."""
    from avatarbot.pipeline.face import FaceAnalysisCache

    key = str(settings.data_dir)
    with _lock:
        if key not in _face_caches:
            _face_caches[key] = FaceAnalysisCache(settings.data_dir / "cache" / "face")
        return _face_caches[key]


def run_video_generation(ctx: JobContext) -> dict[str, Any]:
    from avatarbot.pipeline.generator import VideoGenerator
    from avatarbot.pipeline.mux import extract_cover

    params = ctx.params
    pipe = ctx.settings.pipeline
    voice_params = dict(params.get("voice_params") or {})
    reference = voice_params.pop("reference_path", None)
    voice_config = {
        "backend": voice_params.pop("backend", None) or pipe.tts_backend,
        "voice": params.get("voice") or voice_params.pop("voice", None),
        "language": voice_params.pop("language", None),
    }
    for key in ("speed", "pitch"):
        if key in voice_params:
            voice_config[key] = float(voice_params[key])
    gen = VideoGenerator(
        mode=params.get("mode") or pipe.default_mode,
        voice_config=voice_config,
        size=int(params.get("size") or pipe.video_size),
        animator=params.get("animator") or pipe.animator_backend,
        enhancer=params.get("enhancer") or pipe.enhancer_backend,
        framing=params.get("framing") or pipe.framing,
        face_cache=_face_cache(ctx.settings),
        max_text_chars=pipe.max_text_chars,
        seed=int(params.get("seed") or 0),  # "another take" asks for other blinks and motion
    )
    out = ctx.settings.media_dir / "video" / f"{ctx.task_id}.mp4"
    common = {
        "progress": ctx.report,
        "cancel_check": ctx.cancelled,
        "max_bytes": params.get("max_bytes"),
    }
    try:
        if params.get("audio_path"):
            result = gen.generate_from_audio(
                params.get("image_path"), params["audio_path"], out, **common
            )
        elif params.get("text"):
            speaker_wav = reference if reference and gen._synthesizer().supports_cloning else None
            result = gen.generate_from_text(
                params["text"], params.get("image_path"), out, speaker_wav, **common
            )
        else:
            raise InvalidInput("a video needs text or audio")
    finally:
        gen.cleanup()
    cover = out.with_suffix(".jpg")
    cover.write_bytes(result.cover_jpeg or extract_cover(out))
    return {**result.as_dict(), "cover_path": str(cover), "duration_s": round(result.duration, 3)}
