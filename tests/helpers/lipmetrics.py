"""Measure lip motion on rendered video frames with mediapipe, independently of the animator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INNER_PAIRS = ((82, 87), (13, 14), (312, 317))


@dataclass
class LipMeasures:
    gap: np.ndarray  # inner-lip opening / inter-ocular distance, per frame (nan: no face)
    width: np.ndarray  # mouth corner distance / inter-ocular distance
    landmarks: list[np.ndarray | None]


def measure_lips(frames: np.ndarray) -> LipMeasures:
    import cv2
    from mediapipe.python.solutions import face_mesh

    gaps, widths, all_pts = [], [], []
    h, w = frames.shape[1:3]
    with face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1) as mesh:
        for frame in frames:
            res = mesh.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            if not res.multi_face_landmarks:
                gaps.append(np.nan)
                widths.append(np.nan)
                all_pts.append(None)
                continue
            p = np.array([(lm.x * w, lm.y * h) for lm in res.multi_face_landmarks[0].landmark])
            iod = float(np.linalg.norm(p[33] - p[263]))
            gaps.append(float(np.mean([np.linalg.norm(p[a] - p[b]) for a, b in INNER_PAIRS])) / iod)
            widths.append(float(np.linalg.norm(p[61] - p[291])) / iod)
            all_pts.append(p)
    return LipMeasures(np.array(gaps), np.array(widths), all_pts)


def rms_envelope(samples: np.ndarray, sample_rate: int, n_frames: int, fps: int = 25) -> np.ndarray:
    hop = sample_rate / fps
    out = np.zeros(n_frames)
    for i in range(n_frames):
        seg = samples[int(i * hop) : int((i + 1) * hop)]
        out[i] = float(np.sqrt(np.mean(seg.astype(np.float64) ** 2))) if len(seg) else 0.0
    return out


def silent_runs(
    rms: np.ndarray, min_frames: int, rel_threshold: float = 0.06
) -> list[tuple[int, int]]:
    """[start, end) frame runs whose loudness stays below rel_threshold * the loud level."""
    level = np.percentile(rms, 90)
    quiet = rms < rel_threshold * level
    runs, start = [], None
    for i, q in enumerate([*quiet.tolist(), False]):
        if q and start is None:
            start = i
        elif not q and start is not None:
            if i - start >= min_frames:
                runs.append((start, i))
            start = None
    return runs
