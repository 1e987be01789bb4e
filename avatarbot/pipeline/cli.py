"""`avatarbot render` and `avatarbot bench pipeline`. Heavy imports happen inside the commands.

Registered on the main app by avatarbot/cli.py via `register(app)`; also runnable on its own:
`python -m avatarbot.pipeline.cli render --text "Hello" -o out.mp4`.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import typer

from avatarbot.errors import AvatarbotError

bench_app = typer.Typer(help="Benchmarks.", no_args_is_help=True)

BENCH_TEXT_EN = (
    "Good morning everyone, this is your digital presenter with the daily summary. "
    "Sales grew by twelve percent compared with last week, and the new support bot answered "
    "most questions within a minute. Please remember the team meeting on Thursday afternoon. "
    "If you have ideas for the next release, share them in the project channel before Friday. "
)


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def render(
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the MP4."),
    text: str | None = typer.Option(None, "--text", help="Text to speak."),
    audio: Path | None = typer.Option(
        None, "--audio", help="Audio file to lip-sync instead of text."
    ),
    image: Path | None = typer.Option(
        None,
        "--image",
        help="Portrait (jpg/png/webp) or a short video of the person (mp4/mov/webm, <= 60 s, "
        "one face); default: built-in.",
    ),
    framing: str | None = typer.Option(
        None,
        "--framing",
        help="auto (crop head and shoulders when the face is small) | full | portrait "
        "(default: AVATARBOT_PIPELINE__FRAMING, auto)",
    ),
    mode: str | None = typer.Option(
        None,
        "--mode",
        help="lipsync | talking_head | enhanced_lipsync | enhanced_talking_head "
        "(default: AVATARBOT_PIPELINE__DEFAULT_MODE, talking_head)",
    ),
    voice: str | None = typer.Option(None, "--voice", help="TTS voice id."),
    language: str | None = typer.Option(
        None, "--language", help="Language (default: from the text)."
    ),
    backend: str = typer.Option(
        "auto", "--backend", help="Animator: auto | procedural | wav2lip | sadtalker"
    ),
    enhancer: str = typer.Option(
        "auto", "--enhancer", help="Enhancer for enhanced_* modes: auto | none | detail | gfpgan"
    ),
    size: int = typer.Option(512, "--size", help="Long side of the video in pixels (128-1024)."),
    max_bytes: int | None = typer.Option(
        None, "--max-bytes", help="Re-encode to fit this many bytes."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for blinks and head motion."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Render a talking-portrait MP4 from text or audio."""
    if (text is None) == (audio is None):
        _fail("give exactly one of --text or --audio")
    from tqdm import tqdm

    from avatarbot.pipeline.bootstrap import bootstrap_from_environment
    from avatarbot.pipeline.generator import VideoGenerator

    settings = bootstrap_from_environment(jobs=False)  # the same backends as the server and workers
    bar = (
        None
        if quiet
        else tqdm(
            total=100, unit="%", file=sys.stderr, bar_format="{l_bar}{bar}| {n:.0f}% {postfix}"
        )
    )

    def progress(stage: str, percent: float, message: str) -> None:
        if bar is not None:
            bar.set_description(stage)
            bar.set_postfix_str(message)
            bar.update(max(0.0, percent - bar.n))

    # The same defaults the chats use.
    mode = mode or settings.pipeline.default_mode
    framing = framing or settings.pipeline.framing
    try:
        gen = VideoGenerator(
            size=size, animator=backend, enhancer=enhancer, framing=framing, seed=seed
        )
        opts = {"mode": mode, "progress": progress, "max_bytes": max_bytes}
        if text is not None:
            result = gen.generate_from_text(
                text, image, output, voice=voice, language=language, **opts
            )
        else:
            result = gen.generate_from_audio(image, audio, output, **opts)
    except AvatarbotError as exc:
        if bar is not None:
            bar.close()
        _fail(exc.message)
        return
    if bar is not None:
        bar.close()
    t = result.timings_ms
    typer.echo(
        f"{result.path}  {result.duration:.2f} s  {result.width}x{result.height}  "
        f"{result.size_bytes / 1024:.0f} KiB  rendered in {t['total'] / 1000:.2f} s "
        f"(RTF {t['total'] / 1000 / max(result.duration, 1e-3):.2f})"
    )
    skipped = "; ".join(f"{name} skipped: {why}" for name, why in result.skipped.items())
    typer.echo(
        f"{result.mode.value}: animator {result.animator}, enhancer {result.enhancer}"
        + (f" ({skipped})" if skipped else "")
    )


def _speech_of_length(seconds: float):  # type: ignore[no-untyped-def]
    """English speech cut to exactly `seconds` (phoneme events past the cut dropped)."""
    from avatarbot.pipeline.synthesizer import VoiceSynthesizer
    from avatarbot.pipeline.types import SpeechResult

    synth = VoiceSynthesizer()
    words = BENCH_TEXT_EN
    while True:
        t0 = time.perf_counter()
        speech = synth.synthesize_speech(words, language="en")
        tts_ms = (time.perf_counter() - t0) * 1000
        if speech.duration >= seconds:
            break
        words += BENCH_TEXT_EN
    n = int(seconds * speech.sample_rate)
    kept = [p for p in speech.phonemes if p.start < seconds]
    cut = SpeechResult(
        speech.samples[:n].copy(), speech.sample_rate, kept, speech.language, speech.voice
    )
    # Scale the TTS time to the part kept, so RTF compares like with like.
    return cut, tts_ms * seconds / speech.duration


def _peak_rss_mb() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


@bench_app.command("pipeline")
def bench_pipeline(
    durations: str = typer.Option("3,10,30", help="Speech lengths in seconds, comma separated."),
    sizes: str = typer.Option("256,512", help="Video sizes (long side), comma separated."),
    mode: str = typer.Option("talking_head", help="Render mode."),
    out_dir: Path = typer.Option(Path("bench-results"), help="Where the JSON goes."),
    end_to_end: bool = typer.Option(
        True, "--end-to-end/--no-end-to-end", help="Also time a CLI render and a server task."
    ),
) -> None:
    """TTS -> MP4 timings per stage, the animate/encode and real-time ratios, peak RSS."""
    import tempfile

    from avatarbot.pipeline import bench
    from avatarbot.pipeline.bootstrap import bootstrap_from_environment
    from avatarbot.pipeline.generator import VideoGenerator

    bootstrap_from_environment(jobs=False)
    rows = []
    gen = VideoGenerator(mode=mode)
    with tempfile.TemporaryDirectory(prefix="avatarbot-bench-") as tmp:
        gen.generate_from_text("Warm up.", output_path=Path(tmp) / "warm.mp4", size=256)
        for seconds in [float(s) for s in durations.split(",") if s.strip()]:
            speech, tts_ms = _speech_of_length(seconds)
            text = bench.text_of_length(seconds) if end_to_end else ""
            for size in [int(s) for s in sizes.split(",") if s.strip()]:
                t0 = time.perf_counter()
                result = gen.generate_from_speech(
                    speech, output_path=Path(tmp) / f"b{seconds}-{size}.mp4", size=size
                )
                wall_ms = (time.perf_counter() - t0) * 1000 + tts_ms
                own, children = _peak_rss_mb()
                t = result.timings_ms
                row = {
                    "seconds": seconds, "size": size, "mode": mode,
                    "width": result.width, "height": result.height, "frames": result.n_frames,
                    "tts_ms": round(tts_ms, 1), "analyse_ms": round(t["analyse"], 1),
                    "animate_ms": round(t["animate"], 1), "enhance_ms": round(t["enhance"], 1),
                    "encode_ms": round(t["encode"], 1), "total_ms": round(wall_ms, 1),
                    "rtf": round(wall_ms / 1000 / seconds, 3),
                    "animate_fps": round(result.n_frames / max(t["animate"] / 1000, 1e-6), 1),
                    "size_bytes": result.size_bytes,
                    "peak_rss_mb": round(own, 1), "peak_rss_ffmpeg_mb": round(children, 1),
                }  # fmt: skip
                row.update(bench.animate_and_encode_alone(gen, speech, size, Path(tmp) / "a.mp4"))
                if end_to_end:
                    out = Path(tmp) / "e2e.mp4"
                    row.update(bench.cli_render(text, size, mode, out))
                    row.update(bench.server_task(text, size, mode, out, gen.face_cache))
                row.update(bench.ratios(row))
                rows.append({k: round(v, 1) if isinstance(v, float) and k.endswith("_ms") else v
                             for k, v in row.items()})  # fmt: skip
    typer.echo(bench.table(rows))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"pipeline-{time.strftime('%Y%m%d-%H%M%S')}.json"
    import os
    import platform

    meta = {
        "cpu_count": os.cpu_count(),
        "load_avg": os.getloadavg(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    typer.echo(f"wrote {path}")


def register(app: typer.Typer) -> None:
    """Add `render` and `bench pipeline` to the main CLI."""
    app.command("render")(render)
    app.add_typer(bench_app, name="bench")


standalone = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
register(standalone)

if __name__ == "__main__":
    standalone()
