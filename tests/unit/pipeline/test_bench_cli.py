"""`avatarbot bench pipeline` as typed: the goal ratios are printed and saved, not only times."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_bench_prints_and_saves_the_ratios(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    cmd = [sys.executable, "-m", "avatarbot", "bench", "pipeline", "--durations", "1",
           "--sizes", "128", "--mode", "lipsync", "--out-dir", str(tmp_path)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    header = done.stdout.splitlines()[0].split()
    for column in ("a/e", "a/e*", "RTF", "cli", "task"):
        assert column in header
    (saved,) = tmp_path.glob("pipeline-*.json")
    (row,) = json.loads(saved.read_text())["rows"]
    for key in (
        "animate_per_encode",
        "animate_per_encode_residual",
        "rtf",
        "render_rtf",
        "task_rtf",
    ):
        assert isinstance(row[key], float) and row[key] > 0, key
    assert row["animate_per_encode"] == pytest.approx(
        row["animate_alone_ms"] / row["encode_alone_ms"], rel=0.01
    )
    assert row["cli_seconds"] == pytest.approx(1.0, abs=0.6)  # the CLI spoke about a second
