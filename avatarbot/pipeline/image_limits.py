"""Image limits applied from the header, before any pixel is decoded.

A 236 kB PNG can declare 9000x9000 pixels: decoding it cost 1.4 GB of RSS. The pixel count is
read from the header (PIL opens lazily) and refused above the cap; accepted images are reduced
while loading (JPEG decodes at 1/2..1/8 scale directly) so that big photos stay cheap too.
"""

from __future__ import annotations

from typing import Any

from avatarbot.errors import InvalidInput

DEFAULT_MAX_MEGAPIXELS = 40
# The pipeline renders at most 1024 px on the long side; face analysis needs no more than twice.
LOAD_LONG_SIDE = 2048


def check_pixels(image: Any, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS) -> None:
    """InvalidInput when a (lazily opened) PIL image declares more pixels than allowed."""
    width, height = image.size
    if width * height > max_megapixels * 1_000_000:
        raise InvalidInput(
            f"the image has too many pixels ({width}x{height} = "
            f"{width * height / 1e6:.0f} megapixels; at most {max_megapixels:g})"
        )


def load_reduced(image: Any, long_side: int = LOAD_LONG_SIDE) -> Any:
    """Decode `image` at no more than `long_side` px on its long side (aspect kept)."""
    if max(image.size) > long_side:
        image.draft("RGB", (long_side, long_side))  # JPEG: scaled decode; others: no-op
    image.load()
    if max(image.size) > long_side:
        image.thumbnail((long_side, long_side))
    return image


def check_image_bytes(data: bytes, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS) -> None:
    """Header-only check of encoded image bytes (unreadable data is left to the decoder)."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            check_pixels(image, max_megapixels)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return
    except Image.DecompressionBombError as exc:
        raise InvalidInput("the image has too many pixels") from exc
