"""`avatarbot render --framing` as typed: a full-body photo comes out head and shoulders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from avatarbot.pipeline import mux
from tests.helpers.avatar_sources import detected_face_widths, full_body_image, write_image

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[2]


def _render(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AVATARBOT_")},
        "PYTHONPATH": str(REPO_ROOT),
        "AVATARBOT_DATA_DIR": str(cwd / "data"),
        "AVATARBOT_CACHE_DIR": str(cwd / "cache"),
    }
    return subprocess.run(
        [sys.executable, "-m", "avatarbot", "render", "-q", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=180,
    )  # fmt: skip


def test_auto_framing_makes_the_face_a_third_of_the_frame(tmp_path: Path) -> None:
    photo = write_image(tmp_path / "standing.png", full_body_image())
    as_given = detected_face_widths([cv2.imread(str(photo))])[0]
    assert 0.17 < as_given < 0.25  # ~21 % of the width in the photo itself
    out = tmp_path / "auto.mp4"
    done = _render(["--text", "Good morning.", "--image", str(photo), "-o", str(out)], tmp_path)
    assert done.returncode == 0, done.stderr
    frames = mux.decode_frames(out)
    assert frames.shape[1:3] == (512, 512)
    widths = detected_face_widths(frames[:: max(1, len(frames) // 4)])
    assert min(widths) >= 0.33, widths


def test_unknown_framing_is_a_clear_error(tmp_path: Path) -> None:
    out = tmp_path / "x.mp4"
    done = _render(["--text", "Hi.", "--framing", "zoom", "-o", str(out)], tmp_path)
    assert done.returncode == 2
    assert "unknown framing 'zoom'" in done.stderr and "auto, full, portrait" in done.stderr
    assert not out.exists()
