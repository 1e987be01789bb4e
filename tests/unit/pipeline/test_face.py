from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from avatarbot.errors import InvalidInput
from avatarbot.pipeline import face as F


@pytest.fixture(scope="module")
def portrait() -> F.Portrait:
    return F.load_portrait(None, 512)


def test_default_portrait_has_one_face_with_478_landmarks(portrait: F.Portrait) -> None:
    h, w = portrait.image_bgr.shape[:2]
    assert max(h, w) == 512 and h % 2 == 0 and w % 2 == 0
    analysis = F.analyse_image(portrait.image_bgr)
    assert analysis.landmarks.shape == (478, 2)
    x, y, bw, bh = analysis.box
    assert x >= 0 and y >= 0 and x + bw <= w and y + bh <= h
    assert bw > 0.2 * w  # a head-and-shoulders portrait
    # mouth below the eyes, chin below the mouth
    p = analysis.landmarks
    assert p[33, 1] < p[13, 1] < p[F.CHIN, 1]
    assert F.detect_face_box(portrait.image_bgr) == analysis.box


def test_sizes_are_even_and_bounded() -> None:
    assert F.even_size(513, 601, 256) == (218, 256)
    with pytest.raises(InvalidInput):
        F.resize_to(np.zeros((100, 100, 3), np.uint8), 4000)


def test_no_face_is_invalid_input() -> None:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (300, 300, 3), dtype=np.uint8)
    with pytest.raises(InvalidInput, match="no face"):
        F.analyse_image(noise)


def test_several_faces_are_invalid_input(portrait: F.Portrait) -> None:
    pair = np.hstack([portrait.image_bgr, portrait.image_bgr])
    with pytest.raises(InvalidInput, match="several faces"):
        F.analyse_image(pair)


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 50])
def test_corrupt_file_is_invalid_input(tmp_path: Path, data: bytes) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(data)
    with pytest.raises(InvalidInput):
        F.load_portrait(bad)


def test_unsupported_format_and_missing_file(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (100, 100)).save(buf, format="GIF")
    gif = tmp_path / "a.gif"
    gif.write_bytes(buf.getvalue())
    with pytest.raises(InvalidInput, match="unsupported"):
        F.load_portrait(gif)
    with pytest.raises(InvalidInput, match="not found"):
        F.load_portrait(tmp_path / "missing.jpg")


def test_exif_rotation_is_applied(tmp_path: Path) -> None:
    upright = Image.open(F.DEFAULT_PORTRAIT)
    # Store the pixels rotated and tell viewers (EXIF 8 = rotate 90 CW to display) to undo it.
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 8
    path = tmp_path / "rotated.jpg"
    stored.save(path, format="JPEG", exif=exif.tobytes())
    loaded = F.load_portrait(path, 256)
    h, w = loaded.image_bgr.shape[:2]
    assert h > w  # portrait orientation restored
    assert F.analyse_image(loaded.image_bgr).landmarks.shape == (478, 2)


def test_webp_loads(tmp_path: Path) -> None:
    path = tmp_path / "p.webp"
    Image.open(F.DEFAULT_PORTRAIT).save(path, format="WEBP")
    assert F.load_portrait(path, 256).image_bgr.shape[0] == 256


def test_analysis_cache_memory_and_disk(tmp_path: Path, portrait: F.Portrait) -> None:
    cache = F.FaceAnalysisCache(tmp_path)
    first = cache.get(portrait)
    again = cache.get(portrait)
    assert cache.misses == 1 and again is first
    assert len(list(tmp_path.glob("*.npz"))) == 1
    fresh = F.FaceAnalysisCache(tmp_path)  # a new process: served from disk, no mediapipe
    from_disk = fresh.get(portrait)
    assert fresh.misses == 0
    np.testing.assert_allclose(from_disk.landmarks, first.landmarks)
    other_size = F.load_portrait(None, 256)
    assert other_size.key != portrait.key


def test_align_face_levels_the_eyes(portrait: F.Portrait) -> None:
    analysis = F.analyse_image(portrait.image_bgr)
    crop, m = F.align_face(portrait.image_bgr, analysis, 128)
    assert crop.shape == (128, 128, 3)
    eyes = np.array([analysis.landmarks[33], analysis.landmarks[263]])
    mapped = eyes @ m[:, :2].T + m[:, 2]
    assert abs(mapped[0, 1] - mapped[1, 1]) < 1.0
    assert F.crop_box((10, 10, 100, 100), (200, 120), 0.5) == (0, 0, 160, 120)


def test_analyse_portrait_accepts_a_path(tmp_path: Path) -> None:
    cache = F.FaceAnalysisCache(tmp_path / "cache")
    analysis = F.analyse_portrait(F.DEFAULT_PORTRAIT, cache)
    assert analysis.landmarks.shape == (478, 2) and max(analysis.size) == F.DEFAULT_SIZE
    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 200), (90, 90, 90)).save(blank)
    with pytest.raises(InvalidInput, match="no face"):
        F.analyse_portrait(blank, cache)


def test_pixel_bomb_is_invalid_input() -> None:
    buf = io.BytesIO()
    Image.new("L", (20000, 10000)).save(buf, format="PNG")  # 200 Mpx in ~200 KB
    with pytest.raises(InvalidInput, match="too many pixels"):
        F.decode_image(buf.getvalue())
