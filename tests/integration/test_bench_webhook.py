"""`avatarbot bench webhook` as typed: both servers start, every event is acknowledged, and the
table and the JSON say the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_webhook_prints_and_saves_ack_latencies(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATARBOT_")}
    done = subprocess.run(
        [sys.executable, "-m", "avatarbot", "bench", "webhook", "--requests", "15",
         "--burst", "6", "--renders", "1", "--out-dir", str(tmp_path / "results")],
        capture_output=True, text=True, env={**env, "PYTHONPATH": str(REPO)}, cwd=tmp_path,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "results" / "webhook.json").read_text())
    assert result["floor"]["n"] == result["durable"]["n"] == 15
    assert result["burst_6_during_1_renders"]["n"] == 6
    for row in ("floor", "durable", "burst_6_during_1_renders"):
        assert 0 < result[row]["p50_ms"] <= result[row]["p99_ms"]
        assert row in done.stdout
    assert result["ratio_p50"] == round(result["durable"]["p50_ms"] / result["floor"]["p50_ms"], 2)
    assert "durable / floor" in done.stdout
