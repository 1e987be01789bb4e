"""Portrait loading and face analysis (mediapipe FaceMesh, 478 landmarks), cached per portrait.

The analysis of one portrait at one output size never changes, so it is cached in memory (LRU)
and on disk keyed by sha256(file bytes) + size; repeated renders skip mediapipe entirely.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatarbot.errors import InvalidInput
from avatarbot.pipeline.image_limits import check_pixels, load_reduced

DEFAULT_SIZE = 512
MIN_SIZE = 128
MAX_SIZE = 1024
MAX_IMAGE_BYTES = 25 * 1024 * 1024
N_LANDMARKS = 478
ASSETS_DIR = Path(__file__).parent / "assets"
DEFAULT_PORTRAIT = ASSETS_DIR / "default_portrait.jpg"

# mediapipe FaceMesh indices, ordered from the subject's right mouth corner (image left) to the left.
LIPS_OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_OUTER_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIPS_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
# Eyes, from the outer to the inner corner; upper and lower lids share the corners.
RIGHT_EYE_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
RIGHT_EYE_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
LEFT_EYE_UPPER = (263, 466, 388, 387, 386, 385, 384, 398, 362)
LEFT_EYE_LOWER = (263, 249, 390, 373, 374, 380, 381, 382, 362)
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
CHIN = 152
NOSE_TIP = 1
FOREHEAD = 10


@dataclass(frozen=True)
class Portrait:
    """A portrait resized to the output size, with the sha256 of its source bytes."""

    image_bgr: np.ndarray
    key: str


@dataclass(frozen=True)
class FaceAnalysis:
    landmarks: np.ndarray  # (478, 2) float32 pixel coordinates in the resized portrait
    box: tuple[int, int, int, int]  # x, y, w, h of the face (landmark bounds)
    size: tuple[int, int]  # width, height of the analysed image

    @property
    def mouth_width(self) -> float:
        p = self.landmarks
        return float(np.linalg.norm(p[291] - p[61]))


def even_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """Scale (width, height) so the long side is `long_side`, both dimensions even (H.264 needs it)."""
    scale = long_side / float(max(width, height))
    w = max(2, round(width * scale / 2.0) * 2)
    h = max(2, round(height * scale / 2.0) * 2)
    return w, h


def decode_image(data: bytes) -> np.ndarray:
    """Decode jpg/png/webp bytes (EXIF rotation applied) to uint8 BGR; bad data -> InvalidInput."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise InvalidInput("the image file is empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidInput(f"the image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format not in {"JPEG", "PNG", "WEBP", "MPO"}:
                raise InvalidInput(f"unsupported image format {img.format}; use JPEG, PNG or WebP")
            check_pixels(img)  # from the header: a pixel bomb is never decoded
            img = load_reduced(img)
            img = ImageOps.exif_transpose(img)
            rgb = np.asarray(img.convert("RGB"))
    except InvalidInput:
        raise
    except Image.DecompressionBombError as exc:
        raise InvalidInput("the image has too many pixels") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InvalidInput("the image file is corrupt or not an image") from exc
    if min(rgb.shape[:2]) < 64:
        raise InvalidInput("the image is too small (need at least 64 px)")
    return np.ascontiguousarray(rgb[:, :, ::-1])


def resize_to(image_bgr: np.ndarray, long_side: int) -> np.ndarray:
    import cv2

    if not MIN_SIZE <= long_side <= MAX_SIZE:
        raise InvalidInput(f"size must be between {MIN_SIZE} and {MAX_SIZE}")
    h, w = image_bgr.shape[:2]
    tw, th = even_size(w, h, long_side)
    interp = cv2.INTER_AREA if tw < w else cv2.INTER_CUBIC
    return cv2.resize(image_bgr, (tw, th), interpolation=interp)


def load_portrait(path: str | os.PathLike[str] | None, size: int = DEFAULT_SIZE) -> Portrait:
    """Load a portrait file (default digital human when None), resized to `size` px on the long side."""
    p = Path(path) if path is not None else DEFAULT_PORTRAIT
    try:
        data = p.read_bytes()
    except FileNotFoundError as exc:
        raise InvalidInput(f"image file not found: {p.name}") from exc
    except IsADirectoryError as exc:
        raise InvalidInput(f"not an image file: {p.name}") from exc
    return portrait_from_bytes(data, size)


def portrait_from_bytes(data: bytes, size: int = DEFAULT_SIZE) -> Portrait:
    image = resize_to(decode_image(data), size)
    key = f"{hashlib.sha256(data).hexdigest()}-{size}"
    return Portrait(image, key)


def _detect_landmarks(image_bgr: np.ndarray) -> list[np.ndarray]:
    """All faces' landmarks (pixel coords) found by FaceMesh in static-image mode."""
    import cv2

    from avatarbot.pipeline.native_logs import quiet_native_stderr

    h, w = image_bgr.shape[:2]
    rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
    with quiet_native_stderr():  # mediapipe's C++ and TFLite logs: not for the terminal
        from mediapipe.python.solutions import face_mesh

        with face_mesh.FaceMesh(
            static_image_mode=True,
            refine_landmarks=True,
            max_num_faces=2,
            min_detection_confidence=0.5,
        ) as mesh:
            result = mesh.process(rgb)
    faces = []
    for face in result.multi_face_landmarks or []:
        pts = np.array([(lm.x * w, lm.y * h) for lm in face.landmark], dtype=np.float32)
        faces.append(pts)
    return faces


def analyse_image(image_bgr: np.ndarray) -> FaceAnalysis:
    """Find exactly one face; no face or several -> InvalidInput."""
    faces = _detect_landmarks(image_bgr)
    if not faces:
        raise InvalidInput("no face found in the image")
    if len(faces) > 1:
        raise InvalidInput("several faces found in the image; use a portrait with one face")
    pts = faces[0]
    if pts.shape[0] != N_LANDMARKS:
        raise InvalidInput("face landmarks incomplete")
    h, w = image_bgr.shape[:2]
    return FaceAnalysis(pts, _box_of(pts, w, h), (w, h))


def _box_of(pts: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0 = np.floor(pts.min(axis=0)).astype(int)
    x1, y1 = np.ceil(pts.max(axis=0)).astype(int)
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(width, x1), min(height, y1)
    return int(x0), int(y0), int(x1 - x0), int(y1 - y0)


def detect_face_box(image_bgr: np.ndarray) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the single face in a BGR image; used by neural backends to crop."""
    return analyse_image(image_bgr).box


def crop_box(
    box: tuple[int, int, int, int], frame_size: tuple[int, int], margin: float = 0.25
) -> tuple[int, int, int, int]:
    """The face box grown by `margin` on each side and clipped to the frame (width, height)."""
    x, y, w, h = box
    fw, fh = frame_size
    mx, my = int(w * margin), int(h * margin)
    x0, y0 = max(0, x - mx), max(0, y - my)
    x1, y1 = min(fw, x + w + mx), min(fh, y + h + my)
    return x0, y0, x1 - x0, y1 - y0


def align_face(
    image_bgr: np.ndarray, analysis: FaceAnalysis, out_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Crop a square, eye-levelled face of out_size px; returns (crop, 2x3 affine image->crop)."""
    import cv2

    p = analysis.landmarks
    right_eye = p[list(RIGHT_EYE_UPPER + RIGHT_EYE_LOWER)].mean(axis=0)
    left_eye = p[list(LEFT_EYE_UPPER + LEFT_EYE_LOWER)].mean(axis=0)
    dx, dy = left_eye - right_eye
    angle = float(np.degrees(np.arctan2(dy, dx)))
    center = (p[FACE_OVAL, :].mean(axis=0)).astype(np.float64)
    face_size = float(np.ptp(p[list(FACE_OVAL)], axis=0).max()) * 1.3
    scale = out_size / max(face_size, 1.0)
    m = cv2.getRotationMatrix2D((float(center[0]), float(center[1])), angle, scale)
    m[0, 2] += out_size / 2.0 - center[0]
    m[1, 2] += out_size / 2.0 - center[1]
    crop = cv2.warpAffine(image_bgr, m, (out_size, out_size), borderMode=cv2.BORDER_REPLICATE)
    return crop, m


class FaceAnalysisCache:
    """LRU in memory + .npz files on disk, keyed by Portrait.key."""

    def __init__(
        self, cache_dir: str | os.PathLike[str] | None = None, max_items: int = 32
    ) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.max_items = max_items
        self._mem: OrderedDict[str, FaceAnalysis] = OrderedDict()
        self._lock = threading.Lock()
        self.misses = 0

    def get(self, portrait: Portrait) -> FaceAnalysis:
        with self._lock:
            hit = self._mem.get(portrait.key)
            if hit is not None:
                self._mem.move_to_end(portrait.key)
                return hit
        analysis = self._load_disk(portrait)
        if analysis is None:
            self.misses += 1
            analysis = analyse_image(portrait.image_bgr)
            self._save_disk(portrait.key, analysis)
        with self._lock:
            self._mem[portrait.key] = analysis
            while len(self._mem) > self.max_items:
                self._mem.popitem(last=False)
        return analysis

    def _path(self, key: str) -> Path | None:
        return self.cache_dir / f"{key}.npz" if self.cache_dir else None

    def _load_disk(self, portrait: Portrait) -> FaceAnalysis | None:
        path = self._path(portrait.key)
        if path is None or not path.exists():
            return None
        try:
            with np.load(path) as data:
                pts = data["landmarks"].astype(np.float32)
        except (OSError, ValueError, KeyError):
            return None  # a damaged cache file is simply recomputed
        h, w = portrait.image_bgr.shape[:2]
        if pts.shape != (N_LANDMARKS, 2):
            return None
        return FaceAnalysis(pts, _box_of(pts, w, h), (w, h))

    def _save_disk(self, key: str, analysis: FaceAnalysis) -> None:
        path = self._path(key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, landmarks=analysis.landmarks)
            os.replace(tmp, path)
        except OSError:
            pass  # the cache is an optimisation; a read-only disk must not fail the render


def default_cache_dir() -> Path:
    base = os.environ.get("AVATARBOT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "avatarbot"
    )
    return Path(base) / "face"


_default_cache: FaceAnalysisCache | None = None


def analyse_portrait(
    portrait: Portrait | str | os.PathLike[str],
    cache: FaceAnalysisCache | None = None,
    size: int = DEFAULT_SIZE,
) -> FaceAnalysis:
    """Cached analysis of a loaded portrait or of an image file (loaded at `size`).

    Raises InvalidInput for unreadable images and for no face / several faces."""
    global _default_cache
    if not isinstance(portrait, Portrait):
        portrait = load_portrait(portrait, size)
    if cache is None:
        if _default_cache is None:
            _default_cache = FaceAnalysisCache(default_cache_dir())
        cache = _default_cache
    return cache.get(portrait)
