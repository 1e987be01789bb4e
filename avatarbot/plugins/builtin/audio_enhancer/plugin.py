"""audio_enhancer: speech clean-up tools.

Normalize/denoise/trim use the pipeline's AudioPreprocessor (the same clean-up voice references
get). EQ is ffmpeg's `equalizer` (two-pole peaking filter per band).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avatarbot.errors import InvalidInput
from avatarbot.plugins.base import Plugin
from avatarbot.plugins.media import probe, run_ffmpeg
from avatarbot.tools import ToolSpec

PRESETS: dict[str, list[dict[str, float]]] = {
    # Presence boost and mud cut: the usual "clearer voice" curve.
    "voice": [
        {"frequency": 120, "gain_db": -4, "width_q": 0.8},
        {"frequency": 3000, "gain_db": 4, "width_q": 1.0},
    ],
    "bass_boost": [{"frequency": 100, "gain_db": 6, "width_q": 0.7}],
    "treble_boost": [{"frequency": 8000, "gain_db": 6, "width_q": 0.7}],
}
_PATH = {"type": "string", "description": "file path under the media folder"}


class AudioEnhancerPlugin(Plugin):
    def on_load(self, context) -> None:
        super().on_load(context)
        self.stats = {"processed": 0}

    def get_state(self) -> dict[str, Any]:
        return {"stats": dict(self.stats)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.stats.update(state.get("stats", {}))

    backend = "preprocessor"  # named in answers and stats: which engine cleaned the audio

    def get_stats(self) -> dict[str, Any]:
        return {**self.stats, "backend": self.backend}

    def _io(self, input_path: str, output_path: str) -> tuple[Path, Path]:
        src = self.context.resolve_path(input_path, must_exist=True)
        dst = self.context.resolve_path(output_path)
        if src == dst:
            raise InvalidInput("output must differ from input")
        return src, dst

    def _ffmpeg(self, src: Path, dst: Path, audio_filter: str) -> None:
        rate = str(self.config.get("sample_rate"))
        args = ["-i", str(src), "-vn", "-af", audio_filter, "-ac", "1", "-ar", rate, str(dst)]
        run_ffmpeg(args, timeout=self.config.get("timeout"))

    def _done(self, dst: Path, **extra: Any) -> dict[str, Any]:
        self.stats["processed"] += 1
        info = probe(dst)
        return {
            "path": str(dst),
            "duration": round(info.duration, 3),
            "backend": self.backend,
            **extra,
        }

    def _preprocess(self, src: Path, dst: Path, **options: Any) -> dict[str, Any]:
        from avatarbot.pipeline.audio import AudioPreprocessor  # numpy/scipy: on first use

        pre = AudioPreprocessor(sample_rate=self.config.get("sample_rate"))
        _out, quality = pre.preprocess(src, dst, **options)
        return self._done(dst, quality=quality)

    # -- tools ----------------------------------------------------------------------------
    def normalize(self, input_path: str, output_path: str, target_db: float | None = None) -> dict:
        src, dst = self._io(input_path, output_path)
        target = self.config.get("target_db") if target_db is None else float(target_db)
        if not -60 <= target <= -3:
            raise InvalidInput("target_db must be between -60 and -3")
        return self._preprocess(
            src, dst, denoise=False, trim=False, normalize=True, target_db=target
        )

    def denoise(self, input_path: str, output_path: str, strength: float | None = None) -> dict:
        src, dst = self._io(input_path, output_path)
        level = self.config.get("noise_reduce_strength") if strength is None else float(strength)
        if not 0 <= level <= 1:
            raise InvalidInput("strength must be between 0 and 1")
        return self._preprocess(
            src, dst, denoise=True, trim=False, normalize=False, noise_reduce_strength=level
        )

    def equalize(
        self,
        input_path: str,
        output_path: str,
        bands: list[dict[str, float]] | None = None,
        preset: str | None = None,
    ) -> dict:
        src, dst = self._io(input_path, output_path)
        if preset:
            if preset not in PRESETS:
                raise InvalidInput(f"preset must be one of {sorted(PRESETS)}")
            bands = PRESETS[preset]
        if not bands:
            raise InvalidInput("give bands or a preset")
        filters = []
        for band in bands:
            try:
                freq, gain = float(band["frequency"]), float(band["gain_db"])
                width = float(band.get("width_q", 1.0))
            except (KeyError, TypeError, ValueError) as exc:
                raise InvalidInput(
                    "each band needs frequency and gain_db (width_q optional)"
                ) from exc
            if not (20 <= freq <= 20000 and -24 <= gain <= 24 and 0.1 <= width <= 10):
                raise InvalidInput("band out of range: 20-20000 Hz, ±24 dB, Q 0.1-10")
            filters.append(f"equalizer=f={freq:g}:t=q:w={width:g}:g={gain:g}")
        # Boosts can clip: the limiter keeps peaks under full scale.
        self._ffmpeg(src, dst, ",".join([*filters, "alimiter=limit=0.97"]))
        return self._done(dst, bands=len(filters))

    def enhance(
        self,
        input_path: str,
        output_path: str,
        denoise: bool = True,
        normalize: bool | None = None,
        trim_silence: bool = True,
        noise_strength: float | None = None,
        target_db: float | None = None,
    ) -> dict:
        src, dst = self._io(input_path, output_path)
        normalize = self.config.get("normalize") if normalize is None else normalize
        strength = (
            self.config.get("noise_reduce_strength") if noise_strength is None else noise_strength
        )
        target = self.config.get("target_db") if target_db is None else target_db
        return self._preprocess(
            src,
            dst,
            denoise=denoise,
            trim=trim_silence,
            normalize=normalize,
            noise_reduce_strength=strength,
            target_db=target,
        )

    def tools(self) -> list[ToolSpec]:
        io = {"input_path": _PATH, "output_path": _PATH}
        band = {
            "type": "object",
            "properties": {
                "frequency": {"type": "number", "minimum": 20, "maximum": 20000},
                "gain_db": {"type": "number", "minimum": -24, "maximum": 24},
                "width_q": {"type": "number", "minimum": 0.1, "maximum": 10},
            },
            "required": ["frequency", "gain_db"],
        }
        db = {"type": "number", "minimum": -60, "maximum": -3}
        unit = {"type": "number", "minimum": 0, "maximum": 1}
        required = ["input_path", "output_path"]
        return [
            self.tool(
                "normalize",
                "Scale speech to target_db dBFS loudness (peaks limited).",
                self.normalize,
                {**io, "target_db": db},
                required,
            ),
            self.tool(
                "denoise",
                "Reduce steady background noise (strength 0..1).",
                self.denoise,
                {**io, "strength": unit},
                required,
            ),
            self.tool(
                "equalize",
                "Boost or cut frequency bands, or apply a preset (voice, bass_boost, treble_boost).",
                self.equalize,
                {
                    **io,
                    "bands": {"type": "array", "items": band},
                    "preset": {"type": "string", "enum": sorted(PRESETS)},
                },
                required,
            ),
            self.tool(
                "enhance",
                "Denoise, trim leading/trailing silence and normalize in one pass.",
                self.enhance,
                {
                    **io,
                    "denoise": {"type": "boolean"},
                    "normalize": {"type": "boolean"},
                    "trim_silence": {"type": "boolean"},
                    "noise_strength": unit,
                    "target_db": db,
                },
                required,
            ),
        ]
