"""Framing: the head-and-shoulders crop for small faces, `full` paste-back, `portrait`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avatarbot.errors import InvalidInput
from avatarbot.pipeline import face as F
from avatarbot.pipeline import framing as FR
from tests.helpers.avatar_sources import detected_face_widths, full_body_image, write_image


@pytest.fixture(scope="module")
def full_body(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_image(tmp_path_factory.mktemp("fb") / "full_body.png", full_body_image())


def test_crop_is_a_square_about_2_3_faces_wide_with_the_face_high() -> None:
    x0, y0, x1, y1 = FR.crop_rect((400, 200, 100, 120), (1000, 1500))
    assert x1 - x0 == y1 - y0 == round(2.3 * 110)
    assert (x0 + x1) / 2 == pytest.approx(450, abs=1)  # centred on the face sideways
    face_cy = 260
    assert face_cy - y0 < (y1 - y0) / 2  # face in the upper half: shoulders below


def test_crop_stays_inside_the_picture() -> None:
    x0, y0, x1, y1 = FR.crop_rect((0, 0, 100, 120), (300, 900))
    assert (x0, y0) == (0, 0) and x1 <= 300 and y1 <= 900
    x0, y0, x1, y1 = FR.crop_rect((150, 100, 200, 250), (400, 400))  # face too big for 2.3x
    assert (x0, y0, x1, y1) == (0, 0, 400, 400)


def test_only_small_faces_need_a_crop() -> None:
    assert FR.needs_crop((400, 100, 190, 240), (900, 1350))  # a full-body photo
    assert not FR.needs_crop((140, 110, 160, 175), (436, 512))  # the built-in portrait


def test_unknown_framing_is_a_clear_error() -> None:
    with pytest.raises(InvalidInput, match="framing"):
        FR.parse_framing("zoom")
    assert FR.parse_framing(None) is FR.Framing.AUTO


def test_auto_crops_a_full_body_photo_to_head_and_shoulders(full_body: Path) -> None:
    import cv2

    assert detected_face_widths([cv2.imread(str(full_body))])[0] < 0.25  # ~21 % as given
    framed = FR.load_framed(full_body, 512, "auto")
    assert framed.crop is not None and framed.paste is None
    assert framed.portrait.image_bgr.shape == (512, 512, 3)
    assert detected_face_widths([framed.portrait.image_bgr])[0] >= 0.33


def test_full_keeps_the_picture_and_pastes_the_crop_back(full_body: Path) -> None:
    framed = FR.load_framed(full_body, 512, "full")
    assert framed.paste is not None and framed.output_size == (342, 512)  # 900x1350 at 512
    untouched = framed.paste.compose(framed.portrait.image_bgr)
    # the crop pasted back unchanged matches the whole picture (resampling noise only)
    diff = np.abs(untouched.astype(int) - framed.paste.background.astype(int))
    assert float(diff.mean()) < 1.0
    # an animated crop shows up inside the pasted rect and nowhere else
    bright = np.full_like(framed.portrait.image_bgr, 255)
    out = framed.paste.compose(bright)
    x0, y0, x1, y1 = framed.paste.rect
    cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
    assert out[cy, cx].min() == 255
    outside = np.ones(out.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(out[outside], framed.paste.background[outside])


def test_big_faces_are_left_alone_except_in_portrait_framing() -> None:
    whole = F.load_portrait(None, 512)
    for framing in ("auto", "full"):
        framed = FR.load_framed(None, 512, framing)
        assert framed.crop is None and framed.paste is None
        assert framed.portrait.key == whole.key
        assert np.array_equal(framed.portrait.image_bgr, whole.image_bgr)
    framed = FR.load_framed(None, 512, "portrait")
    assert framed.crop is not None and framed.portrait.image_bgr.shape == (512, 512, 3)


def test_a_face_too_small_for_facemesh_is_found_and_framed(tmp_path: Path) -> None:
    body = full_body_image()
    wide = np.empty((2700, 2400, 3), np.uint8)
    wide[:] = body[5, 5]
    wide[:1350, 750:1650] = body  # the face is now ~8 % of the width
    path = write_image(tmp_path / "far.png", wide)
    with pytest.raises(InvalidInput, match="no face"):
        F.analyse_portrait(path, F.FaceAnalysisCache(None))  # FaceMesh alone misses it
    framed = FR.load_framed(path, 512, "auto")
    assert detected_face_widths([framed.portrait.image_bgr])[0] >= 0.33
    F.analyse_image(framed.portrait.image_bgr)  # and the animator finds it in the crop


def test_two_faces_are_refused(tmp_path: Path) -> None:
    body = full_body_image()
    path = write_image(tmp_path / "two.png", np.concatenate([body, body], axis=1))
    with pytest.raises(InvalidInput, match="several faces"):
        FR.load_framed(path, 512, "auto")
