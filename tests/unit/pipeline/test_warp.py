"""The vectorised mesh warp against the exact per-triangle rasteriser it replaced."""

from __future__ import annotations

import numpy as np
import pytest

from avatarbot.pipeline import face as F
from avatarbot.pipeline.animators import mouth as M
from avatarbot.pipeline.animators import procedural as P
from avatarbot.pipeline.animators.mesh import MeshWarper
from avatarbot.pipeline.animators.warp import SoftAffineWarp
from avatarbot.pipeline.types import VISEMES, Viseme


@pytest.fixture(scope="module")
def rig() -> tuple[F.Portrait, P.FaceRig]:
    portrait = F.load_portrait(None, 384)
    landmarks = F.analyse_portrait(portrait).landmarks
    return portrait, P.build_rig(portrait.image_bgr, landmarks)


def _dst(rig: P.FaceRig, viseme: Viseme, openness: float, blink: float) -> np.ndarray:
    w = np.zeros(len(VISEMES), np.float32)
    w[VISEMES.index(viseme)] = 1.0
    p = M.shape_params(w, openness)
    lip_d = rig.mframe.vec(rig.lips.displacement(p))
    disp = np.zeros_like(rig.src)
    disp[M.LIP_IDS] = lip_d
    disp[rig.skin_ids] = rig.skin_from_lips @ lip_d
    disp += rig.jaw_weight[:, None] * (p["jaw"] * rig.mframe.width * rig.mframe.ey)[None, :]
    return rig.src + disp + blink * rig.blink_vec


def test_unmoved_mesh_is_the_image(rig: tuple[F.Portrait, P.FaceRig]) -> None:
    portrait, r = rig
    assert np.array_equal(r.warper.warp(portrait.image_bgr, r.src.copy()), portrait.image_bgr)


@pytest.mark.parametrize(
    ("viseme", "openness", "blink"),
    [(Viseme.OPEN, 1.0, 0.0), (Viseme.ROUND, 0.7, 0.0), (Viseme.MBP, 0.0, 1.0)],
)
def test_matches_the_exact_rasteriser_outside_the_opening(
    rig: tuple[F.Portrait, P.FaceRig], viseme: Viseme, openness: float, blink: float
) -> None:
    import cv2

    portrait, r = rig
    dst = _dst(r, viseme, openness, blink)
    exact = MeshWarper(r.src, r.warper.triangles, (r.warper.width, r.warper.height))
    a = exact.warp(portrait.image_bgr, dst).astype(int)
    b = r.warper.warp(portrait.image_bgr, dst).astype(int)
    # The opening is painted over by the mouth interior; compare everything else.
    mouth = np.zeros(a.shape[:2], np.uint8)
    cv2.fillPoly(mouth, [np.round(M.inner_polygon(dst)).astype(np.int32)], 1)
    outside = cv2.dilate(mouth, np.ones((5, 5), np.uint8)) == 0
    diff = np.abs(a - b).max(axis=-1)[outside]
    assert diff.mean() < 0.15
    assert np.percentile(diff, 99.9) < 25  # sub-pixel differences along triangle edges only
    assert (a != portrait.image_bgr).any()  # the case moved something


def test_soft_affine_warp_leaves_the_outside_alone(rig: tuple[F.Portrait, P.FaceRig]) -> None:
    import cv2

    portrait, r = rig
    frame = portrait.image_bgr.copy()
    m = cv2.getRotationMatrix2D(r.pivot, 3.0, 1.01)
    SoftAffineWarp(r.head_mask, r.head_box).warp(frame, m)
    # (the map is computed every second pixel: the mask's edge blurs by a pixel or two)
    near_head = cv2.dilate((r.head_mask > 0).astype(np.uint8), np.ones((7, 7), np.uint8))
    untouched = near_head == 0
    assert np.array_equal(frame[untouched], portrait.image_bgr[untouched])
    moved = r.head_mask > 0.9
    assert np.abs(frame[moved].astype(int) - portrait.image_bgr[moved]).mean() > 2
