"""Face crop for Wav2Lip's 96x96 input and feathered paste-back of its output."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

IMG_SIZE = 96
PADS = (0, 10, 0, 0)  # top, bottom, left, right: the original --pads default (include the chin)

Box = tuple[int, int, int, int]  # x, y, w, h
FaceBoxFn = Callable[[np.ndarray], "Box | None"]


def _haar_face_box(image_bgr: np.ndarray) -> Box | None:
    import cv2

    cascade_path = getattr(cv2, "data", None)
    if cascade_path is None:
        return None
    xml = cascade_path.haarcascades + "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(xml)
    gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    found = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(48, 48))
    if len(found) == 0:
        return None
    x, y, w, h = max(found, key=lambda b: b[2] * b[3])
    return int(x), int(y), int(w), int(h)


def default_face_box(image_bgr: np.ndarray) -> Box:
    """The video pipeline's detector if present, else a Haar cascade, else a centred guess."""
    box = None
    try:
        from avatarbot.pipeline.face import detect_face_box  # mediapipe, video branch
    except ImportError:
        detect_face_box = None
    if detect_face_box is not None:
        try:
            box = tuple(detect_face_box(image_bgr))
        except Exception:  # no face / several faces / mediapipe missing: try the cascade
            box = None
    if box is None:
        box = _haar_face_box(image_bgr)
    if box is None:  # portraits are head-and-shoulders: face in the upper-middle
        h, w = image_bgr.shape[:2]
        side = int(min(w, h) * 0.5)
        box = ((w - side) // 2, int(h * 0.18), side, side)
    x, y, w, h = (int(v) for v in box[:4])
    return x, y, w, h


def padded_crop_coords(box: Box, frame_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """(y1, y2, x1, x2) of the face box grown by PADS and clamped to the frame."""
    fh, fw = frame_shape[:2]
    x, y, w, h = box
    top, bottom, left, right = PADS
    y1, y2 = max(0, y - top), min(fh, y + h + bottom)
    x1, x2 = max(0, x - left), min(fw, x + w + right)
    if y2 - y1 < 8 or x2 - x1 < 8:
        raise ValueError(f"face box {box} is too small inside a {fw}x{fh} frame")
    return y1, y2, x1, x2


def face_input(crop_bgr: np.ndarray) -> np.ndarray:
    """(6, 96, 96) float32 in [0,1]: lower-half-masked crop + the unmasked crop as reference."""
    import cv2

    face = cv2.resize(crop_bgr, (IMG_SIZE, IMG_SIZE)).astype(np.float32) / 255.0
    masked = face.copy()
    masked[IMG_SIZE // 2 :] = 0.0
    return np.concatenate([masked, face], axis=2).transpose(2, 0, 1).copy()


def feather_mask(height: int, width: int, feather: int | None = None) -> np.ndarray:
    """(h, w, 1) float32 weight: 1 inside, linear ramp to 0 over `feather` px at the borders."""
    if feather is None:
        feather = max(2, int(0.12 * min(height, width)))
    ramp_y = np.minimum(np.arange(height), np.arange(height)[::-1]).astype(np.float32)
    ramp_x = np.minimum(np.arange(width), np.arange(width)[::-1]).astype(np.float32)
    mask = np.minimum.outer(ramp_y, ramp_x) / float(feather)
    return np.clip(mask, 0.0, 1.0)[:, :, None]


def paste_back(
    frame_bgr: np.ndarray,
    pred_bgr01: np.ndarray,
    coords: tuple[int, int, int, int],
    mask: np.ndarray,
) -> np.ndarray:
    """Blend the (3,96,96) [0,1] prediction into a copy of the frame over the crop rectangle."""
    import cv2

    y1, y2, x1, x2 = coords
    pred = (np.clip(pred_bgr01, 0.0, 1.0).transpose(1, 2, 0) * 255.0).astype(np.uint8)
    pred = cv2.resize(pred, (x2 - x1, y2 - y1)).astype(np.float32)
    out = frame_bgr.copy()
    region = out[y1:y2, x1:x2].astype(np.float32)
    out[y1:y2, x1:x2] = (mask * pred + (1.0 - mask) * region + 0.5).astype(np.uint8)
    return out
