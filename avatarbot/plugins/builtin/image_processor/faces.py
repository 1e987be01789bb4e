"""Largest-face detection: the pipeline's detector when present, else OpenCV's Haar cascade."""

from __future__ import annotations

import numpy as np

from avatarbot.errors import BackendUnavailable, InvalidInput

Box = tuple[int, int, int, int]  # x, y, width, height in pixels


def _pipeline_detector(rgb: np.ndarray) -> Box | bool | None:
    """avatarbot.pipeline.face.detect_face_box (mediapipe) when that module exists, else False."""
    try:
        from avatarbot.pipeline.face import detect_face_box  # type: ignore[attr-defined]
    except ImportError:
        return False
    try:
        x, y, w, h = (int(v) for v in detect_face_box(np.ascontiguousarray(rgb[..., ::-1])))
    except InvalidInput:  # the pipeline reports "no face" as an error
        return None
    return x, y, w, h


def _haar_detector(rgb: np.ndarray) -> Box | None:
    try:
        import cv2
    except ImportError as exc:
        raise BackendUnavailable("face crop needs opencv-python-headless") from exc
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    faces = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(40, 40))
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    return int(x), int(y), int(w), int(h)


def detect_largest_face(rgb: np.ndarray) -> Box | None:
    found = _pipeline_detector(rgb)
    if found is not False:
        return found  # type: ignore[return-value]
    return _haar_detector(rgb)


def square_around(box: Box, margin: float, width: int, height: int) -> Box:
    """A square crop centred on the face, grown by `margin`, shifted to stay inside the image."""
    x, y, w, h = box
    side = int(max(w, h) * (1 + margin))
    side = min(side, width, height)
    cx, cy = x + w / 2, y + h / 2
    left = int(min(max(cx - side / 2, 0), width - side))
    top = int(min(max(cy - side / 2, 0), height - side))
    return left, top, side, side
