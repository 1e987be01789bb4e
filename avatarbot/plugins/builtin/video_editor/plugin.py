"""video_editor: ffmpeg-based editing tools for agents (files live under the media folder)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from avatarbot.errors import BackendUnavailable, InvalidInput
from avatarbot.plugins.base import Plugin
from avatarbot.plugins.media import find_font, has_filter, probe, run_ffmpeg
from avatarbot.tools import ToolSpec

from .extras import VideoExtrasMixin
from .subtitles import cues_from_items, drawtext_chain, parse_srt, write_srt

POSITIONS = {
    "top-left": ("10", "10"),
    "top-right": ("W-w-10", "10"),
    "bottom-left": ("10", "H-h-10"),
    "bottom-right": ("W-w-10", "H-h-10"),
    "center": ("(W-w)/2", "(H-h)/2"),
}
TEXT_POSITIONS = {
    "top-left": ("10", "10"),
    "top-right": ("w-text_w-10", "10"),
    "bottom-left": ("10", "h-text_h-10"),
    "bottom-right": ("w-text_w-10", "h-text_h-10"),
    "center": ("(w-text_w)/2", "(h-text_h)/2"),
}
_PATH = {"type": "string", "description": "file path under the media folder"}


class VideoEditorPlugin(VideoExtrasMixin, Plugin):
    def on_load(self, context) -> None:
        super().on_load(context)
        self.stats = {"runs": 0, "failures": 0}

    def get_state(self) -> dict[str, Any]:
        return {"stats": dict(self.stats)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.stats.update(state.get("stats", {}))

    # -- plumbing -------------------------------------------------------------------------
    def _encode_args(self, with_audio: bool = True) -> list[str]:
        args = ["-c:v", self.config.get("codec"), "-crf", str(self.config.get("crf"))]
        args += ["-preset", self.config.get("preset"), "-pix_fmt", "yuv420p"]
        if with_audio:
            args += ["-c:a", self.config.get("audio_codec")]
        return [*args, "-movflags", "+faststart"]

    def _run(self, args: list[str], cwd: Path | None = None) -> None:
        self.stats["runs"] += 1
        try:
            run_ffmpeg(args, timeout=self.config.get("timeout"), cwd=cwd)
        except Exception:
            self.stats["failures"] += 1
            raise

    def _io(self, input_path: str, output_path: str) -> tuple[Path, Path]:
        src = self.context.resolve_path(input_path, must_exist=True)
        dst = self.context.resolve_path(output_path)
        if src == dst:
            raise InvalidInput("output must differ from input")
        return src, dst

    def _result(self, path: Path) -> dict[str, Any]:
        return {"path": str(path), **probe(path).to_dict()}

    def _font(self) -> Path:
        font = find_font(self.config.get("font_file") or None)
        if font is None:
            raise BackendUnavailable("no TrueType font found: set video_editor font_file")
        return font

    # -- tools ----------------------------------------------------------------------------
    def trim(
        self,
        input_path: str,
        output_path: str,
        start: float = 0.0,
        end: float | None = None,
        duration: float | None = None,
    ) -> dict[str, Any]:
        src, dst = self._io(input_path, output_path)
        if end is not None and duration is None:
            duration = end - start
        if start < 0 or (duration is not None and duration <= 0):
            raise InvalidInput("trim needs start >= 0 and a positive length")
        length = ["-t", f"{duration:.3f}"] if duration is not None else []
        has_audio = probe(src).audio is not None
        self._run(
            [
                "-ss",
                f"{start:.3f}",
                "-i",
                str(src),
                *length,
                *self._encode_args(has_audio),
                str(dst),
            ]
        )
        return self._result(dst)

    def concat(
        self, input_paths: list[str], output_path: str, method: str = "filter"
    ) -> dict[str, Any]:
        """method "filter" re-encodes (any inputs); "demuxer" stream-copies (same encodings)."""
        if len(input_paths) < 2:
            raise InvalidInput("concat needs at least two videos")
        if method not in ("filter", "demuxer"):
            raise InvalidInput("method must be 'filter' or 'demuxer'")
        sources = [self.context.resolve_path(p, must_exist=True) for p in input_paths]
        dst = self.context.resolve_path(output_path)
        if method == "demuxer":
            return self.concat_copy(sources, dst)
        infos = [probe(s) for s in sources]
        first = infos[0].video
        if first is None or any(i.video is None for i in infos):
            raise InvalidInput("every input must have a video stream")
        with_audio = all(i.audio is not None for i in infos)
        fps = first.fps or 25
        chains, labels = [], []
        for n in range(len(sources)):
            # Inputs may differ in size/rate; conform them to the first so concat accepts them.
            chains.append(
                f"[{n}:v]scale={first.width}:{first.height}:force_original_aspect_ratio=decrease,"
                f"pad={first.width}:{first.height}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={fps}[v{n}]"
            )
            labels.append(f"[v{n}]")
            if with_audio:
                chains.append(f"[{n}:a]aresample=44100,aformat=channel_layouts=stereo[a{n}]")
                labels.append(f"[a{n}]")
        streams = f"v=1:a={1 if with_audio else 0}"
        outs = "[v][a]" if with_audio else "[v]"
        graph = ";".join([*chains, "".join(labels) + f"concat=n={len(sources)}:{streams}{outs}"])
        args = [a for s in sources for a in ("-i", str(s))]
        maps = ["-map", "[v]"] + (["-map", "[a]"] if with_audio else [])
        self._run(
            [*args, "-filter_complex", graph, *maps, *self._encode_args(with_audio), str(dst)]
        )
        return self._result(dst)

    def burn_subtitles(
        self,
        input_path: str,
        output_path: str,
        srt_path: str | None = None,
        subtitles: list[dict] | None = None,
    ) -> dict[str, Any]:
        src, dst = self._io(input_path, output_path)
        if srt_path:
            srt = self.context.resolve_path(srt_path, must_exist=True)
            cues = parse_srt(srt.read_text(encoding="utf-8-sig"))
        else:
            cues = cues_from_items(subtitles or [])
        renderer = self.config.get("subtitle_renderer")
        if renderer == "auto":
            renderer = "libass" if has_filter("subtitles") else "drawtext"
        has_audio = probe(src).audio is not None
        font = self._font()
        with tempfile.TemporaryDirectory() as tmp:
            # Every path inside the filter graph is a plain relative name in this folder,
            # so no user-controlled text ever needs filter-graph escaping.
            work = Path(tmp)
            (work / "fonts").mkdir()
            shutil.copy(font, work / "fonts" / "font.ttf")
            if renderer == "libass":
                write_srt(cues, work / "subs.srt")
                size = self.config.get("font_size")
                vf = f"subtitles=subs.srt:fontsdir=fonts:force_style='Fontsize={size}'"
            else:
                vf = drawtext_chain(cues, work, "fonts/font.ttf", self.config.get("font_size"))
            audio = ["-c:a", "copy"] if has_audio else []
            encode = self._encode_args(False)
            self._run(["-i", str(src), "-vf", vf, *encode, *audio, str(dst)], cwd=work)
        return {**self._result(dst), "renderer": renderer, "cues": len(cues)}

    def watermark(
        self,
        input_path: str,
        output_path: str,
        text: str | None = None,
        image_path: str | None = None,
        position: str = "bottom-right",
        opacity: float = 0.6,
    ) -> dict[str, Any]:
        src, dst = self._io(input_path, output_path)
        if position not in POSITIONS or not 0 < opacity <= 1:
            raise InvalidInput(f"position must be one of {sorted(POSITIONS)}, opacity in (0, 1]")
        if bool(text) == bool(image_path):
            raise InvalidInput("give exactly one of text or image_path")
        x, y = POSITIONS[position]
        has_audio = probe(src).audio is not None
        audio = ["-c:a", "copy"] if has_audio else []
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            if text:
                shutil.copy(self._font(), work / "font.ttf")
                (work / "mark.txt").write_text(text, encoding="utf-8")
                tx, ty = TEXT_POSITIONS[position]
                size = self.config.get("font_size")
                vf = (
                    f"drawtext=fontfile=font.ttf:textfile=mark.txt:fontsize={size}"
                    f":fontcolor=white@{opacity}:x={tx}:y={ty}"
                )
                args = ["-i", str(src), "-vf", vf]
            else:
                mark = self.context.resolve_path(image_path or "", must_exist=True)
                graph = (
                    f"[1:v]format=rgba,colorchannelmixer=aa={opacity}[m];[0:v][m]overlay={x}:{y}[v]"
                )
                args = ["-i", str(src), "-i", str(mark), "-filter_complex", graph]
                args += ["-map", "[v]"] + (["-map", "0:a"] if has_audio else [])
            self._run([*args, *self._encode_args(False), *audio, str(dst)], cwd=work)
        return self._result(dst)

    def thumbnail(self, input_path: str, output_path: str, at: float = 0.0) -> dict[str, Any]:
        src, dst = self._io(input_path, output_path)
        if dst.suffix.lower() not in (".jpg", ".jpeg", ".png", ".webp"):
            raise InvalidInput("thumbnail output must be .jpg, .png or .webp")
        info = probe(src)
        at = min(max(at, 0.0), max(info.duration - 0.05, 0.0))
        self._run(["-ss", f"{at:.3f}", "-i", str(src), "-frames:v", "1", str(dst)])
        return {"path": str(dst), "at": at}

    def info(self, path: str) -> dict[str, Any]:
        return probe(self.context.resolve_path(path, must_exist=True)).to_dict()

    def tools(self) -> list[ToolSpec]:
        io = {"input_path": _PATH, "output_path": _PATH}
        number = {"type": "number", "minimum": 0}
        cue = {
            "type": "object",
            "properties": {"start": number, "end": number, "text": {"type": "string"}},
            "required": ["start", "end", "text"],
        }
        return [
            self.tool(
                "trim",
                "Cut a video to [start, end) seconds (or start + duration); returns the new file.",
                self.trim,
                {**io, "start": number, "end": number, "duration": number},
                ["input_path", "output_path"],
            ),
            self.tool(
                "concat",
                "Join two or more videos one after another into one MP4.",
                self.concat,
                {
                    "input_paths": {"type": "array", "items": _PATH, "minItems": 2},
                    "output_path": _PATH,
                    "method": {"type": "string", "enum": ["filter", "demuxer"]},
                },
                ["input_paths", "output_path"],
            ),
            self.tool(
                "burn_subtitles",
                "Render subtitles (an .srt file or a list of cues) into the video picture.",
                self.burn_subtitles,
                {**io, "srt_path": _PATH, "subtitles": {"type": "array", "items": cue}},
                ["input_path", "output_path"],
            ),
            self.tool(
                "watermark",
                "Overlay a text or image watermark at a corner or the center.",
                self.watermark,
                {
                    **io,
                    "text": {"type": "string"},
                    "image_path": _PATH,
                    "position": {"type": "string", "enum": sorted(POSITIONS)},
                    "opacity": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                },
                ["input_path", "output_path"],
            ),
            self.tool(
                "thumbnail",
                "Save the frame at `at` seconds as a JPEG/PNG image.",
                self.thumbnail,
                {**io, "at": number},
                ["input_path", "output_path"],
            ),
            self.tool(
                "extract_audio",
                "Save a video's sound track as an audio file (.mp3/.m4a/.wav/.opus/...).",
                self.extract_audio,
                {**io, "audio_codec": {"type": "string"}},
                ["input_path", "output_path"],
            ),
            self.tool(
                "add_audio",
                "Put an audio file under a video, replacing (default) or mixing with its sound.",
                self.add_audio,
                {
                    "video_path": _PATH,
                    "audio_path": _PATH,
                    "output_path": _PATH,
                    "replace": {"type": "boolean"},
                },
                ["video_path", "audio_path", "output_path"],
            ),
            self.tool(
                "convert",
                "Re-encode a video (codec, CRF quality 0-51, fps), e.g. to shrink it.",
                self.convert_format,
                {
                    **io,
                    "codec": {"type": "string", "enum": ["libx264", "libx265", "mpeg4"]},
                    "audio_codec": {"type": "string", "enum": ["aac", "libmp3lame", "libopus"]},
                    "quality": {"type": "integer", "minimum": 0, "maximum": 51},
                    "fps": {"type": "integer", "minimum": 1, "maximum": 120},
                },
                ["input_path", "output_path"],
            ),
            self.tool(
                "info",
                "Duration, video size/fps and audio sample rate of a media file.",
                self.info,
                {"path": _PATH},
                ["path"],
            ),
        ]
