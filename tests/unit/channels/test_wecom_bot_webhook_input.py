"""/webhooks/wecom-bot and /media/signed refuse hostile input with a clear 4xx, never a 5xx."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from avatarbot.integrations.wecom_bot.webhook import signed_media_url
from tests.conftest import make_settings
from tests.helpers.wecom_bot_poller import AES_KEY, TOKEN, WebhookPoller

URL = "/webhooks/wecom-bot"


@pytest.fixture
async def webhook_app(tmp_path: Path) -> AsyncIterator[Any]:
    from avatarbot.app import create_app

    settings = make_settings(
        tmp_path, wecom_bot={"mode": "webhook", "token": TOKEN, "encoding_aes_key": AES_KEY}
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def wclient(webhook_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=webhook_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def test_hostile_bodies_are_4xx(wclient: httpx.AsyncClient) -> None:
    poller = WebhookPoller(URL)
    enc = poller.encrypt('{"msgid": "1"}')
    sig = hashlib.sha1("".join(sorted([TOKEN, "1", "n", enc])).encode()).hexdigest()
    query = {"msg_signature": sig, "timestamp": "1", "nonce": "n"}
    cases = [
        (b"", 400),
        (b"[1, 2]", 400),
        (b"\xff\xfe", 400),
        (b'{"encrypt": 5}', 403),
        (b"x" * (1024 * 1024 + 10), 413),
    ]
    for body, status in cases:
        response = await wclient.post(URL, params=query, content=body)
        assert response.status_code == status, (body[:20], response.text)
        assert "detail" in response.json()
    # WeCom's other spellings: "Encrypt" in the body, "msgsignature" in the query.
    alt = await wclient.post(
        URL, params={"msgsignature": sig, "timestamp": "1", "nonce": "n"}, json={"Encrypt": enc}
    )
    assert alt.status_code == 200  # a message without a sender: nothing to do, empty 200
    assert (await wclient.get(URL, params={"echostr": "%%%"})).status_code == 403
    for shape in ('{"msgtype": "stream", "stream": "x"}', '{"msgtype": "event", "event": [1]}',
                  '{"msgid": "m", "from": "u", "msgtype": "text"}', '{"msgid": 5, "from": {"userid": 7}}'):  # fmt: skip
        sealed = poller.encrypt(shape)
        sig2 = hashlib.sha1("".join(sorted([TOKEN, "1", "n", sealed])).encode()).hexdigest()
        odd_shape = await wclient.post(
            URL, params={**query, "msg_signature": sig2}, json={"encrypt": sealed}
        )
        assert odd_shape.status_code in (200, 400), (shape, odd_shape.text)
    odd = await wclient.post(URL, params={**query, "msg_signature": "签名"}, json={"encrypt": enc})
    assert odd.status_code == 403


async def test_signed_media_links(webhook_app: Any, wclient: httpx.AsyncClient) -> None:
    settings = webhook_app.state.services.settings
    video = settings.media_dir / "results" / "v.mp4"
    video.parent.mkdir(parents=True, exist_ok=True)
    video.write_bytes(b"mp4 bytes")
    url = signed_media_url(settings, video).removeprefix(settings.public_base_url)
    assert (await wclient.get(url)).content == b"mp4 bytes"
    assert (await wclient.get(url.replace("v.mp4", "w.mp4"))).status_code == 403
    expired = signed_media_url(settings, video, ttl_s=-10).removeprefix(settings.public_base_url)
    assert (await wclient.get(expired)).status_code == 410
    assert (await wclient.get(url.split("sig=")[0] + "sig=签名")).status_code == 403
    escape = "/media/signed/../../secret_key?expires=9999999999&sig=0"
    assert (await wclient.get(escape)).status_code in (403, 404)
    assert int(url.split("expires=")[1].split("&")[0]) > time.time()


async def test_not_configured_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, json={"encrypt": "x"})
    assert response.status_code == 404 and "not configured" in response.json()["detail"]
