"""Knowledge API: upload txt/md/pdf/docx, list, search, replace, delete; bad uploads are 4xx."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from tests.conftest import register_and_login
from tests.helpers.documents import EN_HANDBOOK, ZH_HANDBOOK, docx_bytes, pdf_bytes, zip_bytes

BASE = "/api/v1/agents/assistant/knowledge"
MB = 1024 * 1024


async def _upload(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, data: bytes
) -> httpx.Response:
    return await client.post(BASE, files={"file": (name, data)}, headers=headers)


async def _search(client: httpx.AsyncClient, headers: dict[str, str], q: str) -> list[dict]:
    r = await client.get(f"{BASE}/search", params={"q": q}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["results"]


async def test_upload_list_search_replace_delete(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    h = admin_headers
    r = await _upload(client, h, "handbook.md", EN_HANDBOOK.encode())
    assert r.status_code == 201, r.text
    en = r.json()
    assert en["filename"] == "handbook.md" and en["kind"] == "md" and en["agent"] == "assistant"
    assert en["chunk_count"] >= 1 and en["replaced"] is False
    r = await _upload(client, h, "员工手册.docx", docx_bytes(ZH_HANDBOOK.split("\n\n")))
    assert r.status_code == 201, r.text
    zh = r.json()
    r = await _upload(client, h, "parking.pdf", pdf_bytes(["Visitors park in lot B, north gate."]))
    assert r.status_code == 201, r.text
    # GB18030 text (older Chinese Windows files) is decoded too.
    r = await _upload(client, h, "通知.txt", "食堂营业时间：早上七点到晚上八点。".encode("gb18030"))
    assert r.status_code == 201, r.text

    r = await client.get(BASE, headers=h)
    listing = r.json()
    assert listing["count"] == 4 and listing["limits"]["max_document_bytes"] == 20 * MB
    assert {d["filename"] for d in listing["data"]} == {
        "handbook.md",
        "员工手册.docx",
        "parking.pdf",
        "通知.txt",
    }

    hits = await _search(client, h, "annual leave")
    assert hits[0]["document"] == "handbook.md" and "twenty-five days" in hits[0]["text"]
    assert hits[0]["cite"] == f"handbook.md #{hits[0]['passage']}"
    hits = await _search(client, h, "加班工资")
    assert hits[0]["document"] == "员工手册.docx" and "一点五倍" in hits[0]["text"]
    assert (await _search(client, h, "where do visitors park"))[0]["document"] == "parking.pdf"
    assert (await _search(client, h, "食堂"))[0]["document"] == "通知.txt"

    # Replacing by file name re-indexes: the old wording is gone.
    r = await _upload(client, h, "handbook.md", b"Annual leave: thirty days from 2027.")
    assert r.status_code == 201 and r.json()["replaced"] is True and r.json()["id"] == en["id"]
    hits = await _search(client, h, "annual leave")
    assert [x["text"] for x in hits] == ["Annual leave: thirty days from 2027."]

    r = await client.delete(f"{BASE}/{zh['id']}", headers=h)
    assert r.status_code == 200 and r.json() == {"deleted": True, "id": zh["id"]}
    assert await _search(client, h, "加班工资") == []
    assert (await client.delete(f"{BASE}/{zh['id']}", headers=h)).status_code == 404
    assert (await client.get("/api/v1/agents/nobody/knowledge", headers=h)).status_code == 404


async def test_only_superusers_change_it(
    client: httpx.AsyncClient, admin_headers: dict[str, str], app: object
) -> None:
    r = await _upload(client, admin_headers, "a.txt", b"Office opens at nine.")
    doc_id = r.json()["id"]
    assert (await client.post(BASE, files={"file": ("a.txt", b"x")})).status_code == 401
    assert (await client.get(BASE)).status_code == 401
    app.state.config.settings.auth.open_registration = True  # type: ignore[attr-defined]
    user = await register_and_login(client, email="user@example.com")
    assert (await _upload(client, user, "b.txt", b"hello")).status_code == 403
    assert (await client.delete(f"{BASE}/{doc_id}", headers=user)).status_code == 403
    assert (await client.get(BASE, headers=user)).json()["count"] == 1


async def test_bad_uploads_are_clear_4xx(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    h = admin_headers
    cases = [
        ("broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage", 422, "corrupt"),
        ("renamed.docx", zip_bytes(), 422, "not a .docx"),
        ("random.docx", b"this is not a zip at all", 422, "not a .docx"),
        ("empty.txt", b"", 422, "empty"),
        ("binary.txt", b"\x00\x01\x02binary", 422, "binary"),
        ("blank.md", b"   \n\n  ", 422, "no text"),
        ("picture.png", b"\x89PNG\r\n\x1a\n", 415, "unsupported document type '.png'"),
        ("noext", b"hello", 415, "unsupported"),
    ]
    for name, data, code, words in cases:
        r = await _upload(client, h, name, data)
        assert r.status_code == code, (name, r.text)
        assert words in r.json()["detail"], (name, r.text)
    r = await client.post(BASE, data={"nofile": "x"}, headers=h)
    assert r.status_code == 422 and "'file'" in r.json()["detail"]
    r = await client.post(BASE, content=b"raw", headers={**h, "Content-Type": "text/plain"})
    assert r.status_code == 422 and "multipart/form-data" in r.json()["detail"]
    r = await client.post(
        BASE, content=b"--x\r\n", headers={**h, "Content-Type": "multipart/form-data"}
    )
    assert r.status_code == 400 and "boundary" in r.json()["detail"]
    # Nothing half-written: no document from any of the failures.
    assert (await client.get(BASE, headers=h)).json()["count"] == 0


async def test_200_mb_upload_is_refused_while_streaming(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    sent = 0
    block = b"a" * MB

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield (
            b'--B\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n'
            b"Content-Type: text/plain\r\n\r\n"
        )
        for _ in range(200):
            sent += len(block)
            yield block
        yield b"\r\n--B--\r\n"

    headers = {**admin_headers, "Content-Type": "multipart/form-data; boundary=B"}
    r = await client.post(BASE, content=body(), headers=headers)  # chunked: no Content-Length
    assert r.status_code == 413 and "limit 20 MB" in r.json()["detail"]
    assert sent <= 22 * MB  # reading stopped at the cap, the rest was never pulled
    # A declared 200 MB body is refused before any of it is read.
    r = await client.post(BASE, content=b"", headers={**headers, "Content-Length": str(200 * MB)})
    assert r.status_code == 413
    assert (await client.get(BASE, headers=admin_headers)).json()["count"] == 0
