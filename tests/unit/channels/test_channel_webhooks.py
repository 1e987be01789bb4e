"""Webhook edge cases through the ASGI app (no platform needed): misconfiguration and bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from avatarbot.config import Settings


def _settings(tmp_path: Path, **channels: Any) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'avatarbot.db'}",
        auth={"secret_key": "test-secret-key-0123456789abcdef0123456789"},
        **channels,
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Credentials but no verification token / encrypt key; the API host is unreachable.
    return _settings(
        tmp_path,
        feishu={"app_id": "cli_x", "app_secret": "s", "base_url": "http://127.0.0.1:9"},
        wecom={"corp_id": "ww1", "secret": "s", "base_url": "http://127.0.0.1:9"},
    )


async def test_unsecured_feishu_webhook_refuses_events(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/webhooks/feishu", json={"type": "url_verification", "challenge": "c"}
    )
    assert response.status_code == 403
    assert "VERIFICATION_TOKEN" in response.json()["detail"]
    health = (await client.get("/health")).json()["components"]["channels"]
    assert health["feishu"]["status"] == "error"
    assert health["wecom"]["status"] == "error" and "EncodingAESKey" in health["wecom"]["reason"]


async def test_wecom_without_keys_never_5xx(client: httpx.AsyncClient) -> None:
    verify = await client.get(
        "/webhooks/wecom",
        params={"msg_signature": "x", "timestamp": "1", "nonce": "n", "echostr": "e"},
    )
    assert verify.status_code in (400, 403)
    post = await client.post("/webhooks/wecom", content=b"<xml><Encrypt>x</Encrypt></xml>")
    assert post.status_code in (400, 403)


async def test_disabled_channels_answer_404(tmp_path: Path) -> None:
    from avatarbot.app import create_app

    app = create_app(_settings(tmp_path))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            assert (await c.post("/webhooks/feishu", json={})).status_code == 404
            assert (await c.get("/webhooks/wecom")).status_code == 404
            health = (await c.get("/health")).json()["components"]["channels"]
            assert (
                health["feishu"]["status"] == "disabled" and health["wecom"]["status"] == "disabled"
            )


async def test_malformed_wecom_key_shows_in_health(tmp_path: Path) -> None:
    from avatarbot.app import create_app

    settings = _settings(
        tmp_path,
        wecom={
            "corp_id": "ww1",
            "secret": "s",
            "token": "t",
            "encoding_aes_key": "too-short",
            "base_url": "http://127.0.0.1:9",
        },
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            wecom = (await c.get("/health")).json()["components"]["channels"]["wecom"]
            assert wecom["status"] == "error" and "EncodingAESKey unusable" in wecom["reason"]
            answer = await c.get(
                "/webhooks/wecom",
                params={"msg_signature": "x", "timestamp": "1", "nonce": "n", "echostr": "e"},
            )
            assert answer.status_code in (400, 403)
