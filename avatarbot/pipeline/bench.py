"""Measurements behind `avatarbot bench pipeline`: stage times and the ratios the goals are set in.

Per speech length and size, side by side in one process:
- the in-process render (frames streamed to ffmpeg while the next ones are drawn), with the
  generator's own split: animate time and the encode time left over after the overlap;
- the same frames animated alone and encoded alone, so animate/encode compares the two costs
  rather than what the overlap leaves;
- `render_rtf`: a CLI `render --text` as a user types it, in a fresh process, wall time over the
  video's duration (interpreter start, imports, TTS, analysis, animation, encoding);
- `task_rtf`: what a server task does in a warm process (new VideoGenerator, text -> MP4 + cover).

The box these run on is often shared, so the ratios (not the raw times) are what to compare; on
a loaded box the CPU-time ratios (`*_cpu_*`: this process's CPU time for animation, ffmpeg's and the
CLI process tree's from their rusage) hold steadier than wall times.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

BENCH_TEXT_EN = (
    "Good morning everyone, this is your digital presenter with the daily summary. "
    "Sales grew by twelve percent compared with last week, and the new support bot answered "
    "most questions within a minute. Please remember the team meeting on Thursday afternoon. "
    "If you have ideas for the next release, share them in the project channel before Friday. "
)


def text_of_length(seconds: float) -> str:
    """Words of the bench text (repeated as needed) that espeak speaks in about `seconds`."""
    from avatarbot.pipeline.synthesizer import VoiceSynthesizer

    words = BENCH_TEXT_EN.split()
    speech = VoiceSynthesizer().synthesize_speech(" ".join(words), language="en")
    per_word = speech.duration / len(words)
    n = max(3, round(seconds / per_word))
    out = (words * (n // len(words) + 1))[:n]
    return " ".join(out).rstrip(",") + "."


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def animate_and_encode_alone(gen: Any, speech: Any, size: int, out: Path) -> dict[str, float]:
    """Animate every frame into memory, then encode them, each timed on its own."""
    from avatarbot.pipeline import face as F
    from avatarbot.pipeline import mux
    from avatarbot.pipeline.animators import get_animator
    from avatarbot.pipeline.types import FPS, AnimationJob
    from avatarbot.pipeline.visemes import mouth_track

    portrait = F.load_portrait(None, size)
    analysis = F.analyse_portrait(portrait, gen.face_cache)
    track = mouth_track(speech, FPS)
    anim = get_animator(gen.animator_name)
    job = AnimationJob(portrait.image_bgr, speech, track, gen.mode, FPS, portrait.key, gen.seed)
    t0, c0, k0 = time.perf_counter(), time.process_time(), _children_cpu_s()
    frames = [np.ascontiguousarray(f) for f in anim.animate(job, landmarks=analysis.landmarks)]
    animate_ms = (time.perf_counter() - t0) * 1000
    # with the frame helper (pipeline/frame_farm.py), its CPU too: it is reaped by now
    animate_cpu_ms = (time.process_time() - c0 + _children_cpu_s() - k0) * 1000
    h, w = portrait.image_bgr.shape[:2]
    t0, c0, k0 = time.perf_counter(), time.process_time(), _children_cpu_s()
    mux.encode_frames(
        iter(frames), speech.samples, speech.sample_rate, out,
        width=w, height=h, n_frames=len(frames),
    )  # fmt: skip
    encode_ms = (time.perf_counter() - t0) * 1000
    encode_cpu_ms = (time.process_time() - c0 + _children_cpu_s() - k0) * 1000
    out.unlink(missing_ok=True)
    return {
        "animate_alone_ms": animate_ms, "encode_alone_ms": encode_ms,
        "animate_cpu_ms": animate_cpu_ms, "encode_cpu_ms": encode_cpu_ms,
    }  # fmt: skip


def cli_render(text: str, size: int, mode: str, out: Path) -> dict[str, float]:
    """`avatarbot render --text ...` in a fresh interpreter: wall time and the video's length."""
    from avatarbot.pipeline.mux import probe

    cmd = [sys.executable, "-m", "avatarbot", "render", "--text", text, "-o", str(out),
           "--size", str(size), "--mode", mode, "-q"]  # fmt: skip
    t0, k0 = time.perf_counter(), _children_cpu_s()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    wall = time.perf_counter() - t0
    cpu = _children_cpu_s() - k0  # the CLI and its ffmpeg
    if done.returncode != 0:
        raise RuntimeError(f"render failed: {done.stderr[-500:]}")
    duration = probe(out).duration
    out.unlink(missing_ok=True)
    return {"cli_render_ms": wall * 1000, "cli_cpu_ms": cpu * 1000, "cli_seconds": duration}


def server_task(text: str, size: int, mode: str, out: Path, face_cache: Any) -> dict[str, float]:
    """What `run_video_generation` does for a text task in a warm worker: a new generator, the
    render, the cover JPEG."""
    from avatarbot.pipeline.generator import VideoGenerator
    from avatarbot.pipeline.mux import extract_cover

    t0 = time.perf_counter()
    gen = VideoGenerator(mode=mode, size=size, face_cache=face_cache)
    try:
        result = gen.generate_from_text(text, None, out)
    finally:
        gen.cleanup()
    out.with_suffix(".jpg").write_bytes(result.cover_jpeg or extract_cover(out))
    wall = time.perf_counter() - t0
    out.unlink(missing_ok=True)
    out.with_suffix(".jpg").unlink(missing_ok=True)
    return {"task_ms": wall * 1000, "task_seconds": result.duration}


def ratios(row: dict[str, Any]) -> dict[str, float | None]:
    """The goal ratios of one bench row (None where a measurement was skipped)."""

    def div(a: str, b: str, scale: float = 1.0) -> float | None:
        if row.get(a) is None or not row.get(b):
            return None
        return round(float(row[a]) * scale / float(row[b]), 3)

    return {
        "animate_per_encode": div("animate_alone_ms", "encode_alone_ms"),
        "animate_per_encode_residual": div("animate_ms", "encode_ms"),
        "animate_per_encode_cpu": div("animate_cpu_ms", "encode_cpu_ms"),
        "rtf": div("total_ms", "seconds", 1e-3),
        "render_rtf": div("cli_render_ms", "cli_seconds", 1e-3),
        "render_cpu_rtf": div("cli_cpu_ms", "cli_seconds", 1e-3),
        "task_rtf": div("task_ms", "task_seconds", 1e-3),
    }


def table(rows: list[dict[str, Any]]) -> str:
    cols = [
        ("speech", "seconds", "{:>5.0f}s"), ("size", "size", "{:>5}"),
        ("tts", "tts_ms", "{:>5.0f}"), ("animate", "animate_ms", "{:>7.0f}"),
        ("encode", "encode_ms", "{:>6.0f}"), ("total", "total_ms", "{:>6.0f}"),
        ("anim1", "animate_alone_ms", "{:>6.0f}"), ("enc1", "encode_alone_ms", "{:>6.0f}"),
        ("a/e", "animate_per_encode", "{:>5.2f}"), ("a/e*", "animate_per_encode_residual", "{:>5.2f}"),
        ("a/e cpu", "animate_per_encode_cpu", "{:>7.2f}"),
        ("RTF", "rtf", "{:>5.2f}"), ("cli RTF", "render_rtf", "{:>7.2f}"),
        ("cli cpu", "render_cpu_rtf", "{:>7.2f}"),
        ("task RTF", "task_rtf", "{:>8.2f}"), ("fps", "animate_fps", "{:>5.0f}"),
        ("RSS", "peak_rss_mb", "{:>5.0f}"),
    ]  # fmt: skip
    widths = [len(fmt.format(0)) for _, _, fmt in cols]
    lines = [" ".join(f"{name:>{wd}}" for (name, _, _), wd in zip(cols, widths, strict=True))]
    for r in rows:
        cells = []
        for (_, key, fmt), wd in zip(cols, widths, strict=True):
            value = r.get(key)
            cells.append("-".rjust(wd) if value is None else fmt.format(value))
        lines.append(" ".join(cells))
    lines.append(
        "anim1/enc1: frames animated alone, then encoded alone; a/e = anim1/enc1 (a/e cpu: the\n"
        "same in CPU time); a/e* = animate / the encode time left after the overlap; RTF: the\n"
        "in-process render / speech length; cli RTF: `avatarbot render` wall time / video length\n"
        "(cli cpu: its CPU time / length); task RTF: a server task in a warm process / length"
    )
    return "\n".join(lines)
