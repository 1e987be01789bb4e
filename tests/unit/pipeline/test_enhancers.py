from __future__ import annotations

import numpy as np
import pytest

from avatarbot.errors import BackendUnavailable
from avatarbot.pipeline import enhancers as E
from avatarbot.pipeline import face as F


def test_registry() -> None:
    assert E.get_enhancer("none") is None
    assert E.get_enhancer("auto").name == "detail"
    with pytest.raises(BackendUnavailable, match="gfpgan"):
        E.get_enhancer("gfpgan")  # not registered in the CPU build


def test_detail_enhancer_changes_only_the_face_region() -> None:
    portrait = F.load_portrait(None, 256)
    box = F.detect_face_box(portrait.image_bgr)
    out = E.get_enhancer("detail").enhance(portrait.image_bgr, box)
    assert out.shape == portrait.image_bgr.shape and out.dtype == np.uint8
    x, y, w, h = box
    diff = np.abs(out.astype(int) - portrait.image_bgr.astype(int))
    assert (
        diff[y + h // 4 : y + 3 * h // 4, x + w // 4 : x + 3 * w // 4].mean() > 1.0
    )  # face: sharpened
    assert diff[:, : max(1, x - w // 2)].max() == 0  # far outside the face: untouched
    # the face gets more local contrast (detail), measured as Laplacian energy
    import cv2

    def detail(img: np.ndarray) -> float:
        roi = cv2.cvtColor(img[y : y + h, x : x + w], cv2.COLOR_BGR2GRAY)
        return float(cv2.Laplacian(roi, cv2.CV_64F).var())

    assert detail(out) > detail(portrait.image_bgr)
    tiny = E.get_enhancer("detail").enhance(portrait.image_bgr, (0, 0, 4, 4))
    assert np.array_equal(tiny, portrait.image_bgr)
