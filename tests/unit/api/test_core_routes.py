from __future__ import annotations

import subprocess
import sys

import httpx


async def test_root_json_and_health(client: httpx.AsyncClient) -> None:
    r = await client.get("/", headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.json()["name"] == "avatarbot"
    h = await client.get("/health")
    assert h.status_code == 200
    comps = h.json()["components"]
    assert comps["database"]["status"] == "ok"
    assert comps["redis"]["status"] == "disabled"
    assert comps["channels"]["feishu"]["status"] == "disabled"
    assert comps["channels"]["wecom"]["status"] == "disabled"
    # No model files here: every neural backend says what it lacks; the CPU default serves.
    neural = comps["pipeline"]["neural"]
    assert neural["wav2lip"].startswith("unavailable: missing models/wav2lip/")
    assert neural["gfpgan"].startswith("unavailable: missing models/gfpgan/GFPGANv1.4.pth")
    assert comps["pipeline"]["default"]["animator"] == "procedural"


async def test_request_id_and_metrics(client: httpx.AsyncClient) -> None:
    r = await client.get("/health", headers={"X-Request-ID": "abc123"})
    assert r.headers["x-request-id"] == "abc123"
    r = await client.get("/health", headers={"X-Request-ID": "evil\nvalue"})
    assert r.headers["x-request-id"] != "evil\nvalue"
    m = await client.get("/metrics")
    assert m.status_code == 200
    assert 'avatarbot_http_requests_total{method="GET",route="/health",status="200"}' in m.text
    assert "avatarbot_http_request_duration_seconds_bucket" in m.text


async def test_docs_and_openapi(client: httpx.AsyncClient) -> None:
    assert (await client.get("/docs")).status_code == 200
    assert (await client.get("/redoc")).status_code == 200
    spec = (await client.get("/openapi.json")).json()
    assert "/api/v1/auth/login" in spec["paths"]


async def test_protected_routes_need_a_token(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/tasks")
    assert r.status_code == 401
    assert r.json() == {"detail": "not authenticated"}


def test_import_app_is_light() -> None:
    code = (
        "import sys, avatarbot.app, avatarbot.cli;"
        "heavy = [m for m in ('torch','mediapipe','lark_oapi','cv2','onnxruntime','wechatpy',"
        "'openai','celery','scipy') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


async def test_docs_pages_load_nothing_from_the_internet(client: httpx.AsyncClient) -> None:
    # The README's first step is "open /docs": it must work on an offline server.
    for path in ("/docs", "/redoc"):
        page = (await client.get(path)).text
        assert "cdn.jsdelivr.net" not in page and "fonts.googleapis.com" not in page, path
    docs = (await client.get("/docs")).text
    for asset in ("/docs-static/swagger-ui-bundle.js", "/docs-static/swagger-ui.css"):
        assert asset in docs
        r = await client.get(asset)
        assert r.status_code == 200 and len(r.content) > 10_000, asset
    r = await client.get("/docs-static/redoc.standalone.js")
    assert (
        r.status_code == 200
        and "/docs-static/redoc.standalone.js" in (await client.get("/redoc")).text
    )
    assert (await client.get("/docs/oauth2-redirect")).status_code == 200
