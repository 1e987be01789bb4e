"""Face box for the image_processor's face crop, and the square crop around it."""

from __future__ import annotations

import numpy as np

from avatarbot.errors import InvalidInput

Box = tuple[int, int, int, int]  # x, y, width, height in pixels


def detect_largest_face(rgb: np.ndarray) -> Box | None:
    """(x, y, w, h) of the face, by the pipeline's detector (the one portraits are checked
    with), or None when it finds no face."""
    from avatarbot.pipeline.face import detect_face_box

    try:
        x, y, w, h = (int(v) for v in detect_face_box(np.ascontiguousarray(rgb[..., ::-1])))
    except InvalidInput:  # the pipeline reports "no face" as an error
        return None
    return x, y, w, h


def square_around(box: Box, margin: float, width: int, height: int) -> Box:
    """A square crop centred on the face, grown by `margin`, shifted to stay inside the image."""
    x, y, w, h = box
    side = int(max(w, h) * (1 + margin))
    side = min(side, width, height)
    cx, cy = x + w / 2, y + h / 2
    left = int(min(max(cx - side / 2, 0), width - side))
    top = int(min(max(cy - side / 2, 0), height - side))
    return left, top, side, side
