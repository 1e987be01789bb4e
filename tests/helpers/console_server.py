"""The real avatarbot server for the browser tests, in its own process.

    python tests/helpers/console_server.py --port 8123 --root /tmp/x

Fresh data dir and SQLite DB under --root; the real pipeline renders the videos. With
CONSOLE_E2E_FAKE_VIDEO=1 (or in a checkout without a VIDEO_GENERATION handler) a stand-in
handler renders a short real MP4 with ffmpeg instead (test pattern + tone, H.264/AAC,
+faststart), which keeps the console's video path testable on its own.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

# Run from the repository root: make `avatarbot` importable without installing it.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
for _key in [k for k in os.environ if k.startswith("AVATARBOT_")]:
    os.environ.pop(_key)

from avatarbot.config import Settings  # noqa: E402
from avatarbot.jobs.handlers import JobContext, get_handler, register_handler  # noqa: E402
from avatarbot.storage.models import TaskType  # noqa: E402


def render_test_mp4(ctx: JobContext) -> dict[str, Any]:
    """A 2 s 320x240 clip: enough for <video> to load metadata and report a duration."""
    import imageio_ffmpeg

    out_dir = ctx.settings.media_dir / "outputs"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{ctx.task_id}.mp4"
    ctx.report("tts", 20.0, "speech")
    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-y",
        "-loglevel",
        "error",
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=25:duration=2",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=16000:duration=2",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
        "-movflags",
        "+faststart",
        str(out),
    ]
    ctx.report("render", 50.0, "rendering")
    subprocess.run(cmd, check=True, timeout=60)
    ctx.report("encode", 90.0, "encoded")
    return {"path": str(out), "duration": 2.0, "stand_in": True}


def use_stand_in_pipeline() -> bool:
    if os.environ.get("CONSOLE_E2E_FAKE_VIDEO") == "1":
        return True
    import avatarbot.pipeline.tasks  # noqa: F401  (registers the real handlers, if any)

    try:
        get_handler(TaskType.VIDEO_GENERATION)
    except LookupError:
        return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--root", type=Path, required=True)
    args = parser.parse_args()

    import uvicorn

    from avatarbot.app import create_app

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        env="test",
        data_dir=args.root / "data",
        database_url=f"sqlite+aiosqlite:///{args.root / 'avatarbot.db'}",
        auth={"secret_key": "e2e-secret-key-0123456789abcdef0123456789abcdef"},
    )
    if use_stand_in_pipeline():
        register_handler(TaskType.VIDEO_GENERATION, render_test_mp4)
        print("console_server: stand-in video handler", flush=True)
    app = create_app(settings)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
