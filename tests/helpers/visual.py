"""Contact sheets: a grid of frames from a video, to look at the animation as a whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def contact_sheet(
    frames: np.ndarray,
    out_png: str | Path,
    *,
    cols: int = 6,
    rows: int = 4,
    crop: tuple[int, int, int, int] | None = None,
    tile_width: int = 200,
    start: int = 0,
) -> Path:
    """Evenly spaced frames (optionally cropped to x, y, w, h), labelled with their index."""
    import cv2

    n = len(frames)
    idx = np.linspace(start, n - 1, cols * rows).astype(int)
    tiles = []
    for i in idx:
        f = frames[i]
        if crop is not None:
            x, y, w, h = crop
            f = f[y : y + h, x : x + w]
        scale = tile_width / f.shape[1]
        t = cv2.resize(f, (tile_width, round(f.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        cv2.putText(t, f"{i / 25:.2f}s", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 255, 0), 1)
        tiles.append(t)
    grid = np.vstack([np.hstack(tiles[r * cols : (r + 1) * cols]) for r in range(rows)])
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), grid)
    return out
