"""Re-sync the mouth of a looping source clip (video avatars), frame by frame.

Procedural (CPU): the procedural animator's rig is built once, on the first source frame (mesh
triangles, which skin follows the lips, how far the jaw drops). Every frame then moves the lips
of *that* frame's landmarks through *its* mouth frame, so the head, eyes and background stay the
clip's own and only the mouth and chin follow the new speech. Wav2Lip, when it is the chosen
animator, runs on each frame's own face crop.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from avatarbot.pipeline import face as F
from avatarbot.pipeline.animators import mouth as M
from avatarbot.pipeline.animators.mesh import MeshWarper
from avatarbot.pipeline.types import MouthTrack, SpeechResult
from avatarbot.pipeline.video_source import VideoSource, pingpong

N_MESH = 468


def _with_ring(lm: np.ndarray) -> np.ndarray:
    """Landmarks plus the fixed anchor ring around the face (as procedural.build_rig places it)."""
    lm = lm[:N_MESH].astype(np.float32)
    oval = lm[list(F.FACE_OVAL)]
    centre = oval.mean(axis=0)
    half = (oval.max(axis=0) - oval.min(axis=0)) / 2.0
    angles = np.linspace(0, 2 * np.pi, 28, endpoint=False)
    ring = centre + np.stack(
        [np.cos(angles) * half[0] * 1.45, np.sin(angles) * half[1] * 1.45], axis=1
    )
    return np.concatenate([lm, ring.astype(np.float32)])


def procedural_frames(
    source: VideoSource, track: MouthTrack
) -> Iterator[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """(frame, face box) for each of track.n_frames, the mouth re-synced on the ping-pong loop."""
    from avatarbot.pipeline.animators.procedural import build_rig

    n = track.n_frames
    frames = source.frames(n)
    m = len(frames)
    landmarks = source.landmarks()[:m]
    w, h = source.size
    rig = build_rig(frames[0], landmarks[0])
    triangles = rig.warper.triangles
    per_frame: dict[int, tuple[np.ndarray, M.MouthFrame, M.LipModel, Any]] = {}
    for i in range(n):
        s = pingpong(i, m)
        if s not in per_frame:
            lm = landmarks[s]
            mf = M.mouth_frame(lm)
            per_frame[s] = (_with_ring(lm), mf, M.LipModel(lm, mf), F._box_of(lm, w, h))
        src, mf, lips, box = per_frame[s]
        p = M.shape_params(track.weights[i], float(track.openness[i]))
        lip_d = mf.vec(lips.displacement(p))
        disp = np.zeros_like(src)
        disp[M.LIP_IDS] = lip_d
        disp[rig.skin_ids] = rig.skin_from_lips @ lip_d
        disp += rig.jaw_weight[:, None] * (p["jaw"] * mf.width * mf.ey)[None, :]
        dst = src + disp
        frame = MeshWarper(src, triangles, (w, h)).warp(frames[s], dst)
        M.draw_interior(frame, M.inner_polygon(dst), mf, p, rig.tone)
        yield frame, box


def wav2lip_frames(
    source: VideoSource, track: MouthTrack, speech: SpeechResult, animator: Any
) -> Iterator[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """The same loop through Wav2Lip: each frame's own face crop, batched like the still path."""
    from avatarbot.pipeline.animators.wav2lip import face as facemod
    from avatarbot.pipeline.animators.wav2lip.mel import mel_windows, melspectrogram, to_16k_mono

    n = track.n_frames
    frames = source.frames(n)
    m = len(frames)
    landmarks = source.landmarks()[:m]
    w, h = source.size
    runner = animator.runner()
    boxes = [F._box_of(landmarks[s], w, h) for s in range(m)]
    coords = [facemod.padded_crop_coords(b, frames[0].shape) for b in boxes]
    wav = to_16k_mono(speech.samples, speech.sample_rate)
    windows = mel_windows(melspectrogram(wav), n, track.fps)[:, None]
    batch = int(getattr(animator, "batch_size", 16))
    for start in range(0, n, batch):
        idx = [pingpong(i, m) for i in range(start, min(n, start + batch))]
        faces = np.stack(
            [facemod.face_input(frames[s][c[0] : c[1], c[2] : c[3]]) for s, c in
             ((s, coords[s]) for s in idx)]
        )  # fmt: skip
        preds = runner.predict(windows[start : start + len(idx)], np.ascontiguousarray(faces))
        for s, pred in zip(idx, preds, strict=True):
            y1, y2, x1, x2 = coords[s]
            mask = facemod.feather_mask(y2 - y1, x2 - x1)
            yield facemod.paste_back(frames[s], pred, coords[s], mask), boxes[s]


def animate_video(
    source: VideoSource, track: MouthTrack, speech: SpeechResult, animator: Any
) -> Iterator[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """Wav2Lip when that is the chosen animator; the procedural re-sync otherwise (SadTalker
    would replace the clip's own head motion, which is the point of a video avatar)."""
    if getattr(animator, "name", "") == "wav2lip":
        return wav2lip_frames(source, track, speech, animator)
    return procedural_frames(source, track)
