"""The console's server side: the page at /, its static files, and GET /auth/status."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from avatarbot.web import STATIC_DIR
from tests.conftest import make_settings, register_and_login


async def test_root_serves_the_console_to_browsers_and_json_to_clients(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/js/main.js">' in page.text
    answer = await client.get("/", headers={"Accept": "application/json"})
    assert answer.json()["name"] == "avatarbot"


async def test_every_file_the_page_references_is_served(client: httpx.AsyncClient) -> None:
    index = (STATIC_DIR / "index.html").read_text()
    referenced = set(re.findall(r'(?:src|href)="(/static/[^"]+)"', index))
    # ES module imports between the console's own scripts.
    for script in (STATIC_DIR / "js").rglob("*.js"):
        for target in re.findall(
            r'from "(\.{1,2}/[^"]+)"|import\("(\.{1,2}/[^"]+)"\)', script.read_text()
        ):
            rel = next(t for t in target if t)
            path = (script.parent / rel).resolve().relative_to(STATIC_DIR.resolve())
            referenced.add(f"/static/{path.as_posix()}")
    assert len(referenced) > 15
    for url in sorted(referenced):
        r = await client.get(url)
        assert r.status_code == 200, url
    js = await client.get("/static/js/main.js")
    assert "javascript" in js.headers["content-type"]


async def test_static_files_cannot_escape_the_folder(client: httpx.AsyncClient) -> None:
    r = await client.get("/static/../../config.py")
    assert r.status_code == 404
    r = await client.get("/static/%2e%2e/__init__.py")
    assert r.status_code == 404


async def test_auth_status_reports_first_run_then_closed_registration(
    client: httpx.AsyncClient,
) -> None:
    first = await client.get("/api/v1/auth/status")
    assert first.status_code == 200
    assert first.json() == {"has_users": False, "open_registration": True}
    await register_and_login(client)
    after = await client.get("/api/v1/auth/status")
    assert after.json() == {"has_users": True, "open_registration": False}


async def test_auth_status_shows_open_registration(tmp_path: Path) -> None:
    from avatarbot.app import create_app

    app = create_app(
        make_settings(tmp_path, auth={"secret_key": "k" * 40, "open_registration": True})
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            await register_and_login(c)
            r = await c.get("/api/v1/auth/status")
    assert r.json() == {"has_users": True, "open_registration": True}
