"""Seed-API extras of the video editor: audio tracks, format conversion, stream-copy concat.

A mixin for VideoEditorPlugin: it relies on the plugin's _io/_run/_result/_encode_args.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from avatarbot.errors import InvalidInput
from avatarbot.plugins.media import probe

AUDIO_CODECS = {
    ".mp3": "libmp3lame",
    ".m4a": "aac",
    ".aac": "aac",
    ".wav": "pcm_s16le",
    ".opus": "libopus",
    ".ogg": "libvorbis",
    ".flac": "flac",
}


class VideoExtrasMixin:
    def extract_audio(
        self, input_path: str, output_path: str, audio_codec: str | None = None
    ) -> dict[str, Any]:
        src, dst = self._io(input_path, output_path)  # type: ignore[attr-defined]
        if probe(src).audio is None:
            raise InvalidInput("the video has no audio track")
        codec = audio_codec or AUDIO_CODECS.get(dst.suffix.lower())
        if codec is None:
            raise InvalidInput(f"audio output must be one of {sorted(AUDIO_CODECS)}")
        self._run(["-i", str(src), "-vn", "-c:a", codec, str(dst)])  # type: ignore[attr-defined]
        return self._result(dst)  # type: ignore[attr-defined]

    def add_audio(
        self, video_path: str, audio_path: str, output_path: str, replace: bool = True
    ) -> dict[str, Any]:
        """Put an audio track under a video: replace its sound, or mix with it."""
        video, dst = self._io(video_path, output_path)  # type: ignore[attr-defined]
        audio = self.context.resolve_path(audio_path, must_exist=True)  # type: ignore[attr-defined]
        has_own_audio = probe(video).audio is not None
        codec = ["-c:v", "copy", "-c:a", self.config.get("audio_codec")]  # type: ignore[attr-defined]
        if replace or not has_own_audio:
            args = ["-i", str(video), "-i", str(audio), "-map", "0:v", "-map", "1:a", "-shortest"]
        else:
            graph = "[0:a][1:a]amix=inputs=2:duration=first[a]"
            args = ["-i", str(video), "-i", str(audio), "-filter_complex", graph]
            args += ["-map", "0:v", "-map", "[a]"]
        self._run([*args, *codec, str(dst)])  # type: ignore[attr-defined]
        return self._result(dst)  # type: ignore[attr-defined]

    def convert_format(
        self,
        input_path: str,
        output_path: str,
        codec: str | None = None,
        audio_codec: str | None = None,
        quality: int | None = None,
        fps: int | None = None,
    ) -> dict[str, Any]:
        src, dst = self._io(input_path, output_path)  # type: ignore[attr-defined]
        if quality is not None and not 0 <= quality <= 51:
            raise InvalidInput("quality (CRF) must be 0..51")
        if fps is not None and not 1 <= fps <= 120:
            raise InvalidInput("fps must be 1..120")
        has_audio = probe(src).audio is not None
        args = self._encode_args(has_audio)  # type: ignore[attr-defined]
        overrides = {"-c:v": codec, "-c:a": audio_codec, "-crf": quality}
        for flag, value in overrides.items():
            if value is not None and flag in args:
                args[args.index(flag) + 1] = str(value)
        rate = ["-r", str(fps)] if fps else []
        self._run(["-i", str(src), *rate, *args, str(dst)])  # type: ignore[attr-defined]
        return self._result(dst)  # type: ignore[attr-defined]

    def concat_copy(self, sources: list[Path], dst: Path) -> dict[str, Any]:
        """Stream-copy concat (concat demuxer): fast, needs inputs with identical encodings."""
        with tempfile.TemporaryDirectory() as tmp:
            listing = Path(tmp) / "inputs.txt"
            # The demuxer's list syntax quotes with '...'; escape quotes inside names.
            lines = ["file '" + str(s).replace("'", "'\\''") + "'" for s in sources]
            listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
            args = ["-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(dst)]
            self._run(args)  # type: ignore[attr-defined]
        return self._result(dst)  # type: ignore[attr-defined]

    def get_video_info(self, video_path: str) -> dict[str, Any]:
        return probe(self.context.resolve_path(video_path, must_exist=True)).to_dict()  # type: ignore[attr-defined]

    def get_stats(self) -> dict[str, Any]:
        return dict(self.stats)  # type: ignore[attr-defined]
