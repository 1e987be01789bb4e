"""Regression tests for what fuzzing the API found: bad input is a clear 4xx, never a 5xx."""

from __future__ import annotations

import io
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile

from avatarbot.config import Settings
from tests.conftest import _fresh_postgres_db, make_settings, register_and_login


async def test_huge_task_offset_is_422_not_500(
    client: httpx.AsyncClient, admin_headers: dict
) -> None:
    # 2**63 overflowed the SQLite integer inside the query: a 500 before the bound.
    r = await client.get("/api/v1/tasks", params={"offset": 2**63}, headers=admin_headers)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["query", "offset"]
    r = await client.get("/api/v1/tasks", params={"offset": 2**31 - 1}, headers=admin_headers)
    assert r.status_code == 200 and r.json() == []


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("post", "/api/v1/voice/synthesize", {"json": {"text": "hi", "backend": "nope"}}),
        ("get", "/api/v1/voice/voices", {"params": {"backend": "null"}}),
    ],
)
async def test_unknown_tts_backend_is_422(
    client: httpx.AsyncClient, admin_headers: dict, method: str, path: str, kwargs: dict
) -> None:
    # An unknown name is the caller's mistake; 503 is kept for known backends not installed.
    r = await client.request(method, path, headers=admin_headers, **kwargs)
    assert r.status_code == 422, r.text
    assert "unknown TTS backend" in r.json()["detail"]


async def test_unexpected_error_answer_and_log_carry_the_request_id(
    app: object, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom() -> None:
        raise RuntimeError("secret-ish internals")

    app.add_api_route("/test-boom", boom)  # type: ignore[attr-defined]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.get("/test-boom", headers={"x-request-id": "fuzz42"})
    assert r.status_code == 500
    assert r.json() == {"detail": "internal error (request id fuzz42)"}
    assert r.headers["x-request-id"] == "fuzz42"
    assert "secret-ish" not in r.text
    records = [rec for rec in caplog.records if rec.getMessage() == "unhandled error"]
    assert records and records[0].request_id == "fuzz42"  # type: ignore[attr-defined]


@pytest.fixture
def pg_database_url(postgres_url: str) -> str:
    return _fresh_postgres_db(postgres_url)  # sync: it runs its own event loop


@pytest.fixture
async def pg_client(tmp_path: Path, pg_database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    from avatarbot.app import create_app

    settings = make_settings(tmp_path, database_url=pg_database_url)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            yield c


async def test_nul_character_is_422_on_postgresql(pg_client: httpx.AsyncClient) -> None:
    # PostgreSQL text cannot hold U+0000; the driver error used to surface as a 500.
    headers = await register_and_login(pg_client)
    body = {"name": "nulagent", "prompt": "a\x00b"}
    r = await pg_client.post("/api/v1/agents/create", json=body, headers=headers)
    assert r.status_code == 422, r.text
    assert "NUL" in r.json()["detail"]
    names = [
        a["name"] for a in (await pg_client.get("/api/v1/agents/list", headers=headers)).json()
    ]
    assert "nulagent" not in names  # nothing half-written


async def test_junk_audio_upload_is_422_and_leaves_nothing(
    client: httpx.AsyncClient, admin_headers: dict, settings: Settings
) -> None:
    # It used to be accepted (202) and fail later in the job, its upload left on disk.
    uploads = settings.media_dir / "uploads"
    r = await client.post(
        "/api/v1/digital-human/generate-from-audio",
        files={"audio": ("speech.wav", os.urandom(5000), "audio/wav")},
        headers=admin_headers,
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("could not decode audio")
    assert not uploads.exists() or not any(uploads.iterdir())
    assert (await client.get("/api/v1/tasks", headers=admin_headers)).json() == []

    # Silence would fail in the render ("empty or silent"): refused at upload now, not kept.
    buf = io.BytesIO()
    soundfile.write(buf, np.zeros(8000, dtype=np.float32), 16000, format="WAV")
    r = await client.post(
        "/api/v1/digital-human/generate-from-audio",
        files={"audio": ("speech.wav", buf.getvalue(), "audio/wav")},
        headers=admin_headers,
    )
    assert r.status_code == 422 and "silent" in r.json()["detail"], r.text
    assert not uploads.exists() or not any(uploads.iterdir())

    buf = io.BytesIO()
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(8000) / 16000)
    soundfile.write(buf, tone.astype(np.float32), 16000, format="WAV")
    r = await client.post(
        "/api/v1/digital-human/generate-from-audio",
        files={"audio": ("speech.wav", buf.getvalue(), "audio/wav")},
        headers=admin_headers,
    )
    assert r.status_code == 202, r.text
    assert len(list(uploads.iterdir())) == 1


async def test_timestamps_are_rfc3339_with_offset_on_sqlite(
    client: httpx.AsyncClient, admin_headers: dict
) -> None:
    # SQLite hands back naive datetimes; answers used to lack the offset the schema's
    # "date-time" format requires (schemathesis response_schema_conformance).
    from datetime import datetime

    me = (await client.get("/api/v1/auth/me", headers=admin_headers)).json()
    humans = (await client.get("/api/v1/digital-human/list", headers=admin_headers)).json()
    agents = (await client.get("/api/v1/agents/list", headers=admin_headers)).json()
    stamps = [me["created_at"], humans[0]["created_at"], agents[0]["updated_at"]]
    for stamp in stamps:
        assert datetime.fromisoformat(stamp).utcoffset() is not None, stamp


@pytest.mark.parametrize("url", ["AZH\u00e9L\x06TP", "http://[::1", "http://\u00e9\x00/index.json"])
async def test_registry_sync_with_unusable_url_is_422(
    client: httpx.AsyncClient, admin_headers: dict, url: str
) -> None:
    # httpx.InvalidURL is no httpx.HTTPError: schemathesis found it as a 500.
    r = await client.post("/api/v1/plugins/registry/sync", json={"url": url}, headers=admin_headers)
    assert r.status_code == 422, r.text
    assert "invalid plugin registry URL" in r.json()["detail"]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://h/cgi-bin/webhook/send?key=ROBOTKEY123",
        "http://h/cgi-bin/webhook/send?key=ROBOTKEY123\x06",
        "http://h/cgi-bin/webhook/send?key=ROBOT KEY123",
    ],
)
async def test_bad_robot_url_is_422_without_echoing_the_key(
    client: httpx.AsyncClient, admin_headers: dict, url: str
) -> None:
    body = {
        "name": "daily",
        "cron": "0 9 * * *",
        "agent": "assistant",
        "prompt": "report",
        "target": {"platform": "webhook", "url": url},
    }
    r = await client.post("/api/v1/scheduler/create", json=body, headers=admin_headers)
    assert r.status_code == 422, r.text
    assert "must be an http(s) URL" in r.json()["detail"]
    assert "ROBOT" not in r.text


async def test_openapi_documents_the_error_answers(client: httpx.AsyncClient) -> None:
    # Undocumented 401/404/409/413 and a 422 documented as a list only (our typed errors answer a
    # string) were schemathesis' status-code and schema-conformance failures.
    spec = (await client.get("/openapi.json")).json()
    op = spec["paths"]["/api/v1/digital-human/{human_id}"]["get"]["responses"]
    assert {"401", "404", "422", "503"} <= set(op)
    detail = spec["components"]["schemas"]["ErrorAnswer"]["properties"]["detail"]
    assert {"type": "string"} in detail["anyOf"]
    hook = spec["paths"]["/webhooks/feishu"]["post"]["responses"]
    assert {"400", "401", "403", "413"} <= set(hook)
    portrait = spec["paths"]["/api/v1/digital-human/{human_id}/portrait"]["get"]["responses"]
    assert "image/jpeg" in portrait["200"]["content"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (json.dumps({"a": "x" * 100_000}), "too large"),
        ("[" * 1500 + "]" * 1500, "nested too deeply"),
    ],
)
async def test_voice_profile_params_are_capped(
    client: httpx.AsyncClient, admin_headers: dict, params: str, message: str
) -> None:
    form = {"name": "v", "backend": "espeak", "params": params}
    r = await client.post("/api/v1/voice/profiles", data=form, headers=admin_headers)
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"]
    put = await client.put(
        "/api/v1/voice/profiles/none", json={"params": {"a": "x" * 10_000}}, headers=admin_headers
    )
    assert put.status_code in (404, 422), put.text
    assert (await client.get("/api/v1/voice/profiles", headers=admin_headers)).json() == []


PORTRAIT = Path(__file__).parents[3] / "avatarbot" / "pipeline" / "assets" / "default_portrait.jpg"


@pytest.mark.parametrize(
    ("data", "ctype", "status", "message"),
    [
        (b"hello, not an image", "image/jpeg", 422, "JPEG, PNG or WebP"),
        (PORTRAIT.read_bytes()[:2000], "image/jpeg", 422, "corrupt"),
        (b"", "image/jpeg", 422, "empty"),
        (b"GIF89a" + bytes(100), "image/gif", 422, "JPEG, PNG or WebP"),
    ],
)
async def test_broken_portraits_are_4xx_and_leave_nothing(
    client: httpx.AsyncClient,
    admin_headers: dict,
    settings: Settings,
    data: bytes,
    ctype: str,
    status: int,
    message: str,
) -> None:
    r = await client.post(
        "/api/v1/digital-human/create",
        data={"name": "x"},
        files={"image": ("p.jpg", data, ctype)},
        headers=admin_headers,
    )
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]
    folder = settings.data_dir / "digital_humans"
    assert not folder.exists() or not any(folder.iterdir())


async def test_portrait_suffix_follows_the_bytes_not_the_declared_type(
    client: httpx.AsyncClient, admin_headers: dict
) -> None:
    # A JPEG declared as image/png used to be stored (and served) as portrait.png.
    r = await client.post(
        "/api/v1/digital-human/create",
        data={"name": "liar"},
        files={"image": ("p.png", PORTRAIT.read_bytes(), "image/png")},
        headers=admin_headers,
    )
    assert r.status_code == 201, r.text
    portrait = await client.get(r.json()["portrait_url"], headers=admin_headers)
    assert portrait.headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize(
    ("field", "value"),
    [("prompt", "x" * 5_000_000), ("name", "n" * 10_000), ("cron", "*/1 " * 1000)],
)
async def test_schedule_free_text_is_capped(
    client: httpx.AsyncClient, admin_headers: dict, field: str, value: str
) -> None:
    body = {
        "name": "daily",
        "cron": "0 9 * * *",
        "agent": "assistant",
        "prompt": "report",
        "target": {"platform": "feishu", "chat_id": "oc_1"},
        field: value,
    }
    r = await client.post("/api/v1/scheduler/create", json=body, headers=admin_headers)
    assert r.status_code == 422, r.text[:300]
    assert r.json()["detail"][0]["type"] == "string_too_long"
    assert (await client.get("/api/v1/scheduler/list", headers=admin_headers)).json() == []
