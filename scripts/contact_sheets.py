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

TEXT = "Hello, my name is Ava. Maybe we can talk about the weather, or my bubbly purple umbrella."
OUT = ROOT / "docs" / "images"


def sheet(
    frames: np.ndarray, source_bgr: np.ndarray, out: Path, cols: int = 6, rows: int = 2
) -> Path:
    """The source (letterboxed) then evenly spaced frames labelled with their time; a 256-colour
    PNG so the README stays light."""
    import cv2
    from PIL import Image

    tile_w = 160
    h, w = frames.shape[1:3]
    tile_h = round(h * tile_w / w)
    sh, sw = source_bgr.shape[:2]
    scale = min(tile_w / sw, tile_h / sh)
    small = cv2.resize(
        source_bgr, (round(sw * scale), round(sh * scale)), interpolation=cv2.INTER_AREA
    )
    first = np.full((tile_h, tile_w, 3), 32, np.uint8)
    y, x = (tile_h - small.shape[0]) // 2, (tile_w - small.shape[1]) // 2
    first[y : y + small.shape[0], x : x + small.shape[1]] = small
    cv2.putText(first, "source", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 255, 255), 1)
    tiles = [first]
    for i in np.linspace(0, len(frames) - 1, cols * rows - 1).astype(int):
        t = cv2.resize(frames[i], (tile_w, tile_h), interpolation=cv2.INTER_AREA)
        cv2.putText(t, f"{i / 25:.2f}s", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 255, 0), 1)
        tiles.append(t)
    grid = np.vstack([np.hstack(tiles[r * cols : (r + 1) * cols]) for r in range(rows)])
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid[:, :, ::-1]).quantize(256, dither=Image.Dither.NONE).save(
        out, optimize=True
    )
    return out


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
            path = sheet(mux.decode_frames(result.path), picture, OUT / name)
            print(path.relative_to(ROOT), result.width, result.height, result.n_frames)


if __name__ == "__main__":
    main()
