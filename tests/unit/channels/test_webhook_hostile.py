"""Hostile webhook bodies (from fuzzing): always a 4xx with a detail, never a 5xx or a big read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from avatarbot.config import Settings
from tests.conftest import make_settings

WECOM_QUERY = {"msg_signature": "abc", "timestamp": "1", "nonce": "n"}
LOL = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(2, 10))  # billion laughs
XML_BOMB = f'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY lol1 "lol">{LOL}]><xml><Encrypt>&lol9;</Encrypt></xml>'
XXE = (
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    "<xml><ToUserName>&e;</ToUserName><Encrypt>&e;</Encrypt></xml>"
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path,
        feishu={
            "app_id": "cli_x",
            "app_secret": "s",
            "verification_token": "vt",
            "encrypt_key": "ek",
            "base_url": "http://127.0.0.1:9",
        },
        wecom={
            "corp_id": "ww1",
            "secret": "s",
            "token": "t",
            "encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
            "base_url": "http://127.0.0.1:9",
        },
    )


async def _chunks(total: int) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b"A" * 65536
        sent += 65536


@pytest.mark.parametrize("path", ["/webhooks/feishu", "/webhooks/wecom"])
async def test_oversized_bodies_are_413(client: httpx.AsyncClient, path: str) -> None:
    params = WECOM_QUERY if path.endswith("wecom") else None
    # Declared too large: refused before reading.
    r = await client.post(path, params=params, content=b"{" + b"A" * (2 << 20))
    assert r.status_code == 413 and "too large" in r.json()["detail"]
    # Chunked without a length: refused once 1 MB has streamed in, not after the whole body.
    r = await client.post(path, params=params, content=_chunks(8 << 20))
    assert r.status_code == 413 and "too large" in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"{not json", {}),
        (b"[1]", {}),
        (b"", {}),
        (b'{"encrypt": 12345}', {}),
        (b'{"encrypt": "!!!***"}', {}),
        (b'{"encrypt": "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="}', {}),
        (b"[" * 100_000 + b"]" * 100_000, {}),
        (b'{"a": "\xff"}', {}),
        (b'{"schema": "2.0"}', {"x-lark-request-timestamp": "1", "x-lark-signature": "zz"}),
        (b'{"type": "url_verification", "token": "wrong", "challenge": "c"}', {}),
    ],
)
async def test_feishu_hostile_bodies_are_4xx(
    client: httpx.AsyncClient, body: bytes, headers: dict[str, str]
) -> None:
    r = await client.post("/webhooks/feishu", content=body, headers=headers)
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["detail"]
    assert "ek" not in r.json()["detail"].split() and "vt" not in r.json()["detail"].split()


@pytest.mark.parametrize(
    ("params", "body"),
    [
        ({}, b"<xml><Encrypt>AAAA</Encrypt></xml>"),
        (WECOM_QUERY, b"{json}"),
        (WECOM_QUERY, b""),
        (WECOM_QUERY, XML_BOMB.encode()),
        (WECOM_QUERY, XXE.encode()),
        (WECOM_QUERY, b"<a>" * 50_000 + b"</a>" * 50_000),
        (WECOM_QUERY, b"<xml><Encrypt>\xff\xfe</Encrypt></xml>"),
    ],
)
async def test_wecom_hostile_bodies_are_4xx(
    client: httpx.AsyncClient, params: dict[str, str], body: bytes
) -> None:
    r = await client.post("/webhooks/wecom", params=params, content=body)
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["detail"] and "/etc/passwd" not in r.text and "root:" not in r.text
