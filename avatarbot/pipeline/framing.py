"""Framing: which part of the picture the video shows (`auto` | `full` | `portrait`).

A full-body photo resized to 512 px leaves the face about 60 px wide. Like LivePortrait and
SadTalker, `auto` then crops head and shoulders: a square about 2.3x the face box, with the face
in its upper half so the shoulders show, taken from the full-resolution source and resized to
the output size. `portrait` always crops; `full` keeps the whole picture and animates a crop
that is pasted back (feathered) into it, so the face is animated at a useful resolution.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np

from avatarbot.errors import InvalidInput
from avatarbot.pipeline import face as F

CROP_SCALE = 2.3  # crop side / mean face-box side
FACE_Y = 0.46  # face-box centre at this fraction of the crop height: hair above, shoulders below
AUTO_MAX_FILL = 0.75  # auto crops when the crop would be under 75 % of the short side
PLAN_LONG_SIDE = 1024  # face search size: a 20 %-wide face is still ~200 px there


class Framing(StrEnum):
    AUTO = "auto"
    FULL = "full"
    PORTRAIT = "portrait"


def parse_framing(value: str | Framing | None) -> Framing:
    try:
        return Framing(value or Framing.AUTO)
    except ValueError:
        choices = ", ".join(f.value for f in Framing)
        raise InvalidInput(f"unknown framing {value!r}; choose one of: {choices}") from None


Rect = tuple[int, int, int, int]  # x0, y0, x1, y1


def crop_rect(face_box: tuple[float, float, float, float], image_size: tuple[int, int]) -> Rect:
    """The head-and-shoulders square around a face box (x, y, w, h), kept inside the image."""
    x, y, w, h = face_box
    iw, ih = image_size
    side = min(CROP_SCALE * (w + h) / 2.0, float(min(iw, ih)))
    cx, cy = x + w / 2.0, y + h / 2.0
    x0 = min(max(cx - side / 2.0, 0.0), iw - side)
    y0 = min(max(cy - FACE_Y * side, 0.0), ih - side)
    s = round(side)
    x0i, y0i = round(x0), round(y0)
    return x0i, y0i, min(iw, x0i + s), min(ih, y0i + s)


def needs_crop(face_box: tuple[float, float, float, float], image_size: tuple[int, int]) -> bool:
    """True when the face is small in the picture (the crop is clearly smaller than it)."""
    _, _, w, h = face_box
    return CROP_SCALE * (w + h) / 2.0 < AUTO_MAX_FILL * min(image_size)


@dataclass(frozen=True)
class PasteBack:
    """Where animated crop frames go in the whole picture (framing `full`)."""

    background: np.ndarray  # the whole picture at the output size, uint8 BGR
    rect: Rect  # the crop's place in `background`
    mask: np.ndarray  # (h, w, 1) float32, 1 inside, feathered to 0 at the rect's edges

    def compose(self, crop_frame: np.ndarray) -> np.ndarray:
        import cv2

        x0, y0, x1, y1 = self.rect
        small = cv2.resize(crop_frame, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
        out = self.background.copy()
        roi = out[y0:y1, x0:x1].astype(np.float32)
        out[y0:y1, x0:x1] = (roi + (small.astype(np.float32) - roi) * self.mask).astype(np.uint8)
        return out

    @property
    def size(self) -> tuple[int, int]:
        h, w = self.background.shape[:2]
        return w, h


@dataclass(frozen=True)
class FramedPortrait:
    """What the animator sees (the crop or the whole picture) and, for `full`, how to paste back."""

    portrait: F.Portrait
    paste: PasteBack | None = None
    crop: Rect | None = None  # in source pixels, None when the whole picture is animated

    @property
    def output_size(self) -> tuple[int, int]:
        if self.paste is not None:
            return self.paste.size
        h, w = self.portrait.image_bgr.shape[:2]
        return w, h


def feather_mask(width: int, height: int) -> np.ndarray:
    """1 in the middle, a smooth ramp to 0 over the outer ~8 % of each side."""
    ramp = max(2, round(0.08 * min(width, height)))

    def axis(n: int) -> np.ndarray:
        i = np.arange(n, dtype=np.float32)
        edge = np.minimum(i + 0.5, n - i - 0.5) / ramp
        return np.clip(edge, 0.0, 1.0)

    return (axis(height)[:, None] * axis(width)[None, :])[:, :, None]


def far_face_box(image_bgr: np.ndarray) -> tuple[float, float, float, float] | None:
    """FaceMesh's own detector is short-range and misses faces under ~15 % of the picture; the
    full-range face detector finds them, and FaceMesh then runs on a crop around the face.
    Returns the landmark box in `image_bgr` pixels, or None when there is no face."""
    import cv2
    from mediapipe.python.solutions import face_detection

    h, w = image_bgr.shape[:2]
    with face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5) as fd:
        found = fd.process(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)).detections or []
    if len(found) > 1:
        raise InvalidInput("several faces found in the image; use a portrait with one face")
    if not found:
        return None
    rel = found[0].location_data.relative_bounding_box
    side = 3.0 * max(rel.width * w, rel.height * h)
    cx, cy = (rel.xmin + rel.width / 2) * w, (rel.ymin + rel.height / 2) * h
    x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    x1, y1 = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
    crop = image_bgr[y0:y1, x0:x1]
    scale = 384.0 / max(crop.shape[:2])  # FaceMesh wants the face large in its input
    crop = cv2.resize(crop, (round(crop.shape[1] * scale), round(crop.shape[0] * scale)))
    bx, by, bw, bh = F.analyse_image(crop).box
    return x0 + bx / scale, y0 + by / scale, bw / scale, bh / scale


def face_box_in(
    image_bgr: np.ndarray, key: str, cache: F.FaceAnalysisCache | None
) -> tuple[float, float, float, float]:
    """The single face's box (x, y, w, h) in `image_bgr` pixels, found at PLAN_LONG_SIDE."""
    h, w = image_bgr.shape[:2]
    scale = min(1.0, PLAN_LONG_SIDE / float(max(w, h)))
    if scale < 1.0:
        import cv2

        small = cv2.resize(
            image_bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA
        )
    else:
        small = image_bgr
    probe = F.Portrait(small, f"{key}-plan{PLAN_LONG_SIDE}")
    try:
        analysis = cache.get(probe) if cache is not None else F.analyse_image(small)
        x, y, bw, bh = analysis.box
    except InvalidInput as exc:
        far = far_face_box(small) if "no face" in exc.message else None
        if far is None:
            raise
        x, y, bw, bh = far
    return x / scale, y / scale, bw / scale, bh / scale


def frame_image(
    image_bgr: np.ndarray,
    sha: str,
    size: int,
    framing: Framing,
    cache: F.FaceAnalysisCache | None = None,
) -> FramedPortrait:
    """Frame a decoded full-resolution picture for a video `size` px on the long side."""
    import cv2

    h, w = image_bgr.shape[:2]
    whole = F.Portrait(F.resize_to(image_bgr, size), f"{sha}-{size}")
    box = face_box_in(image_bgr, sha, cache)
    if framing is not Framing.PORTRAIT and not needs_crop(box, (w, h)):
        return FramedPortrait(whole)  # the face is big enough: animate the picture as it is
    x0, y0, x1, y1 = crop_rect(box, (w, h))
    if framing is Framing.FULL:
        # Fix the rect in output pixels first so the paste lands on whole pixels.
        s = whole.image_bgr.shape[1] / float(w)
        ox0, oy0 = round(x0 * s), round(y0 * s)
        ox1 = min(whole.image_bgr.shape[1], round(x1 * s))
        oy1 = min(whole.image_bgr.shape[0], round(y1 * s))
        x0, y0 = round(ox0 / s), round(oy0 / s)
        x1, y1 = min(w, round(ox1 / s)), min(h, round(oy1 / s))
    crop = image_bgr[y0:y1, x0:x1]
    side_w, side_h = F.even_size(x1 - x0, y1 - y0, size)
    interp = cv2.INTER_AREA if side_w < (x1 - x0) else cv2.INTER_CUBIC
    animated = cv2.resize(crop, (side_w, side_h), interpolation=interp)
    portrait = F.Portrait(animated, f"{sha}-{size}-{framing.value}-{x0}.{y0}.{x1}.{y1}")
    if framing is not Framing.FULL:
        return FramedPortrait(portrait, None, (x0, y0, x1, y1))
    rect = (ox0, oy0, ox1, oy1)
    paste = PasteBack(whole.image_bgr, rect, feather_mask(ox1 - ox0, oy1 - oy0))
    return FramedPortrait(portrait, paste, (x0, y0, x1, y1))


def load_framed(
    path: str | os.PathLike[str] | None,
    size: int = F.DEFAULT_SIZE,
    framing: str | Framing | None = Framing.AUTO,
    cache: F.FaceAnalysisCache | None = None,
) -> FramedPortrait:
    """Load a portrait file (the built-in one when None) and frame it."""
    chosen = parse_framing(framing)
    if not F.MIN_SIZE <= size <= F.MAX_SIZE:
        raise InvalidInput(f"size must be between {F.MIN_SIZE} and {F.MAX_SIZE}")
    p = Path(path) if path is not None else F.DEFAULT_PORTRAIT
    try:
        data = p.read_bytes()
    except FileNotFoundError as exc:
        raise InvalidInput(f"image file not found: {p.name}") from exc
    except IsADirectoryError as exc:
        raise InvalidInput(f"not an image file: {p.name}") from exc
    image = F.decode_image(data)
    return frame_image(image, hashlib.sha256(data).hexdigest(), size, chosen, cache)
