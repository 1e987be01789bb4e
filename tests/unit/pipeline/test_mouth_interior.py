"""The painted mouth interior, measured on rendered frames: the opening is found by mediapipe on
the frame itself (tests/helpers/lipmetrics), then its pixels are classified by colour."""

from __future__ import annotations

import numpy as np
import pytest

from avatarbot.pipeline import face as F
from avatarbot.pipeline.animators import mouth as M
from avatarbot.pipeline.animators.procedural import ProceduralAnimator
from avatarbot.pipeline.types import (
    FPS,
    VISEMES,
    AnimationJob,
    Mode,
    MouthTrack,
    SpeechResult,
    Viseme,
)
from tests.helpers.lipmetrics import measure_lips


@pytest.fixture(scope="module")
def portrait() -> F.Portrait:
    return F.load_portrait(None, 512)


@pytest.fixture(scope="module")
def landmarks(portrait: F.Portrait) -> np.ndarray:
    return F.analyse_portrait(portrait).landmarks


def _frame(
    portrait: F.Portrait, viseme: Viseme, openness: float, landmarks: np.ndarray | None = None
) -> np.ndarray:
    w = np.zeros((1, len(VISEMES)), np.float32)
    w[0, VISEMES.index(viseme)] = 1.0
    track = MouthTrack(FPS, w, np.full(1, openness, np.float32))
    speech = SpeechResult(np.zeros(640, np.float32), 16000)
    job = AnimationJob(portrait.image_bgr, speech, track, Mode.LIPSYNC, FPS, portrait.key)
    return next(iter(ProceduralAnimator().animate(job, landmarks=landmarks)))


def _masks(frame: np.ndarray, polygon: np.ndarray, erode: int = 5) -> np.ndarray:
    import cv2

    mask = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1)
    if erode:
        mask = cv2.erode(mask, np.ones((erode, erode), np.uint8))
    return mask.astype(bool)


def _opening(frame: np.ndarray) -> dict[str, np.ndarray]:
    """Upper and lower parts of the mouth opening (eroded off the lip edge) and pixel classes."""
    import cv2

    pts = measure_lips(frame[None]).landmarks[0]
    assert pts is not None, "no face found on the rendered frame"
    inside = _masks(frame, M.inner_polygon(pts))
    ys = np.nonzero(inside)[0]
    assert ys.size > 50, "the mouth is not open"
    top, bottom = ys.min(), ys.max()
    rows = np.arange(frame.shape[0])[:, None]
    hsv = cv2.cvtColor(frame, cv2.COLOR_BGR2HSV).astype(int)
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    tooth = (val > 130) & (sat < 90)
    return {
        "upper": inside & (rows < top + 0.4 * (bottom - top)),
        "lower": inside & (rows > top + 0.6 * (bottom - top)),
        "tooth": tooth,
        "tongue": ((hue < 12) | (hue > 160)) & (sat > 60) & (val > 105) & ~tooth,
        "gray": cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(float),
    }


def _share(region: np.ndarray, cls: np.ndarray) -> float:
    return float((region & cls).sum()) / max(1, int(region.sum()))


def test_open_vowel_shows_lower_teeth_and_tongue(
    portrait: F.Portrait, landmarks: np.ndarray
) -> None:
    m = _opening(_frame(portrait, Viseme.OPEN, 1.0, landmarks))
    assert _share(m["upper"], m["tooth"]) > 0.4  # upper teeth
    assert _share(m["lower"], m["tooth"]) > 0.1  # lower teeth behind the lower lip
    assert _share(m["lower"], m["tongue"]) > 0.3  # the tongue above them


def test_teeth_are_shaded_not_a_flat_band(portrait: F.Portrait, landmarks: np.ndarray) -> None:
    for viseme, openness in ((Viseme.OPEN, 1.0), (Viseme.SPREAD, 0.8)):
        m = _opening(_frame(portrait, viseme, openness, landmarks))
        teeth = m["gray"][m["upper"] & m["tooth"]]
        assert teeth.size > 30
        assert teeth.std() > 12  # gaps, arch and the lip's shadow
        assert np.percentile(teeth, 10) < 0.85 * np.percentile(teeth, 90)


def _lip_redness(frame: np.ndarray) -> float:
    """Lab a* of the lips (between the outer and inner contours) minus that of the skin around."""
    import cv2

    pts = measure_lips(frame[None]).landmarks[0]
    assert pts is not None
    outer = _masks(frame, M.outer_polygon(pts), erode=0)
    inner = _masks(frame, M.inner_polygon(pts), erode=0)
    ring = cv2.dilate(outer.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
    a = cv2.cvtColor(frame, cv2.COLOR_BGR2LAB)[..., 1].astype(float)
    return float(a[outer & ~inner].mean() - a[ring & ~outer].mean())


def test_a_smiling_portrait_closes_with_lip_coloured_lips(
    portrait: F.Portrait, landmarks: np.ndarray
) -> None:
    # A smile that shows the teeth (spread lips, mouth a little open), used as the portrait.
    smile = F.Portrait(_frame(portrait, Viseme.SPREAD, 0.8, landmarks), "smiling-portrait-test")
    closed = _frame(smile, Viseme.REST, 0.0)
    assert measure_lips(closed[None]).gap[0] < 0.04
    before, after = _lip_redness(smile.image_bgr), _lip_redness(closed)
    assert before > 3.0  # the portrait's lips are redder than its skin
    assert after > 0.7 * before  # and stay so once closed (a skin-coloured fill gave ~0.5)


def test_the_cached_interior_field_paints_what_the_direct_sum_paints(
    portrait: F.Portrait, landmarks: np.ndarray
) -> None:
    """A still portrait's interior terms are computed once over a box around the mouth and
    sliced per frame: every opening, from a sliver to the widest, is painted the same."""
    mf = M.mouth_frame(landmarks)
    lips = M.LipModel(landmarks, mf)
    cached = M.mouth_frame(landmarks)
    cached.interior_uses = 99  # past the threshold: the field is built and sliced
    tone = 1.0
    for viseme, openness in [(Viseme.MID, 0.2), (Viseme.OPEN, 0.7), (Viseme.OPEN, 1.2),
                             (Viseme.ROUND, 0.9), (Viseme.SPREAD, 0.5)]:  # fmt: skip
        w = np.zeros(len(VISEMES), np.float32)
        w[VISEMES.index(viseme)] = 1.0
        p = M.shape_params(w, openness)
        dst = landmarks.astype(np.float32).copy()
        dst[M.LIP_IDS] += mf.vec(lips.displacement(p))
        poly = M.inner_polygon(dst)
        direct, sliced = portrait.image_bgr.copy(), portrait.image_bgr.copy()
        mf.interior_uses = -99  # stays under the threshold: computed for this box alone
        M.draw_interior(direct, poly, mf, p, tone)
        M.draw_interior(sliced, poly, cached, p, tone)
        assert mf.interior is None and cached.interior is not None
        assert np.array_equal(direct, sliced), viseme
        assert not np.array_equal(direct, portrait.image_bgr)  # something was painted
