"""Video avatars: a short clip of the person (mp4, mov, webm; <= 60 s; one face) as the source.

The clip's frames play forwards then backwards (ping-pong), so blinks, head motion and the
background are the person's own and the loop never jumps; the mouth is re-synced on every frame
(video_loop.py). Face landmarks of every source frame are found once and cached in a small
`.npz` next to the clip, keyed by the sha256 of its bytes, so later renders skip mediapipe.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avatarbot.errors import InvalidInput
from avatarbot.pipeline import face as F
from avatarbot.pipeline import framing as FR
from avatarbot.pipeline.ffmpeg import banner_duration, ffmpeg_exe
from avatarbot.pipeline.types import FPS

VIDEO_SUFFIXES = (".mp4", ".mov", ".webm")
MAX_VIDEO_SECONDS = 60.0
MAX_VIDEO_BYTES = 100 * 1024 * 1024
LOOP_SECONDS = 10.0  # at most the clip's first 10 s loop (memory: ~0.8 MB per 512 px frame)
ANALYSE_LONG_SIDE = 960  # landmarks are found at this size (a small face stays findable)
MAX_MISSING = 0.1  # frames where the face may be lost (blur, a hand); filled from neighbours


def is_video_bytes(head: bytes) -> bool:
    """MP4/MOV (ISO base media: an `ftyp`, `moov`, `mdat`, `wide` or `free` box first) or WebM."""
    return head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free") or head.startswith(
        b"\x1a\x45\xdf\xa3"
    )


def video_suffix(head: bytes) -> str | None:
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return ".webm"
    if head[4:8] == b"ftyp" and head[8:10] == b"qt":
        return ".mov"
    if is_video_bytes(head):
        return ".mp4"
    return None


def is_video_path(path: str | os.PathLike[str] | None) -> bool:
    if path is None:
        return False
    p = Path(path)
    if p.suffix.lower() in VIDEO_SUFFIXES:
        return True
    try:
        with p.open("rb") as fh:
            return is_video_bytes(fh.read(12))
    except OSError:
        return False


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _decode(path: Path, vf: str, width: int, height: int, max_frames: int) -> np.ndarray:
    """Frames at 25 fps through the filter `vf` (which must end at width x height), BGR."""
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(path), "-an",
        "-t", f"{LOOP_SECONDS:.3f}", "-vf", f"fps={FPS},{vf}", "-frames:v", str(max_frames),
        "-f", "rawvideo", "-pix_fmt", "bgr24", "pipe:1",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, check=False, timeout=300)
    frame_bytes = width * height * 3
    n = len(done.stdout) // frame_bytes
    if done.returncode != 0 or n == 0:
        raise InvalidInput("the video file is corrupt or has no readable frames")
    return np.frombuffer(done.stdout[: n * frame_bytes], np.uint8).reshape(n, height, width, 3)


def probe_video(path: Path) -> tuple[float, int, int]:
    """(duration s, display width, height); a file ffmpeg cannot read -> InvalidInput."""
    import cv2

    cmd = [
        ffmpeg_exe(), "-hide_banner", "-i", str(path), "-an", "-frames:v", "1",
        "-f", "image2pipe", "-vcodec", "png", "pipe:1",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, check=False, timeout=60)
    banner = done.stderr.decode(errors="replace")
    first = None
    if done.returncode == 0 and done.stdout:
        first = cv2.imdecode(np.frombuffer(done.stdout, np.uint8), cv2.IMREAD_COLOR)
    duration = banner_duration(banner)
    if first is None or duration is None:
        raise InvalidInput("the video file is corrupt or not a video (use mp4, mov or webm)")
    h, w = first.shape[:2]
    return duration, w, h


def check_video_file(path: Path) -> tuple[float, int, int]:
    """Size, container and length limits; returns probe_video's answer."""
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise InvalidInput(f"video file not found: {path.name}") from exc
    if size == 0:
        raise InvalidInput("the video file is empty")
    if size > MAX_VIDEO_BYTES:
        raise InvalidInput(f"the video is larger than {MAX_VIDEO_BYTES // (1024 * 1024)} MB")
    duration, w, h = probe_video(path)
    if duration > MAX_VIDEO_SECONDS:
        raise InvalidInput(
            f"the video lasts {duration:.0f} s; a video avatar may last {MAX_VIDEO_SECONDS:.0f} s"
        )
    if min(w, h) < 64:
        raise InvalidInput("the video is too small (need at least 64 px)")
    return duration, w, h


def write_poster(path: Path, out: Path) -> Path:
    """The clip's first frame as a JPEG (what lists and previews show for a video avatar)."""
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(path),
        "-frames:v", "1", "-q:v", "3", str(out),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, check=False, timeout=60)
    if done.returncode != 0 or not out.is_file():
        raise InvalidInput("the video file is corrupt or has no readable frames")
    return out


def _landmarks_per_frame(frames: np.ndarray) -> np.ndarray:
    """(n, 478, 2) normalised landmarks of the one face in each frame (tracking mode)."""
    import cv2
    from mediapipe.python.solutions import face_mesh

    n = len(frames)
    out = np.full((n, F.N_LANDMARKS, 2), np.nan, dtype=np.float32)
    with face_mesh.FaceMesh(
        static_image_mode=False, refine_landmarks=True, max_num_faces=2,
        min_detection_confidence=0.5, min_tracking_confidence=0.5,
    ) as mesh:  # fmt: skip
        for i, frame in enumerate(frames):
            faces = mesh.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)).multi_face_landmarks or []
            if len(faces) > 1:
                raise InvalidInput(
                    f"several faces found in the video (at {i / FPS:.1f} s); use a clip with one face"
                )
            if faces:
                out[i] = [(lm.x, lm.y) for lm in faces[0].landmark]
    missing = np.isnan(out[:, 0, 0])
    if missing.all():
        raise InvalidInput("no face found in the video")
    if missing.mean() > MAX_MISSING:
        raise InvalidInput(
            f"the face is lost in {missing.mean():.0%} of the video; use a clip where it stays in view"
        )
    if missing.any():  # fill short gaps from the nearest frames that have the face
        good = np.nonzero(~missing)[0]
        flat = out.reshape(n, -1)
        for j in range(flat.shape[1]):
            flat[missing, j] = np.interp(np.nonzero(missing)[0], good, flat[good, j])
    # mediapipe jitters by ~0.5 px per frame; a 3-tap average keeps real motion and drops that
    if n >= 3:
        padded = np.concatenate([out[:1], out, out[-1:]])
        out = (padded[:-2] + 2 * padded[1:-1] + padded[2:]) / 4.0
    return out.astype(np.float32)


def _find_landmarks(frames: np.ndarray) -> np.ndarray:
    """Normalised landmarks per frame; a face too small for FaceMesh's own detector (a
    full-body clip) is first located with the full-range detector and tracked in a crop."""
    import cv2

    try:
        return _landmarks_per_frame(frames)
    except InvalidInput as exc:
        if "no face" not in exc.message:
            raise
        n, h, w = frames.shape[:3]
        boxes = [FR.far_face_box(frames[i]) for i in sorted({0, n // 2, n - 1})]
        found = [b for b in boxes if b is not None]
        if not found:
            raise
    x0 = max(0.0, min(b[0] for b in found))
    y0 = max(0.0, min(b[1] for b in found))
    x1 = min(float(w), max(b[0] + b[2] for b in found))
    y1 = min(float(h), max(b[1] + b[3] for b in found))
    side = 2.5 * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    rx0, ry0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    rx1, ry1 = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
    scale = 384.0 / max(rx1 - rx0, ry1 - ry0)
    size = (round((rx1 - rx0) * scale), round((ry1 - ry0) * scale))
    crops = np.stack([cv2.resize(f[ry0:ry1, rx0:rx1], size) for f in frames])
    local = _landmarks_per_frame(crops) * np.array(size, np.float32)
    return (
        (local / scale + np.array([rx0, ry0], np.float32)) / np.array([w, h], np.float32)
    ).astype(np.float32)


@dataclass
class VideoAnalysis:
    sha: str
    size: tuple[int, int]  # the clip's display width, height
    landmarks: np.ndarray  # (n, 478, 2) in [0, 1] of the picture, one row per 25 fps frame


def cache_path(path: Path, sha: str) -> Path:
    return path.parent / f".{path.name}.{sha[:16]}.faces.npz"


def analyse_video(path: str | os.PathLike[str], fallback_dir: Path | None = None) -> VideoAnalysis:
    """Checks the clip and finds the face in each frame of its loop, cached next to it."""
    path = Path(path)
    _, w, h = check_video_file(path)
    sha = _sha256(path)
    candidates = [cache_path(path, sha)]
    if fallback_dir is not None:
        candidates.append(fallback_dir / f"{sha}.video.npz")
    for cached in candidates:
        try:
            with np.load(cached) as data:
                pts = data["landmarks"].astype(np.float32)
            if pts.ndim == 3 and pts.shape[1:] == (F.N_LANDMARKS, 2) and len(pts):
                return VideoAnalysis(sha, (w, h), pts)
        except (OSError, ValueError, KeyError):
            pass  # absent or damaged: analyse again
    aw, ah = F.even_size(w, h, min(ANALYSE_LONG_SIDE, max(w, h)))
    frames = _decode(path, f"scale={aw}:{ah}", aw, ah, int(LOOP_SECONDS * FPS))
    analysis = VideoAnalysis(sha, (w, h), _find_landmarks(frames))
    for cached in candidates:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(cached.name + ".tmp.npz")
            np.savez(tmp, landmarks=analysis.landmarks)
            os.replace(tmp, cached)
            break
        except OSError:
            continue  # a read-only folder: try the fallback; the cache is only an optimisation
    return analysis


@dataclass
class VideoSource:
    """A checked, analysed clip framed for `size`; frames are decoded when the render starts."""

    path: Path
    analysis: VideoAnalysis
    crop: FR.Rect  # in the clip's display pixels
    size: tuple[int, int]  # the output width, height
    _frames: np.ndarray | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        return f"{self.analysis.sha}-{self.size[0]}x{self.size[1]}-{self.crop}"

    def landmarks(self) -> np.ndarray:
        """(n, 478, 2) pixel coordinates in the output frames."""
        w, h = self.analysis.size
        x0, y0, x1, y1 = self.crop
        sx, sy = self.size[0] / (x1 - x0), self.size[1] / (y1 - y0)
        pts = self.analysis.landmarks * np.array([w, h], np.float32)
        return ((pts - np.array([x0, y0], np.float32)) * np.array([sx, sy], np.float32)).astype(
            np.float32
        )

    def frames(self, n_needed: int) -> np.ndarray:
        """The first min(n_needed, analysed) frames, cropped and resized to the output size."""
        count = max(1, min(n_needed, len(self.analysis.landmarks)))
        if self._frames is None or len(self._frames) < count:
            x0, y0, x1, y1 = self.crop
            vf = f"crop={x1 - x0}:{y1 - y0}:{x0}:{y0},scale={self.size[0]}:{self.size[1]}"
            self._frames = _decode(self.path, vf, self.size[0], self.size[1], count)
        return self._frames[:count]


def pingpong(i: int, m: int) -> int:
    """Source frame for output frame i: 0, 1, ..., m-1, m-2, ..., 1, 0, 1, ..."""
    if m <= 1:
        return 0
    k = i % (2 * (m - 1))
    return k if k < m else 2 * (m - 1) - k


def open_video(
    path: str | os.PathLike[str],
    size: int = F.DEFAULT_SIZE,
    framing: str | FR.Framing | None = FR.Framing.AUTO,
    fallback_dir: Path | None = None,
) -> VideoSource:
    """Check and analyse a clip (cached) and fix its framing: one crop for the whole loop."""
    chosen = FR.parse_framing(framing)
    if not F.MIN_SIZE <= size <= F.MAX_SIZE:
        raise InvalidInput(f"size must be between {F.MIN_SIZE} and {F.MAX_SIZE}")
    analysis = analyse_video(path, fallback_dir)
    w, h = analysis.size
    pts = analysis.landmarks * np.array([w, h], np.float32)
    lo, hi = pts.min(axis=1), pts.max(axis=1)  # per-frame face boxes
    box_w, box_h = np.median(hi - lo, axis=0)
    centre = ((lo + hi) / 2).mean(axis=0)
    box = (
        float(centre[0] - box_w / 2),
        float(centre[1] - box_h / 2),
        float(box_w),
        float(box_h),
    )
    if chosen is FR.Framing.PORTRAIT or (chosen is FR.Framing.AUTO and FR.needs_crop(box, (w, h))):
        crop = FR.crop_rect(box, (w, h))
    else:  # `full`: a clip has no still background to paste into, so the whole frame animates
        crop = (0, 0, w, h)
    out = F.even_size(crop[2] - crop[0], crop[3] - crop[1], size)
    return VideoSource(Path(path), analysis, crop, out)


def load_source(
    path: str | os.PathLike[str] | None,
    size: int = F.DEFAULT_SIZE,
    framing: str | FR.Framing | None = FR.Framing.AUTO,
    cache: F.FaceAnalysisCache | None = None,
) -> FR.FramedPortrait | VideoSource:
    """A still portrait (framed) or a video clip, by the file's content."""
    if is_video_path(path):
        assert path is not None
        fallback = cache.cache_dir if cache is not None else None
        return open_video(path, size, framing, fallback)
    return FR.load_framed(path, size, framing, cache)
