"""Render the README's framing and video-avatar contact sheets into docs/images/.

    PYTHONPATH=. .venv/bin/python scripts/contact_sheets.py

Three renders of the same sentence: the built-in portrait, a generated full-body photo
(auto-framed) and a generated swaying video avatar; each sheet also shows the source.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from avatarbot.pipeline import mux  # noqa: E402
from avatarbot.pipeline.generator import VideoGenerator  # noqa: E402
from tests.helpers import avatar_sources as S  # noqa: E402
from tests.helpers.visual import contact_sheet  # noqa: E402

TEXT = "Hello, my name is Ava. Maybe we can talk about the weather, or my bubbly purple umbrella."
OUT = ROOT / "docs" / "images"


def _with_source(frames: np.ndarray, source_bgr: np.ndarray) -> np.ndarray:
    """Put the source picture, letterboxed to the frame size, in front of the frames."""
    import cv2

    h, w = frames.shape[1:3]
    sh, sw = source_bgr.shape[:2]
    scale = min(w / sw, h / sh)
    small = cv2.resize(
        source_bgr, (round(sw * scale), round(sh * scale)), interpolation=cv2.INTER_AREA
    )
    tile = np.full((h, w, 3), 32, np.uint8)
    y, x = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    tile[y : y + small.shape[0], x : x + small.shape[1]] = small
    cv2.putText(tile, "source", (4, h - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 255, 255), 2)
    return np.concatenate([tile[None], frames])


def main() -> None:
    import cv2

    gen = VideoGenerator(size=512, mode="lipsync")
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        body = S.write_image(t / "full_body.png", S.full_body_image())
        clip = S.sway_video(t / "sway.mp4", seconds=3.0, size=512)
        jobs = [
            ("framing_builtin.png", None, cv2.imread(str(ROOT / "avatarbot/pipeline/assets/default_portrait.jpg"))),
            ("framing_full_body_auto.png", body, cv2.imread(str(body))),
            ("video_avatar.png", clip, mux.decode_frames(clip)[0]),
        ]  # fmt: skip
        for name, source, picture in jobs:
            result = gen.generate_from_text(TEXT, source, t / f"{name}.mp4", framing="auto")
            frames = _with_source(mux.decode_frames(result.path), picture)
            path = contact_sheet(frames, OUT / name, cols=6, rows=2, tile_width=180, start=0)
            print(path.relative_to(ROOT), result.width, result.height, result.n_frames)


if __name__ == "__main__":
    main()
