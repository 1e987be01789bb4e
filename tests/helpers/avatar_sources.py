"""Generated avatar sources: a full-body photo and short source videos made from the built-in
portrait (no stock media ships with the tests)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from avatarbot.pipeline import face as F
from avatarbot.pipeline.ffmpeg import ffmpeg_exe


def _portrait() -> np.ndarray:
    import cv2

    image = cv2.imread(str(F.DEFAULT_PORTRAIT))
    assert image is not None
    return image


def full_body_image(width: int = 900, height: int = 1350) -> np.ndarray:
    """The built-in portrait as the head of a standing figure on a large canvas (face ~21 % wide)."""
    import cv2

    head = _portrait()
    ph, pw = head.shape[:2]
    scale = width * 0.5 / pw  # the portrait's face is ~40 % of its width -> ~21 % of the canvas
    head = cv2.resize(head, (round(pw * scale), round(ph * scale)), interpolation=cv2.INTER_AREA)
    ph, pw = head.shape[:2]
    backdrop = np.median(head[:20].reshape(-1, 3), axis=0)
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = backdrop.astype(np.uint8)
    # a floor and a soft gradient so the background is not flat
    ramp = np.linspace(0.85, 1.1, height, dtype=np.float32)[:, None, None]
    canvas = np.clip(canvas * ramp, 0, 255).astype(np.uint8)
    x0, y0 = (width - pw) // 2, int(height * 0.04)
    # torso, arms and legs continue the portrait's shoulders
    coat = np.median(head[-10:, pw // 2 - 40 : pw // 2 + 40].reshape(-1, 3), axis=0)
    coat_c = tuple(int(v) for v in coat)
    top = y0 + ph - 5
    cx = width // 2
    torso = np.array(
        [
            [x0 + 5, top],
            [x0 + pw - 5, top],
            [cx + 150, int(height * 0.68)],
            [cx - 150, int(height * 0.68)],
        ],
        np.int32,
    )
    cv2.fillPoly(canvas, [torso], coat_c)
    trouser = (60, 50, 45)
    cv2.fillPoly(canvas, [np.array([[cx - 150, int(height * 0.68)], [cx - 10, int(height * 0.68)],
                                    [cx - 30, height - 20], [cx - 130, height - 20]], np.int32)], trouser)  # fmt: skip
    cv2.fillPoly(canvas, [np.array([[cx + 10, int(height * 0.68)], [cx + 150, int(height * 0.68)],
                                    [cx + 130, height - 20], [cx + 30, height - 20]], np.int32)], trouser)  # fmt: skip
    # paste the head with feathered edges
    mask = np.zeros((ph, pw), np.float32)
    mask[6:-1, 6:-6] = 1.0
    mask = cv2.GaussianBlur(mask, (0, 0), 5)[:, :, None]
    mask[-8:] = 1.0  # the shoulders run straight into the torso
    roi = canvas[y0 : y0 + ph, x0 : x0 + pw].astype(np.float32)
    canvas[y0 : y0 + ph, x0 : x0 + pw] = (roi + (head - roi) * mask).astype(np.uint8)
    return canvas


def write_image(path: Path, image: np.ndarray) -> Path:
    import cv2

    assert cv2.imwrite(str(path), image)
    return path


def _encode(path: Path, frames: list[np.ndarray], fps: int = 25) -> Path:
    h, w = frames[0].shape[:2]
    args = [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "pipe:0",
    ]  # fmt: skip
    if path.suffix == ".webm":
        args += ["-c:v", "libvpx", "-b:v", "1M", "-deadline", "realtime", "-cpu-used", "8"]
        args += ["-pix_fmt", "yuv420p"]
    else:
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-pix_fmt", "yuv420p"]
    data = b"".join(np.ascontiguousarray(f).tobytes() for f in frames)
    subprocess.run([*args, str(path)], input=data, check=True)
    return path


def sway_frames(seconds: float = 2.0, fps: int = 25, size: int = 320) -> list[np.ndarray]:
    """The portrait swaying (a slow head tilt and drift) over a background with a moving marker."""
    import cv2

    base = _portrait()
    h, w = base.shape[:2]
    scale = size / float(max(h, w))
    base = cv2.resize(base, (round(w * scale) // 2 * 2, round(h * scale) // 2 * 2))
    h, w = base.shape[:2]
    frames = []
    for i in range(round(seconds * fps)):
        t = i / fps
        angle = 3.0 * np.sin(2 * np.pi * 0.5 * t)
        m = cv2.getRotationMatrix2D((w / 2, h * 0.9), angle, 1.0)
        m[0, 2] += 4.0 * np.sin(2 * np.pi * 0.35 * t)
        frame = cv2.warpAffine(base, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        # the background's own motion: a marker sliding along the top-left corner
        x = int(4 + 30 * (0.5 + 0.5 * np.sin(2 * np.pi * 0.4 * t)))
        cv2.rectangle(frame, (x, 4), (x + 14, 18), (40, 200, 240), -1)
        frames.append(frame)
    return frames


def sway_video(path: Path, seconds: float = 1.6, size: int = 320) -> Path:
    return _encode(path, sway_frames(seconds, size=size))


def two_face_video(path: Path, seconds: float = 1.0) -> Path:
    frames = sway_frames(seconds, size=320)
    return _encode(path, [np.concatenate([f, f[:, ::-1]], axis=1) for f in frames])


def no_face_video(path: Path, seconds: float = 1.0) -> Path:
    frames = sway_frames(seconds, size=320)
    return _encode(path, [np.full_like(f, 128) for f in frames])


def long_video(path: Path, seconds: float = 61.0) -> Path:
    """A tiny, cheap clip that is simply too long."""
    args = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
            "-i", f"color=c=gray:size=64x64:rate=2:duration={seconds}",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)]  # fmt: skip
    subprocess.run(args, check=True)
    return path


def corrupt_video(path: Path) -> Path:
    """An MP4 header followed by garbage."""
    rng = np.random.default_rng(3)
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + rng.integers(0, 256, 50_000, np.uint8).tobytes())
    return path


def detected_face_widths(frames: np.ndarray | list[np.ndarray]) -> list[float]:
    """Width of the face mediapipe's face detector boxes in each frame, as a fraction of the
    frame width (0.0 where it finds none). Both of its models: the short-range one misses
    small faces, the full-range one misses big faces in small frames."""
    import cv2
    from mediapipe.python.solutions import face_detection

    out = []
    with (
        face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5) as near,
        face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5) as far,
    ):
        for frame in frames:
            rgb = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_BGR2RGB)
            found = [*(near.process(rgb).detections or []), *(far.process(rgb).detections or [])]
            widths = [d.location_data.relative_bounding_box.width for d in found]
            out.append(float(max(widths, default=0.0)))
    return out
