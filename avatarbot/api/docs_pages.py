"""/docs (Swagger UI) and /redoc served from files shipped in a wheel, not from a CDN.

FastAPI's default pages load their JavaScript from cdn.jsdelivr.net, so on an offline or
firewalled server /docs is a blank page — the first thing the README tells people to open.
The `fastapi-offline` wheel ships the same Swagger UI and ReDoc bundles; we only use its
static folder (our FastAPI app stays a plain FastAPI). Without the package the CDN pages are
served, as FastAPI would.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_PREFIX = "/docs-static"


def offline_docs_dir() -> Path | None:
    """The folder with swagger-ui-bundle.js, swagger-ui.css and redoc.standalone.js, if installed."""
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or spec.origin is None:
        return None
    static = Path(spec.origin).parent / "static"
    needed = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js")
    return static if all((static / name).is_file() for name in needed) else None


def mount_docs(app: FastAPI) -> None:
    """Add /docs, /docs/oauth2-redirect and /redoc; create the app with docs_url=redoc_url=None."""
    static = offline_docs_dir()
    kwargs: dict[str, str] = {}
    redoc_js: str | None = None
    favicon = ""
    if static is not None:
        app.mount(STATIC_PREFIX, StaticFiles(directory=static), name="docs-static")
        kwargs = {
            "swagger_js_url": f"{STATIC_PREFIX}/swagger-ui-bundle.js",
            "swagger_css_url": f"{STATIC_PREFIX}/swagger-ui.css",
            "swagger_favicon_url": f"{STATIC_PREFIX}/favicon.png",
        }
        redoc_js = f"{STATIC_PREFIX}/redoc.standalone.js"
        favicon = f"{STATIC_PREFIX}/favicon.png"
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect = "/docs/oauth2-redirect"
    title = app.title

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} - Swagger UI",
            oauth2_redirect_url=oauth2_redirect,
            **kwargs,
        )

    @app.get(oauth2_redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        extra = {"redoc_js_url": redoc_js, "redoc_favicon_url": favicon} if redoc_js else {}
        return get_redoc_html(
            openapi_url=openapi_url, title=f"{title} - ReDoc", with_google_fonts=False, **extra
        )
