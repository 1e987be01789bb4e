"""The default CPU animator: viseme-driven lip shapes, jaw, blinks and (talking_head) head motion.

Per portrait (cached): landmarks, a triangle mesh over mediapipe's topology plus a ring of fixed
anchors, and linear maps from the 40 lip landmarks to every other moving vertex. Per frame: blend
the viseme shapes, move the vertices, piecewise-affine warp only the triangles that moved, paint the
mouth interior, and for talking_head move the head under a soft mask.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from avatarbot.pipeline import face as F
from avatarbot.pipeline.animators import mouth as M
from avatarbot.pipeline.animators.mesh import (
    face_mesh_triangles,
    ring_triangles,
    strip_triangles,
)
from avatarbot.pipeline.animators.warp import SoftAffineWarp, TriangleMapWarper
from avatarbot.pipeline.frame_farm import farm_frames
from avatarbot.pipeline.types import AnimationJob, Availability

N_MESH = 468  # the iris points (468..477) sit inside the eye holes and stay out of the mesh
_BLINK_PROFILE = (0.35, 0.85, 1.0, 0.6, 0.2)  # eyelid closure per 40 ms frame, ~150 ms closed


@dataclass
class FaceRig:
    src: np.ndarray  # (n_points, 2) mesh vertices: landmarks then anchors
    warper: TriangleMapWarper
    mframe: M.MouthFrame
    lips: M.LipModel
    skin_ids: np.ndarray  # vertices that follow the lips
    skin_from_lips: np.ndarray  # (n_skin, n_lips) blend weights
    jaw_weight: np.ndarray  # (n_points,) how much each vertex follows the chin drop
    blink_vec: np.ndarray  # (n_points, 2) displacement at a full blink
    head_mask: np.ndarray  # (h, w) float32 soft mask of the head, for talking_head
    head_box: tuple[int, int, int, int]  # x0, y0, x1, y1 where head_mask > 0
    pivot: tuple[float, float]  # neck point the head turns around
    face_height: float
    tone: float  # portrait brightness, scales the painted mouth interior
    base: np.ndarray | None = (
        None  # the portrait with its open mouth filled in (None: closed already)
    )
    head_warp: SoftAffineWarp | None = None  # built on first talking_head use

    def head(self) -> SoftAffineWarp:
        if self.head_warp is None:
            self.head_warp = SoftAffineWarp(self.head_mask, self.head_box)
        return self.head_warp


def build_rig(image_bgr: np.ndarray, landmarks: np.ndarray) -> FaceRig:
    import cv2

    h, w = image_bgr.shape[:2]
    lm = landmarks[:N_MESH].astype(np.float32)
    oval = lm[list(F.FACE_OVAL)]
    centre = oval.mean(axis=0)
    half = (oval.max(axis=0) - oval.min(axis=0)) / 2.0
    angles = np.linspace(0, 2 * np.pi, 28, endpoint=False)
    ring = centre + np.stack(
        [np.cos(angles) * half[0] * 1.45, np.sin(angles) * half[1] * 1.45], axis=1
    )
    src = np.concatenate([lm, ring.astype(np.float32)])

    tris = [tuple(t) for t in face_mesh_triangles(lm)]
    tris += strip_triangles(F.LIPS_INNER_UPPER, F.LIPS_INNER_LOWER)
    tris += strip_triangles(F.RIGHT_EYE_UPPER, F.RIGHT_EYE_LOWER)
    tris += strip_triangles(F.LEFT_EYE_UPPER, F.LEFT_EYE_LOWER)
    tris += ring_triangles(src, list(F.FACE_OVAL), N_MESH)
    warper = TriangleMapWarper(src, np.array(tris, dtype=np.int32), (w, h))

    mf = M.mouth_frame(lm)
    lips = M.LipModel(lm, mf)
    local = mf.to_local(lm)
    lip_set = set(int(i) for i in M.LIP_IDS)
    eye_set = set(F.RIGHT_EYE_UPPER + F.RIGHT_EYE_LOWER + F.LEFT_EYE_UPPER + F.LEFT_EYE_LOWER)
    chin_v = float(local[F.CHIN, 1])
    half_u = float(np.abs(local[list(F.FACE_OVAL), 0]).max())

    # Skin near the lips follows them with a Gaussian falloff; nothing above the nostrils moves.
    skin_ids = np.array(
        [i for i in range(N_MESH) if i not in lip_set and i not in eye_set and local[i, 1] > -0.75],
        dtype=np.int32,
    )
    lip_local = local[M.LIP_IDS]
    d2 = ((local[skin_ids, None, :] - lip_local[None, :, :]) ** 2).sum(axis=-1)
    wts = np.exp(-d2 / (2 * 0.2**2))
    # Lip-body points between the contours belong to one lip: above the closed-mouth line they follow
    # the upper lip only, below it the lower lip only (averaging both would tear the opening).
    iu_loc = local[list(F.LIPS_INNER_UPPER)]
    il_loc = local[list(F.LIPS_INNER_LOWER)]
    order = np.argsort(iu_loc[:, 0])
    mid_v = np.interp(
        local[skin_ids, 0], iu_loc[order, 0], ((iu_loc[:, 1] + il_loc[:, 1]) / 2)[order]
    )
    is_upper_lip = np.isin(lips.kind, ("OU", "IU"))
    above = local[skin_ids, 1] < mid_v
    wts = np.where(above[:, None] == is_upper_lip[None, :], wts, wts * 0.02)
    wts /= np.maximum(wts.sum(axis=1, keepdims=True), 1.0)
    wts *= np.clip((local[skin_ids, 1] + 0.4) / 0.25, 0.0, 1.0)[:, None]  # nose stays still

    # The chin drops fully, the jaw angles and cheeks barely: a rotation about the ears, seen from the front.
    jaw = np.zeros(len(src), dtype=np.float32)
    v_rel = np.clip(local[:, 1] / max(chin_v * 0.85, 1e-3), 0.0, 1.0)
    u_rel = np.clip(1.0 - (local[:, 0] / max(half_u, 1e-3)) ** 2, 0.0, 1.0)
    jaw[:N_MESH] = (v_rel**1.2 * u_rel).astype(np.float32)
    jaw[list(lip_set)] = 0.0  # the lips carry their own drop
    # skin near the lips already inherits the lips' drop; it takes the jaw only for the rest
    jaw[skin_ids] *= 1.0 - np.clip(wts.sum(axis=1), 0.0, 1.0)

    blink = np.zeros((len(src), 2), dtype=np.float32)
    for upper, lower in (
        (F.RIGHT_EYE_UPPER, F.RIGHT_EYE_LOWER),
        (F.LEFT_EYE_UPPER, F.LEFT_EYE_LOWER),
    ):
        for a, b in zip(upper[1:-1], lower[1:-1], strict=True):
            gap = lm[b] - lm[a]
            blink[a] = gap * 0.92  # the upper lid comes down to the lower one
            blink[b] = -gap * 0.08
        # the skin fold just above the lid follows half way; brows do not move
        lid = np.array(upper[1:-1])
        lid_centre = lm[lid].mean(axis=0)
        eye_w = float(np.linalg.norm(lm[upper[0]] - lm[upper[-1]]))
        for i in range(N_MESH):
            if i in eye_set or i in lip_set:
                continue
            rel = lm[i] - lid_centre
            if -0.45 * eye_w < rel[1] < 0 and abs(rel[0]) < 0.55 * eye_w:
                nearest = lid[np.argmin(np.linalg.norm(lm[lid] - lm[i], axis=1))]
                fall = np.clip(1.0 + rel[1] / (0.45 * eye_w), 0.0, 1.0)
                blink[i] = blink[nearest] * 0.55 * fall

    head_mask, head_box, pivot = _head_mask(lm, (w, h))
    face_height = float(np.linalg.norm(lm[F.CHIN] - lm[F.FOREHEAD]))
    x, y, bw, bh = F._box_of(lm, w, h)
    gray = cv2.cvtColor(image_bgr[y : y + bh, x : x + bw], cv2.COLOR_BGR2GRAY)
    tone = float(np.clip(np.median(gray) / 150.0, 0.55, 1.1)) if gray.size else 1.0
    return FaceRig(src, warper, mf, lips, skin_ids, wts.astype(np.float32), jaw, blink,
                   head_mask, head_box, pivot, face_height, tone, _filled_mouth(image_bgr, lm, mf, lips))  # fmt: skip


def _filled_mouth(
    image_bgr: np.ndarray, lm: np.ndarray, mf: M.MouthFrame, lips: M.LipModel
) -> np.ndarray | None:
    """For a portrait that already shows teeth or an open mouth: the same image with the opening
    (and a rim around it, where the detected contour sits inside the dark edge) filled in, so
    closing the lips leaves no dark band between them.

    The fill takes the lips' own colour (measured on the lip band between the outer and inner
    contours), not the colour of whatever surrounds the hole: a smiling portrait's thin lips would
    otherwise close into pale, skin-coloured ones."""
    import cv2

    if float(lips.src_gap.max(initial=0.0)) < 0.025:
        return None
    h, w = image_bgr.shape[:2]
    inner = np.round(M.inner_polygon(lm)).astype(np.int32)
    outer = np.round(M.outer_polygon(lm)).astype(np.int32)
    hole = np.zeros((h, w), dtype=np.uint8)
    cv2.fillPoly(hole, [inner], 255)
    rim = max(2, round(0.05 * mf.width))
    mask = cv2.dilate(
        hole, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * rim + 1, 2 * rim + 1))
    )
    filled = cv2.inpaint(image_bgr, mask, rim, cv2.INPAINT_TELEA)
    lips_mask = np.zeros((h, w), dtype=np.uint8)
    cv2.fillPoly(lips_mask, [outer], 255)
    band = (lips_mask > 0) & (hole == 0)
    if int(band.sum()) < 20:
        return filled
    # The band's edges mix in skin, teeth and shadow; the lip itself is its reddest half.
    band_lab = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2LAB)[band].astype(np.float32)
    red = band_lab[band_lab[:, 1] >= np.median(band_lab[:, 1])]
    lip_lab = np.median(red, axis=0)
    lip_lab[0] = np.median(band_lab[:, 0])  # the reddest half is also the most shaded
    # Recolour the filled part inside the lips to the lip colour, keeping the fill's shading.
    region = cv2.GaussianBlur(
        ((mask > 0) & (lips_mask > 0)).astype(np.float32), (0, 0), max(1.0, rim / 2)
    )[..., None]
    f_lab = cv2.cvtColor(filled, cv2.COLOR_BGR2LAB).astype(np.float32)
    target = f_lab.copy()
    target[..., 0] = lip_lab[0] + 0.5 * (f_lab[..., 0] - float(np.median(f_lab[mask > 0, 0])))
    target[..., 1:] = lip_lab[1:]
    out_lab = np.clip(f_lab + (target - f_lab) * region, 0, 255).astype(np.uint8)
    return cv2.cvtColor(out_lab, cv2.COLOR_LAB2BGR)


def _head_mask(
    lm: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, tuple[int, int, int, int], tuple[float, float]]:
    """Soft elliptical mask over head and hair, fading out at the neck; plus the neck pivot."""
    import cv2

    w, h = size
    oval = lm[list(F.FACE_OVAL)]
    (x0, y0), (x1, y1) = oval.min(axis=0), oval.max(axis=0)
    fw, fh = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2, y0 + fh * 0.38  # centred above the face centre to take in the hair
    mask = np.zeros((h, w), dtype=np.uint8)
    cv2.ellipse(mask, (int(cx), int(cy)), (int(fw * 0.78), int(fh * 0.82)), 0, 0, 360, 255, -1)
    sigma = max(2.0, 0.07 * fh)
    soft = cv2.GaussianBlur(mask, (0, 0), sigma).astype(np.float32) / 255.0
    ys, xs = np.nonzero(soft > 0.003)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    pivot = (float(lm[F.CHIN, 0]), float(lm[F.CHIN, 1] + 0.25 * fh))
    return soft, box, pivot


def blink_curve(n_frames: int, fps: int, rng: np.random.Generator) -> np.ndarray:
    """Eyelid closure per frame: a blink every 2-6 s, first one within 0.5-2.5 s."""
    out = np.zeros(n_frames, dtype=np.float32)
    t = rng.uniform(0.5, 2.5)
    while True:
        start = int(t * fps)
        if start >= n_frames:
            return out
        for k, value in enumerate(_BLINK_PROFILE):
            if start + k < n_frames:
                out[start + k] = value
        t += rng.uniform(2.0, 6.0)


def smooth_noise(
    n_frames: int, fps: int, rng: np.random.Generator, freqs: tuple[float, ...]
) -> np.ndarray:
    """Sum of slow sines with random phases, in [-1, 1]: low-frequency, deterministic per seed."""
    t = np.arange(n_frames, dtype=np.float32) / fps
    total = np.zeros(n_frames, dtype=np.float32)
    for f in freqs:
        total += np.sin(2 * np.pi * f * rng.uniform(0.8, 1.2) * t + rng.uniform(0, 2 * np.pi))
    return total / len(freqs)


@dataclass(frozen=True)
class TakeStyle:
    """How one take holds and moves the head: a slight resting tilt and shift, and how much it
    moves. Drawn from the seed, so "another take" looks different (a new phase alone moves the
    face ~1 px in a short clip) and the same seed renders the same video."""

    rot_deg: float = 0.0
    dx: float = 0.0  # fraction of face height
    dy: float = 0.0
    amplitude: float = 1.0

    @classmethod
    def of_seed(cls, seed: int) -> TakeStyle:
        rng = np.random.default_rng([abs(int(seed)), 0x7A4E])  # its own stream: other draws keep
        sign = rng.choice((-1.0, 1.0), size=2)
        return cls(
            rot_deg=float(sign[0] * rng.uniform(1.0, 2.2)),  # a natural lean, never none
            dx=float(sign[1] * rng.uniform(0.005, 0.014)),
            dy=float(rng.uniform(-0.008, 0.008)),
            amplitude=float(rng.uniform(0.8, 1.4)),
        )


def head_motion(
    track_openness: np.ndarray,
    fps: int,
    rng: np.random.Generator,
    style: TakeStyle | None = None,
) -> np.ndarray:
    """(n, 4) rotation degrees, dx, dy (fraction of face height), scale for each frame."""
    style = style or TakeStyle()
    n = len(track_openness)
    # Never longer than the clip: np.convolve("same") returns the longer of the two.
    kernel = np.ones(max(1, min(n, fps // 3)), dtype=np.float32)
    energy = (
        np.convolve(track_openness, kernel / kernel.sum(), mode="same") if n else track_openness
    )
    rot = 1.3 * smooth_noise(n, fps, rng, (0.13, 0.29, 0.47)) * (0.6 + 0.6 * energy)
    dx = 0.008 * smooth_noise(n, fps, rng, (0.11, 0.23))
    t = np.arange(n, dtype=np.float32) / fps
    breath = np.sin(2 * np.pi * 0.24 * t + rng.uniform(0, 2 * np.pi))
    dy = 0.004 * breath + 0.010 * energy * (0.5 + 0.5 * smooth_noise(n, fps, rng, (0.7, 1.1)))
    scale = 1.0 + 0.003 * breath
    rot = style.rot_deg + style.amplitude * rot
    dx = style.dx + style.amplitude * dx
    dy = style.dy + dy
    return np.stack([rot, dx, dy, scale], axis=1).astype(np.float32)


class _RigCache:
    def __init__(self, max_items: int = 8) -> None:
        self._items: OrderedDict[str, FaceRig] = OrderedDict()
        self._lock = threading.Lock()
        self.max_items = max_items

    def get(self, key: str, image: np.ndarray, landmarks: np.ndarray) -> FaceRig:
        with self._lock:
            if key and key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        rig = build_rig(image, landmarks)
        if key:
            with self._lock:
                self._items[key] = rig
                while len(self._items) > self.max_items:
                    self._items.popitem(last=False)
        return rig


class ProceduralAnimator:
    name = "procedural"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._rigs = _RigCache()

    def availability(self) -> Availability:
        import importlib.util

        # find_spec, not import: importing mediapipe costs seconds and the landmarks of a known
        # portrait come from the face cache; mediapipe is imported only when a face is analysed.
        for name in ("cv2", "mediapipe"):
            if importlib.util.find_spec(name) is None:
                return Availability.no(f"procedural animator needs {name}")
        return Availability.yes()

    def rig_for(self, job: AnimationJob, landmarks: np.ndarray | None = None) -> FaceRig:
        if landmarks is None:
            portrait = F.Portrait(job.portrait_bgr, job.portrait_key)
            if job.portrait_key:
                landmarks = F.analyse_portrait(portrait).landmarks
            else:
                landmarks = F.analyse_image(job.portrait_bgr).landmarks
        return self._rigs.get(job.portrait_key, job.portrait_bgr, landmarks)

    def animate(
        self, job: AnimationJob, landmarks: np.ndarray | None = None
    ) -> Iterator[np.ndarray]:
        rig = self.rig_for(job, landmarks)
        return self._frames(job, rig)

    def _frames(self, job: AnimationJob, rig: FaceRig) -> Iterator[np.ndarray]:
        import cv2

        # Each call here works on one small region: OpenCV's worker threads cost a third more CPU
        # for no faster frames, CPU that the encoder (and other renders) running beside us need.
        # Process-wide, and what every process that renders wants.
        cv2.setNumThreads(1)
        track = job.track
        n = track.n_frames
        seed = self.seed if job.seed is None else job.seed
        rng = np.random.default_rng(seed)
        blinks = blink_curve(n, job.fps, rng)
        motion = (
            head_motion(track.openness.astype(np.float32), job.fps, rng, TakeStyle.of_seed(seed))
            if job.mode.moves_head
            else None
        )
        portrait = rig.base if rig.base is not None else job.portrait_bgr
        mf = rig.mframe
        head = rig.head() if motion is not None else None

        def frame_at(i: int) -> np.ndarray:
            # A pure function of i (every random draw is made above): any process may draw any
            # frame and the video is the same (see pipeline/frame_farm.py).
            p = M.shape_params(track.weights[i], float(track.openness[i]))
            lip_d = mf.vec(rig.lips.displacement(p))  # (40, 2) px
            disp = np.zeros_like(rig.src)
            disp[M.LIP_IDS] = lip_d
            disp[rig.skin_ids] = rig.skin_from_lips @ lip_d
            disp += rig.jaw_weight[:, None] * (p["jaw"] * mf.width * mf.ey)[None, :]
            if blinks[i] > 0:
                disp += blinks[i] * rig.blink_vec
            dst = rig.src + disp
            frame = rig.warper.warp(portrait, dst)
            M.draw_interior(frame, M.inner_polygon(dst), mf, p, rig.tone)
            if rig.base is not None:
                M.draw_lip_seam(frame, dst, mf)
            if head is not None and motion is not None:
                rot, dx, dy, scale = (float(v) for v in motion[i])
                m = cv2.getRotationMatrix2D(rig.pivot, rot, scale)
                m[0, 2] += dx * rig.face_height
                m[1, 2] += dy * rig.face_height
                head.warp(frame, m)
            return frame

        yield from farm_frames(frame_at, n, portrait.shape)
