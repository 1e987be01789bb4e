"""The browser console served at `/` (plain HTML/CSS/JS modules, no build step)."""

from __future__ import annotations

from pathlib import Path

from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).parent / "static"


def console_index() -> FileResponse | None:
    index = STATIC_DIR / "index.html"
    return FileResponse(index, media_type="text/html") if index.is_file() else None
