"""The browser console served at `/` (plain HTML/CSS/JS modules, no build step)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"


def console_index() -> FileResponse | None:
    index = STATIC_DIR / "index.html"
    return FileResponse(index, media_type="text/html") if index.is_file() else None


def mount_console(app: FastAPI) -> None:
    """Serve the console's files under /static (the page itself is served by GET /)."""
    # check_dir=False: a wheel built without the static folder still starts (GET / then
    # falls back to the JSON answer).
    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="static")
