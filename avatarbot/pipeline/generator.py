"""VideoGenerator: text or audio + portrait -> talking-head MP4 (seed API, CPU by default).

Stages and their share of the progress bar: tts (or audio) 0-10, analyse 10-15, then animate,
enhance and encode run together frame by frame 15-97 (frames go to ffmpeg while the next ones are
drawn), encode finishes 97-100. `cancel_check` is polled before every frame; a cancelled render
raises Cancelled and leaves no output file.
"""

from __future__ import annotations

import inspect
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avatarbot.errors import Cancelled, InvalidInput
from avatarbot.pipeline import face as F
from avatarbot.pipeline.types import (
    FPS,
    AnimationJob,
    Animator,
    CancelCheck,
    Enhancer,
    Mode,
    ProgressCallback,
    SpeechResult,
)

MAX_TEXT_CHARS = 5000
MAX_SECONDS = 300.0


@dataclass
class GenerationResult:
    path: Path
    duration: float
    size_bytes: int
    width: int
    height: int
    n_frames: int
    mode: Mode
    animator: str
    enhancer: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    reencoded: bool = False
    skipped: dict[str, str] = field(default_factory=dict)  # better backend -> why not used
    # JPEG of the middle frame, taken while rendering (what `mux.extract_cover` would decode
    # back out of the MP4, without another ffmpeg run); None when not taken.
    cover_jpeg: bytes | None = None

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "duration": round(self.duration, 3),
            "size_bytes": self.size_bytes,
            "width": self.width,
            "height": self.height,
            "n_frames": self.n_frames,
            "mode": self.mode.value,
            "animator": self.animator,
            "enhancer": self.enhancer,
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
            "reencoded": self.reencoded,
            "skipped_backends": dict(self.skipped),
        }


def _parse_mode(mode: str | Mode) -> Mode:
    try:
        return Mode(mode)
    except ValueError:
        choices = ", ".join(m.value for m in Mode)
        raise InvalidInput(f"unknown mode {mode!r}; choose one of: {choices}") from None


class VideoGenerator:
    """Orchestrates TTS -> visemes -> face analysis -> animator -> enhancer -> mux."""

    def __init__(
        self,
        device: str = "cpu",
        mode: str | Mode = Mode.LIPSYNC,
        voice_config: dict[str, Any] | None = None,
        wav2lip_config: dict[str, Any] | None = None,
        gfpgan_config: dict[str, Any] | None = None,
        sadtalker_config: dict[str, Any] | None = None,
        *,
        size: int = F.DEFAULT_SIZE,
        animator: str = "auto",
        enhancer: str = "auto",
        framing: str = "auto",
        output_dir: str | os.PathLike[str] | None = None,
        face_cache: F.FaceAnalysisCache | None = None,
        seed: int = 0,
        max_text_chars: int = MAX_TEXT_CHARS,
    ) -> None:
        self.device = device
        self.mode = _parse_mode(mode)
        self.voice_config = dict(voice_config or {})
        # Neural backends read their configs when they register; kept for the seed API.
        self.backend_configs = {
            "wav2lip": dict(wav2lip_config or {}),
            "gfpgan": dict(gfpgan_config or {}),
            "sadtalker": dict(sadtalker_config or {}),
        }
        self.size = size
        self.animator_name = animator
        self.enhancer_name = enhancer
        self.framing = framing
        self.output_dir = (
            Path(output_dir) if output_dir else Path(tempfile.gettempdir()) / "avatarbot-videos"
        )
        self.face_cache = face_cache or F.FaceAnalysisCache(F.default_cache_dir())
        self.seed = seed
        self.max_text_chars = max_text_chars
        self._synth: Any = None

    # -- public API ----------------------------------------------------------------------------

    def generate_from_text(
        self,
        text: str,
        image_path: str | os.PathLike[str] | None = None,
        output_path: str | os.PathLike[str] | None = None,
        speaker_wav: str | os.PathLike[str] | None = None,
        *,
        mode: str | Mode | None = None,
        voice: str | None = None,
        language: str | None = None,
        speed: float = 1.0,
        pitch: float = 1.0,
        **render: Any,
    ) -> GenerationResult:
        cleaned = (text or "").strip()
        if not cleaned:
            raise InvalidInput("the text to speak is empty")
        if len(cleaned) > self.max_text_chars:
            raise InvalidInput(
                f"the text is too long ({len(cleaned)} characters; the limit is {self.max_text_chars})"
            )
        progress = render.get("progress")
        # A bad portrait fails before any speech is synthesised.
        portrait = self._load_source(image_path, render)
        _report(progress, "tts", 0.0, "synthesising speech")
        t0 = time.perf_counter()
        speech = self._synthesizer().synthesize_speech(
            cleaned,
            voice=voice,
            language=language,
            speed=speed,
            pitch=pitch,
            speaker_wav=speaker_wav,
        )
        tts_ms = (time.perf_counter() - t0) * 1000
        if speech.duration > MAX_SECONDS:
            raise InvalidInput(
                f"the speech would last {speech.duration:.0f} s; the limit is {MAX_SECONDS:.0f} s"
            )
        _report(progress, "tts", 10.0, f"speech ready ({speech.duration:.1f} s)")
        return self._render(speech, portrait, output_path, mode, {"tts": tts_ms}, **render)

    def generate_from_audio(
        self,
        image_path: str | os.PathLike[str] | None = None,
        audio_path: str | os.PathLike[str] | None = None,
        output_path: str | os.PathLike[str] | None = None,
        *,
        mode: str | Mode | None = None,
        **render: Any,
    ) -> GenerationResult:
        from avatarbot.pipeline.audio import AudioPreprocessor

        if audio_path is None:
            raise InvalidInput("an audio file is required")
        progress = render.get("progress")
        portrait = self._load_source(image_path, render)
        _report(progress, "audio", 0.0, "loading audio")
        t0 = time.perf_counter()
        pre = AudioPreprocessor(sample_rate=24000, max_seconds=MAX_SECONDS)
        samples, rate = pre.load_audio(audio_path)
        if samples.size == 0 or float(np.abs(samples).max(initial=0.0)) < 1e-4:
            raise InvalidInput("the audio is empty or silent")
        speech = SpeechResult(samples=samples.astype(np.float32), sample_rate=rate)
        _report(progress, "audio", 10.0, f"audio ready ({speech.duration:.1f} s)")
        timings = {"audio": (time.perf_counter() - t0) * 1000}
        return self._render(speech, portrait, output_path, mode, timings, **render)

    def generate_from_speech(
        self,
        speech: SpeechResult,
        image_path: str | os.PathLike[str] | None = None,
        output_path: str | os.PathLike[str] | None = None,
        *,
        mode: str | Mode | None = None,
        **render: Any,
    ) -> GenerationResult:
        """Render already synthesised speech (used by the benchmark and tests)."""
        portrait = self._load_source(image_path, render)
        return self._render(speech, portrait, output_path, mode, {}, **render)

    def cleanup(self) -> None:
        if self._synth is not None:
            self._synth.cleanup()
            self._synth = None

    # -- internals -----------------------------------------------------------------------------

    def _load_source(
        self, image_path: str | os.PathLike[str] | None, render: dict[str, Any]
    ) -> Any:
        """A framed still portrait or a video clip (video_source.py), checked before any TTS."""
        from avatarbot.pipeline.video_source import load_source

        size = render.get("size") or self.size
        return load_source(image_path, size, render.get("framing") or self.framing, self.face_cache)

    def _synthesizer(self) -> Any:
        if self._synth is None:
            from avatarbot.pipeline.synthesizer import VoiceSynthesizer

            self._synth = VoiceSynthesizer(**self.voice_config)
        return self._synth

    def _render(
        self,
        speech: SpeechResult,
        portrait: Any,  # framing.FramedPortrait | video_source.VideoSource
        output_path: str | os.PathLike[str] | None,
        mode: str | Mode | None,
        timings: dict[str, float],
        *,
        size: int | None = None,
        animator: str | None = None,
        enhancer: str | None = None,
        max_bytes: int | None = None,
        framing: str | None = None,
        progress: ProgressCallback | None = None,
        cancel_check: CancelCheck | None = None,
    ) -> GenerationResult:
        from avatarbot.pipeline import mux
        from avatarbot.pipeline.animators import get_animator
        from avatarbot.pipeline.backend_choice import choose_backends
        from avatarbot.pipeline.enhancers import get_enhancer
        from avatarbot.pipeline.visemes import mouth_track

        started = time.perf_counter() - sum(timings.values()) / 1000
        the_mode = _parse_mode(mode or self.mode)
        _check(cancel_check)
        _report(progress, "analyse", 10.0, "analysing the portrait")
        t0 = time.perf_counter()
        del size, framing  # already applied when the portrait was loaded
        from avatarbot.pipeline.video_source import VideoSource

        video = isinstance(portrait, VideoSource)
        paste = None if video else portrait.paste
        if not video:
            portrait = portrait.portrait
            analysis = F.analyse_portrait(portrait, self.face_cache)
        track = mouth_track(speech, FPS)
        timings["analyse"] = (time.perf_counter() - t0) * 1000
        _report(progress, "analyse", 15.0, "portrait ready")

        # The mode picks the backends (backend_choice's table); named ones are used as asked.
        choice = choose_backends(
            the_mode, animator or self.animator_name, enhancer or self.enhancer_name
        )
        anim: Animator = get_animator(choice.animator)
        enh: Enhancer | None = get_enhancer(choice.enhancer) if the_mode.enhanced else None
        n = track.n_frames
        if video:
            from avatarbot.pipeline.animators.video_loop import animate_video

            w, h = portrait.size
            looped = animate_video(portrait, track, speech, anim)
        else:
            job = AnimationJob(
                portrait.image_bgr, speech, track, the_mode, FPS, portrait.key, self.seed
            )
            h, w = portrait.image_bgr.shape[:2]
            if paste is not None:
                w, h = paste.size
        out = (
            Path(output_path)
            if output_path
            else self.output_dir / f"avatar-{uuid.uuid4().hex[:12]}.mp4"
        )
        if out.suffix.lower() != ".mp4":
            raise InvalidInput("the output file must end in .mp4")
        spent = {"animate": 0.0, "enhance": 0.0}
        cover: list[bytes] = []

        def frames() -> Iterator[np.ndarray]:
            if video:
                source: Any = looped
            else:
                params = inspect.signature(anim.animate).parameters
                source = (
                    anim.animate(job, landmarks=analysis.landmarks)
                    if "landmarks" in params
                    else anim.animate(job)
                )
                source = ((frame, analysis.box) for frame in source)
            it = iter(source)
            for i in range(n):
                t = time.perf_counter()
                try:
                    frame, box = next(it)
                except StopIteration:
                    raise InvalidInput(f"animator {anim.name} produced {i} of {n} frames") from None
                t1 = time.perf_counter()
                spent["animate"] += t1 - t
                if enh is not None:
                    frame = enh.enhance(frame, box)
                    spent["enhance"] += time.perf_counter() - t1
                if paste is not None:  # framing `full`: the animated crop back into the picture
                    t2 = time.perf_counter()
                    frame = paste.compose(frame)
                    spent["animate"] += time.perf_counter() - t2
                if i == n // 2:
                    cover.append(_jpeg(frame))
                if i % 5 == 0 or i == n - 1:
                    stage = "enhance" if enh is not None else "animate"
                    _report(progress, stage, 15.0 + 82.0 * (i + 1) / n, f"frame {i + 1}/{n}")
                yield frame

        t0 = time.perf_counter()
        try:
            result = mux.encode_frames(
                frames(), speech.samples, speech.sample_rate, out,
                width=w, height=h, n_frames=n, max_bytes=max_bytes, cancel_check=cancel_check,
            )  # fmt: skip
        except BaseException:
            out.unlink(missing_ok=True)
            raise
        loop_ms = (time.perf_counter() - t0) * 1000
        timings["animate"] = spent["animate"] * 1000
        timings["enhance"] = spent["enhance"] * 1000
        # Encoding overlaps drawing; what is left is the time ffmpeg needed beyond the drawing.
        timings["encode"] = max(0.0, loop_ms - timings["animate"] - timings["enhance"])
        timings["total"] = (time.perf_counter() - started) * 1000
        _report(progress, "encode", 100.0, "video ready")
        return GenerationResult(
            path=result.path,
            duration=n / FPS,
            size_bytes=result.size_bytes,
            width=w,
            height=h,
            n_frames=n,
            mode=the_mode,
            animator="procedural" if video and anim.name != "wav2lip" else anim.name,
            enhancer=enh.name if enh is not None else "none",
            timings_ms=timings,
            reencoded=result.reencoded,
            skipped=choice.skipped,
            cover_jpeg=cover[0] if cover else None,
        )


def _jpeg(frame: np.ndarray) -> bytes:
    import cv2

    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 88])
    return data.tobytes() if ok else b""


def _report(progress: ProgressCallback | None, stage: str, percent: float, message: str) -> None:
    if progress is not None:
        progress(stage, float(min(100.0, max(0.0, percent))), message)


def _check(cancel_check: CancelCheck | None) -> None:
    if cancel_check is not None and cancel_check():
        raise Cancelled("the render was cancelled")
