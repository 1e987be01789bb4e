"""image_processor: Pillow-based image tools for agents (files live under the media folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avatarbot.errors import InvalidInput
from avatarbot.plugins.base import Plugin
from avatarbot.tools import ToolSpec

from .faces import detect_largest_face, square_around

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP"}
_PATH = {"type": "string", "description": "file path under the media folder"}


class ImageProcessorPlugin(Plugin):
    def on_load(self, context) -> None:
        super().on_load(context)
        self.processed = 0

    def get_state(self) -> dict[str, Any]:
        return {"processed": self.processed}

    def set_state(self, state: dict[str, Any]) -> None:
        self.processed = int(state.get("processed", 0))

    def _open(self, path: str):
        from PIL import Image, UnidentifiedImageError

        from avatarbot.pipeline.image_limits import check_pixels

        src = self.context.resolve_path(path, must_exist=True)
        try:
            image = Image.open(src)
            try:
                check_pixels(image)  # from the header, before decoding a pixel bomb
            except InvalidInput:
                image.close()
                raise
            image.load()
        except (UnidentifiedImageError, OSError) as exc:
            raise InvalidInput(f"{Path(path).name} is not a readable image") from exc
        return image

    def _save(self, image, output_path: str, fmt: str | None = None) -> dict[str, Any]:
        dst = self.context.resolve_path(output_path)
        fmt = (fmt or FORMATS.get(dst.suffix.lower()) or self.config.get("default_format")).upper()
        if fmt not in FORMATS.values():
            raise InvalidInput(f"format must be one of {sorted(set(FORMATS.values()))}")
        limit = self.config.get("max_size")
        if max(image.size) > limit:
            image.thumbnail((limit, limit))
        if fmt == "JPEG" and image.mode not in ("RGB", "L"):
            image = image.convert("RGB")  # JPEG has no alpha channel
        options = {"quality": self.config.get("default_quality")} if fmt in ("JPEG", "WEBP") else {}
        image.save(dst, format=fmt, **options)
        self.processed += 1
        return {"path": str(dst), "width": image.width, "height": image.height, "format": fmt}

    def resize(
        self,
        input_path: str,
        output_path: str,
        width: int,
        height: int | None = None,
        keep_aspect_ratio: bool = True,
    ) -> dict[str, Any]:
        image = self._open(input_path)
        if width <= 0 or (height is not None and height <= 0):
            raise InvalidInput("width and height must be positive")
        if keep_aspect_ratio:
            scale = min(width / image.width, (height or 10**9) / image.height)
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        else:
            size = (width, height or image.height)
        return self._save(image.resize(size), output_path)

    def crop(
        self, input_path: str, output_path: str, left: int, top: int, width: int, height: int
    ) -> dict[str, Any]:
        image = self._open(input_path)
        if left < 0 or top < 0 or width <= 0 or height <= 0:
            raise InvalidInput("crop box must have left/top >= 0 and positive size")
        if left + width > image.width or top + height > image.height:
            raise InvalidInput(f"crop box exceeds the {image.width}x{image.height} image")
        return self._save(image.crop((left, top, left + width, top + height)), output_path)

    def convert(self, input_path: str, output_path: str, format: str | None = None) -> dict:
        return self._save(self._open(input_path), output_path, format)

    def face_crop(self, input_path: str, output_path: str, size: int = 512) -> dict[str, Any]:
        import numpy as np

        image = self._open(input_path).convert("RGB")
        box = detect_largest_face(np.asarray(image))
        if box is None:
            raise InvalidInput("no face found in the image")
        left, top, side, _ = square_around(
            box, self.config.get("face_margin"), image.width, image.height
        )
        face = image.crop((left, top, left + side, top + side)).resize((size, size))
        return {**self._save(face, output_path), "face_box": list(box)}

    def enhance(
        self,
        input_path: str,
        output_path: str,
        brightness: float = 1.0,
        contrast: float = 1.0,
        sharpness: float = 1.0,
        color: float = 1.0,
    ) -> dict[str, Any]:
        """Factors: 1.0 = unchanged, <1 less, >1 more (0..4)."""
        from PIL import ImageEnhance

        image = self._open(input_path)
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        for factor, enhancer in (
            (brightness, ImageEnhance.Brightness),
            (contrast, ImageEnhance.Contrast),
            (sharpness, ImageEnhance.Sharpness),
            (color, ImageEnhance.Color),
        ):
            if not 0 <= factor <= 4:
                raise InvalidInput("enhance factors must be between 0 and 4")
            if factor != 1.0:
                image = enhancer(image).enhance(factor)
        return self._save(image, output_path)

    def apply_filter(self, input_path: str, output_path: str, filter_type: str) -> dict[str, Any]:
        from PIL import ImageFilter

        filters = {
            "BLUR": ImageFilter.BLUR,
            "SHARPEN": ImageFilter.SHARPEN,
            "SMOOTH": ImageFilter.SMOOTH,
            "EDGE_ENHANCE": ImageFilter.EDGE_ENHANCE,
            "DETAIL": ImageFilter.DETAIL,
        }
        chosen = filters.get(filter_type.upper())
        if chosen is None:
            raise InvalidInput(f"filter_type must be one of {sorted(filters)}")
        image = self._open(input_path)
        if image.mode not in ("RGB", "L", "RGBA"):
            image = image.convert("RGB")
        return self._save(image.filter(chosen), output_path)

    def get_stats(self) -> dict[str, Any]:
        return {"processed": self.processed}

    def info(self, path: str) -> dict[str, Any]:
        image = self._open(path)
        return {
            "width": image.width,
            "height": image.height,
            "mode": image.mode,
            "format": image.format,
        }

    def tools(self) -> list[ToolSpec]:
        io = {"input_path": _PATH, "output_path": _PATH}
        pixels = {"type": "integer", "minimum": 1}
        offset = {"type": "integer", "minimum": 0}
        fmt = {"type": "string", "enum": ["PNG", "JPEG", "WEBP", "BMP"]}
        return [
            self.tool(
                "resize",
                "Resize an image to fit width x height (keeping the aspect ratio by default).",
                self.resize,
                {**io, "width": pixels, "height": pixels, "keep_aspect_ratio": {"type": "boolean"}},
                ["input_path", "output_path", "width"],
            ),
            self.tool(
                "crop",
                "Cut the box (left, top, width, height) out of an image.",
                self.crop,
                {**io, "left": offset, "top": offset, "width": pixels, "height": pixels},
                ["input_path", "output_path", "left", "top", "width", "height"],
            ),
            self.tool(
                "convert",
                "Convert an image to PNG/JPEG/WEBP/BMP (from the output suffix by default).",
                self.convert,
                {**io, "format": fmt},
                ["input_path", "output_path"],
            ),
            self.tool(
                "face_crop",
                "Crop a square portrait around the largest face, resized to size x size.",
                self.face_crop,
                {**io, "size": {"type": "integer", "minimum": 32, "maximum": 4096}},
                ["input_path", "output_path"],
            ),
            self.tool(
                "enhance",
                "Adjust brightness, contrast, sharpness and color (1.0 = unchanged).",
                self.enhance,
                {
                    **io,
                    **{
                        k: {"type": "number", "minimum": 0, "maximum": 4}
                        for k in ("brightness", "contrast", "sharpness", "color")
                    },
                },
                ["input_path", "output_path"],
            ),
            self.tool(
                "filter",
                "Apply BLUR, SHARPEN, SMOOTH, EDGE_ENHANCE or DETAIL.",
                self.apply_filter,
                {
                    **io,
                    "filter_type": {
                        "type": "string",
                        "enum": ["BLUR", "SHARPEN", "SMOOTH", "EDGE_ENHANCE", "DETAIL"],
                    },
                },
                ["input_path", "output_path", "filter_type"],
            ),
            self.tool(
                "info",
                "Width, height, mode and format of an image.",
                self.info,
                {"path": _PATH},
                ["path"],
            ),
        ]
