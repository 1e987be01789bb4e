"""Viseme mouth shapes as landmark displacements, and the mouth interior drawn behind the lips.

Everything is measured in a mouth frame: origin at the mouth centre, x along the line between the
mouth corners, y perpendicular (down the face), lengths in units of the mouth width W. That keeps
the shapes the same on any portrait size or head tilt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from avatarbot.pipeline import face as F
from avatarbot.pipeline.types import VISEMES, Viseme

# Shape parameters (columns) per viseme, in mouth widths:
#   gap: opening between the inner lips; jaw: chin drop; width: relative change of mouth width;
#   round: pucker/protrusion; press: lips pressed and rolled in; tuck: lower lip up under the upper
#   teeth; raise: upper lip lifted off the teeth.
PARAMS = ("gap", "jaw", "width", "round", "press", "tuck", "raise")
_SHAPES: dict[Viseme, tuple[float, ...]] = {
    Viseme.REST: (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    Viseme.MBP: (0.0, 0.0, -0.03, 0.0, 1.0, 0.0, 0.0),
    Viseme.FV: (0.06, 0.02, 0.0, 0.0, 0.0, 1.0, 0.07),
    Viseme.ROUND: (0.24, 0.12, -0.24, 1.0, 0.0, 0.0, 0.0),
    Viseme.SPREAD: (0.18, 0.06, 0.14, 0.0, 0.0, 0.0, 0.04),
    Viseme.OPEN: (0.40, 0.24, -0.04, 0.0, 0.0, 0.0, 0.02),
    Viseme.MID: (0.22, 0.10, 0.04, 0.0, 0.0, 0.0, 0.02),
}
SHAPE_MATRIX = np.array([_SHAPES[v] for v in VISEMES], dtype=np.float32)  # (n_visemes, n_params)
_REST_ROW = VISEMES.index(Viseme.REST)

LIP_IDS = np.array(
    F.LIPS_OUTER_UPPER + F.LIPS_OUTER_LOWER[1:-1] + F.LIPS_INNER_UPPER + F.LIPS_INNER_LOWER[1:-1]
)


def shape_params(weights: np.ndarray, openness: float) -> dict[str, float]:
    """Blend viseme shapes by their weights (missing mass is REST) and scale the opening by loudness."""
    w = np.clip(np.asarray(weights, dtype=np.float32), 0.0, 1.0)
    total = float(w.sum())
    if total > 1.0:
        w = w / total
    p = w @ SHAPE_MATRIX + max(0.0, 1.0 - float(w.sum())) * SHAPE_MATRIX[_REST_ROW]
    amp = float(np.clip(0.05 + 1.15 * openness, 0.0, 1.25))
    out = dict(zip(PARAMS, (float(x) for x in p), strict=True))
    out["gap"] *= amp
    out["jaw"] *= amp
    out["raise"] *= 0.5 + 0.5 * min(amp, 1.0)
    out["width"] *= 0.6 + 0.4 * min(amp, 1.0)
    return out


@dataclass
class MouthFrame:
    origin: np.ndarray  # mouth centre (2,)
    ex: np.ndarray  # unit vector along the mouth
    ey: np.ndarray  # unit vector down the face
    width: float  # mouth width W in px
    # The interior's per-pixel terms that depend only on the position in this frame, computed
    # once per portrait (see `_InteriorField`), and how often the frame has drawn an interior.
    interior: Any = field(default=None, init=False, repr=False, compare=False)
    interior_uses: int = field(default=0, init=False, repr=False, compare=False)

    def to_local(self, pts: np.ndarray) -> np.ndarray:
        d = pts - self.origin
        return np.stack([d @ self.ex, d @ self.ey], axis=-1) / self.width

    def to_image(self, local: np.ndarray) -> np.ndarray:
        local = np.asarray(local, dtype=np.float32) * self.width
        return self.origin + local[..., :1] * self.ex + local[..., 1:2] * self.ey

    def vec(self, local: np.ndarray) -> np.ndarray:
        local = np.asarray(local, dtype=np.float32) * self.width
        return local[..., :1] * self.ex + local[..., 1:2] * self.ey


def mouth_frame(landmarks: np.ndarray) -> MouthFrame:
    left, right = landmarks[61], landmarks[291]
    ex = (right - left) / max(float(np.linalg.norm(right - left)), 1e-3)
    ey = np.array([-ex[1], ex[0]], dtype=np.float32)
    origin = (landmarks[13] + landmarks[14]) / 2.0
    return MouthFrame(
        origin.astype(np.float32), ex.astype(np.float32), ey, float(np.linalg.norm(right - left))
    )


class LipModel:
    """Displacements of the 40 lip landmarks (mouth-frame units) for a set of shape parameters."""

    def __init__(self, landmarks: np.ndarray, frame: MouthFrame) -> None:
        local = frame.to_local(landmarks[LIP_IDS])
        self.s = np.clip(local[:, 0] / 0.5, -1.0, 1.0)  # -1 .. 1 corner to corner
        n_ou, n_ol = len(F.LIPS_OUTER_UPPER), len(F.LIPS_OUTER_LOWER) - 2
        n_iu = len(F.LIPS_INNER_UPPER)
        kinds = np.array(
            ["OU"] * n_ou
            + ["OL"] * n_ol
            + ["IU"] * n_iu
            + ["IL"] * (len(LIP_IDS) - n_ou - n_ol - n_iu)
        )
        self.kind = kinds
        # Close the portrait's own mouth first (smiling/open portraits): inner lips meet in the middle.
        lm = landmarks
        closing = np.zeros((len(LIP_IDS), 2), dtype=np.float32)
        pos = {int(i): k for k, i in enumerate(LIP_IDS)}
        for up, low, o_up, o_low in zip(
            F.LIPS_INNER_UPPER[1:-1],
            F.LIPS_INNER_LOWER[1:-1],
            F.LIPS_OUTER_UPPER[1:-1],
            F.LIPS_OUTER_LOWER[1:-1],
            strict=True,
        ):
            gap = float((frame.to_local(lm[low]) - frame.to_local(lm[up]))[1])
            if gap <= 0.0:
                continue
            closing[pos[up], 1] += gap / 2
            closing[pos[low], 1] -= gap / 2
            closing[pos[o_up], 1] += gap * 0.35
            closing[pos[o_low], 1] -= gap * 0.35
        self.closing = closing
        self.prof = np.clip(1.0 - self.s**2, 0.0, 1.0)
        self.prof_in = self.prof**0.6
        self.src_gap = np.array(
            [
                float((frame.to_local(lm[low]) - frame.to_local(lm[up]))[1])
                for up, low in zip(F.LIPS_INNER_UPPER[1:-1], F.LIPS_INNER_LOWER[1:-1], strict=True)
            ],
            dtype=np.float32,
        )

    def displacement(self, p: dict[str, float]) -> np.ndarray:
        s, prof, prof_in, kind = self.s, self.prof, self.prof_in, self.kind
        d = self.closing.copy()
        inner = (kind == "IU") | (kind == "IL")
        # Corners move out (spread) or in (round); the inner opening narrows more when rounding.
        d[:, 0] += p["width"] * 0.5 * s - p["round"] * 0.08 * s - inner * p["round"] * 0.10 * s
        gap, raise_, rnd, press, tuck = p["gap"], p["raise"], p["round"], p["press"], p["tuck"]
        iu, il, ou, ol = kind == "IU", kind == "IL", kind == "OU", kind == "OL"
        # Each lip moves nearly as a whole so it keeps its thickness; the outer contour follows the
        # inner one slightly less, which reads as the lip stretching.
        up = (gap * 0.3 + raise_) * prof_in
        low = (gap * 0.7) * prof_in
        d[iu, 1] += -up[iu] + press * 0.01 * prof[iu]
        d[ou, 1] += -(0.9 * up[ou] + rnd * 0.035 * prof[ou]) + press * 0.04 * prof[ou]
        d[il, 1] += low[il] - tuck * 0.015 * prof[il] - press * 0.01 * prof[il]
        d[ol, 1] += 0.95 * low[ol] + (rnd * 0.035 - press * 0.045 - tuck * 0.07) * prof[ol]
        # The inner lips may touch but never cross (crossed triangles would fold the image).
        iu_mid = np.nonzero(iu)[0][1:-1]
        il_mid = np.nonzero(il)[0]
        gap_after = self.src_gap + d[il_mid, 1] - d[iu_mid, 1]
        fix = np.minimum(gap_after, 0.0)
        d[il_mid, 1] -= fix / 2
        d[iu_mid, 1] += fix / 2
        return d


_CAVITY = np.array([34, 28, 72], dtype=np.float32)  # BGR, dark red-brown
_TONGUE = np.array([96, 98, 190], dtype=np.float32)  # BGR, pink-red
_TEETH = np.array([186, 208, 232], dtype=np.float32)  # BGR, warm off-white
_TEETH_SHADE = np.array([58, 70, 96], dtype=np.float32)  # teeth in shadow turn warm grey, not blue
# Tooth boundaries across each arch, in mouth widths from the centre line.
_UPPER_SEAMS = (0.0, 0.085, 0.165, 0.25, 0.33)
_LOWER_SEAMS = (0.0, 0.05, 0.10, 0.16, 0.22)
_UPPER_HALF_W = 0.36  # the upper arch, half width
_LOWER_HALF_W = 0.25


def inner_polygon(dst: np.ndarray) -> np.ndarray:
    """The inner-lip outline (mouth opening) from displaced landmarks, as one closed polygon."""
    upper = dst[list(F.LIPS_INNER_UPPER)]
    lower = dst[list(F.LIPS_INNER_LOWER[1:-1])][::-1]
    return np.concatenate([upper, lower]).astype(np.float32)


def _tooth_shading(au: np.ndarray, seams: tuple[float, ...], width: float) -> np.ndarray:
    """Per-tooth relief across the arch: each tooth is convex (lighter in its middle), with a dark
    gap at its edges. 1.0 at a tooth's middle, ~0.75 in a gap."""
    bounds = np.array((*seams, seams[-1] + 0.1), dtype=np.float32)
    k = np.clip(np.searchsorted(bounds, au) - 1, 0, len(bounds) - 2)
    lo, hi = bounds[k], bounds[k + 1]
    x = np.clip((au - lo) / np.maximum(hi - lo, 1e-3), 0.0, 1.0)  # 0..1 across the tooth
    relief = 1.0 - 0.10 * (2 * x - 1) ** 2
    gap = np.minimum(au - lo, hi - au)
    return relief * (1.0 - 0.18 * np.exp(-((gap / width) ** 2)))


def outer_polygon(dst: np.ndarray) -> np.ndarray:
    """The outer lip outline, as one closed polygon."""
    upper = dst[list(F.LIPS_OUTER_UPPER)]
    lower = dst[list(F.LIPS_OUTER_LOWER[1:-1])][::-1]
    return np.concatenate([upper, lower]).astype(np.float32)


def draw_interior(
    img: np.ndarray, poly: np.ndarray, mf: MouthFrame, p: dict[str, float], tone: float
) -> None:
    """Paint cavity, tongue and both rows of teeth inside the mouth opening `poly`, in place.

    Back to front: a dark cavity, the tongue resting on the floor of the mouth, the lower teeth
    (on the jaw: they rise into view only as the mouth opens), the upper teeth (fixed to the skull
    at the closed-mouth line). Teeth are lit from the front: shaded where the lips overhang them,
    darker towards the corners and in the gaps between teeth, never a flat white band."""
    import cv2

    w = mf.width
    if cv2.contourArea(poly) < 0.002 * w * w:
        return
    h_img, w_img = img.shape[:2]
    x0, y0 = np.floor(poly.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(poly.max(axis=0)).astype(int) + 3
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w_img, x1), min(h_img, y1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    f = _interior_field(mf, img.shape[:2], (x0, y0, x1, y1))
    v, depth = f.v, f.depth
    n_up = len(F.LIPS_INNER_UPPER)
    top_lip_v = float(mf.to_local(poly[n_up // 2])[1])
    lower_lip_v = float(mf.to_local(poly[n_up + (len(F.LIPS_INNER_LOWER) - 2) // 2])[1])
    opening = max(lower_lip_v - top_lip_v, 1e-3)

    # Cavity: darkest deep in the middle of the opening and in the corners.
    mid = np.clip(1.0 - np.abs(v - (top_lip_v + lower_lip_v) / 2) / (0.5 * opening), 0.0, 1.0)
    layer = _CAVITY[None, None, :] * (0.55 + 0.45 * depth - 0.25 * mid * depth)[..., None]

    # Tongue: a mound on the floor of the mouth; its top shows once the jaw has dropped a little.
    t_top = lower_lip_v - 0.05 - 0.35 * min(opening, 0.4)
    t_cy, t_ry = lower_lip_v + 0.04, max(lower_lip_v + 0.04 - t_top, 0.02)
    r2 = f.u2_tongue + ((v - t_cy) / t_ry) ** 2
    tongue = np.clip((1.0 - r2) / 0.15, 0.0, 1.0)  # soft edge
    lit = 0.62 + 0.38 * np.clip(1.0 - r2, 0.0, 1.0) ** 0.5  # rounder top catches the light
    groove = 1.0 - f.groove * np.clip((v - t_top) / t_ry, 0, 1)
    tongue_col = _TONGUE * (lit * groove * (0.75 + 0.25 * depth))[..., None]
    layer = layer * (1 - tongue[..., None]) + tongue_col * tongue[..., None]

    # Lower teeth ride on the jaw, just behind the lower lip: hidden for small openings.
    show = float(np.clip((opening - 0.08) / 0.12, 0.0, 1.0))
    lower_top = lower_lip_v - 0.075 * show + f.lower_curve
    lower_teeth = (v > lower_top) & f.lower_band & (show > 0)
    # Upper teeth hang from the skull: their edge stays at the closed-mouth line whatever the jaw
    # does (the mask and its lighting are in the field).
    upper_teeth = f.upper_teeth

    # Occlusion: the upper lip shades the top of the upper teeth, the lower lip the bottom of the
    # lower ones (the arch, the tooth relief and the translucent tips are in the field).
    up_occ = 0.62 + 0.38 * np.clip((v - top_lip_v) / 0.06, 0.0, 1.0)
    low_occ = 0.60 + 0.40 * np.clip((lower_lip_v - v) / 0.05, 0.0, 1.0)
    upper_light = f.upper_light * up_occ
    lower_light = f.lower_light * low_occ
    teeth_light = np.where(upper_teeth, upper_light, lower_light)[..., None]
    teeth = (upper_teeth | lower_teeth)[..., None]
    layer = np.where(teeth, _TEETH_SHADE + (_TEETH - _TEETH_SHADE) * teeth_light, layer)
    layer *= tone
    layer = cv2.GaussianBlur(layer, (3, 3), 0.7)  # photos are soft; crisp drawn teeth look pasted

    mask = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    pts = np.round((poly - np.array([x0, y0], np.float32)) * 16).astype(np.int32)
    cv2.fillPoly(mask, [pts], 255, lineType=cv2.LINE_AA, shift=4)
    alpha = cv2.GaussianBlur(mask, (3, 3), 0).astype(np.float32)[..., None] / 255.0
    # Lips overhang the opening: everything just inside their edge sits in their shadow.
    sigma = max(1.0, 0.035 * w)
    inside = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), sigma)
    layer *= (0.55 + 0.45 * np.clip(inside * 2.0 - 0.4, 0.0, 1.0))[..., None]
    roi = img[y0:y1, x0:x1].astype(np.float32)
    img[y0:y1, x0:x1] = np.clip(roi * (1 - alpha) + layer * alpha, 0, 255).astype(np.uint8)


@dataclass
class _InteriorField:
    """Per-pixel terms of `draw_interior` that depend only on the pixel's place in the mouth
    frame, over a box that holds any mouth opening; each frame takes its slice."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the image
    u: np.ndarray
    v: np.ndarray
    au: np.ndarray
    depth: np.ndarray
    u2_tongue: np.ndarray
    groove: np.ndarray
    lower_curve: np.ndarray
    lower_band: np.ndarray
    upper_teeth: np.ndarray
    upper_light: np.ndarray
    lower_light: np.ndarray

    def crop(self, x0: int, y0: int, x1: int, y1: int) -> _InteriorField:
        bx, by = self.box[0], self.box[1]
        sl = (slice(y0 - by, y1 - by), slice(x0 - bx, x1 - bx))
        arrays = {
            name: getattr(self, name)[sl] for name in self.__dataclass_fields__ if name != "box"
        }
        return _InteriorField((x0, y0, x1, y1), **arrays)


def _field_over(mf: MouthFrame, x0: int, y0: int, x1: int, y1: int) -> _InteriorField:
    gx, gy = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
    dx, dy = gx - mf.origin[0], gy - mf.origin[1]
    w = mf.width
    u = (dx * mf.ex[0] + dy * mf.ex[1]) / w
    v = (dx * mf.ey[0] + dy * mf.ey[1]) / w
    au = np.abs(u)
    upper_edge = 0.02 - 0.09 * (u / 0.5) ** 2
    arch_u = np.clip(1.0 - 0.6 * (au / _UPPER_HALF_W) ** 2, 0.3, 1.0)
    arch_l = np.clip(1.0 - 0.6 * (au / _LOWER_HALF_W) ** 2, 0.3, 1.0)
    # The biting edges catch the light, the very tips are a little translucent.
    up_tip = 1.0 - 0.10 * np.clip((v - (upper_edge - 0.012)) / 0.012, 0.0, 1.0)
    return _InteriorField(
        box=(x0, y0, x1, y1),
        u=u,
        v=v,
        au=au,
        depth=np.clip(1.0 - au / 0.5, 0.0, 1.0),
        u2_tongue=(u / 0.30) ** 2,
        groove=0.12 * np.exp(-((u / 0.02) ** 2)),
        lower_curve=0.10 * (u / 0.5) ** 2,
        lower_band=au < _LOWER_HALF_W,
        upper_teeth=(v < upper_edge) & (au < _UPPER_HALF_W),
        upper_light=arch_u * up_tip * _tooth_shading(au, _UPPER_SEAMS, 0.007),
        lower_light=0.85 * arch_l * _tooth_shading(au, _LOWER_SEAMS, 0.006),
    )


# The box the field covers, in mouth widths around the mouth centre: wider than the widest
# spread and deeper than the widest-open jaw (a bigger opening falls back to a field of its own).
_FIELD_U, _FIELD_V = 0.9, (-0.6, 1.1)
_FIELD_AFTER_USES = 4  # the whole box costs several frames' worth: worth it for a still portrait


def _interior_field(
    mf: MouthFrame, shape: tuple[int, int], box: tuple[int, int, int, int]
) -> _InteriorField:
    field_ = mf.interior
    mf.interior_uses += 1
    if field_ is None and mf.interior_uses < _FIELD_AFTER_USES:  # a video frame's, seldom reused
        return _field_over(mf, *box)
    if field_ is None:
        corners = mf.to_image(
            np.array([[u, v] for u in (-_FIELD_U, _FIELD_U) for v in _FIELD_V], np.float32)
        )
        fx0, fy0 = np.floor(corners.min(axis=0)).astype(int)
        fx1, fy1 = np.ceil(corners.max(axis=0)).astype(int) + 1
        h, w = shape
        fx0, fy0, fx1, fy1 = max(0, fx0), max(0, fy0), min(w, fx1), min(h, fy1)
        field_ = mf.interior = _field_over(mf, int(fx0), int(fy0), int(fx1), int(fy1))
    x0, y0, x1, y1 = box
    fx0, fy0, fx1, fy1 = field_.box
    if fx0 <= x0 and fy0 <= y0 and x1 <= fx1 and y1 <= fy1:
        return field_.crop(x0, y0, x1, y1)
    return _field_over(mf, x0, y0, x1, y1)


def draw_lip_seam(img: np.ndarray, dst: np.ndarray, mf: MouthFrame) -> None:
    """A soft dark line where closed lips meet (the filled-in portrait has none of its own)."""
    import cv2

    upper = dst[list(F.LIPS_INNER_UPPER)]
    lower = dst[list(F.LIPS_INNER_LOWER)]
    line = (upper + lower) / 2.0
    x0, y0 = np.floor(line.min(axis=0)).astype(int) - 3
    x1, y1 = np.ceil(line.max(axis=0)).astype(int) + 4
    h, w = img.shape[:2]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 3 or y1 - y0 < 2:
        return
    mask = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    pts = np.round((line - np.array([x0, y0], np.float32)) * 16).astype(np.int32)
    cv2.polylines(
        mask,
        [pts],
        False,
        255,
        thickness=max(1, int(mf.width * 0.02)),
        lineType=cv2.LINE_AA,
        shift=4,
    )
    alpha = cv2.GaussianBlur(mask, (3, 3), 0).astype(np.float32)[..., None] / 255.0 * 0.55
    roi = img[y0:y1, x0:x1].astype(np.float32)
    img[y0:y1, x0:x1] = (roi * (1.0 - alpha) + roi * 0.35 * alpha).astype(np.uint8)
