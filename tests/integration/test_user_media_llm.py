"""A photo sent to an LLM-backed chat reaches the model as an OpenAI image_url part.

Real parts: the app's BotService and FeishuChannel, the stand-in Feishu platform (the photo
comes from its message resources API) and the stand-in OpenAI-compatible LLM server.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from avatarbot.bot.types import Attachment, Channel, IncomingMessage
from tests.conftest import make_settings
from tests.helpers.fake_feishu import FakeFeishu
from tests.helpers.fake_llm import fake_llm_server, last_message


def _photo() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(out, format="PNG")
    return out.getvalue()


def describe(body: dict[str, Any], _n: int) -> dict[str, Any]:
    content = last_message(body)["content"]
    if isinstance(content, list) and any(p.get("type") == "image_url" for p in content):
        return {"content": "A red rectangle."}
    return {"content": "I see no picture."}


async def test_photo_goes_to_the_llm_as_image_input(tmp_path: Path) -> None:
    from avatarbot.app import create_app

    photo = _photo()
    feishu = FakeFeishu().start()
    feishu.resources[("om_photo_1", "img_1")] = photo
    try:
        async with fake_llm_server(describe) as llm:
            settings = make_settings(
                tmp_path,
                llm={"base_url": llm.base_url, "model": "vision", "timeout_s": 10},
                feishu={
                    "app_id": feishu.app_id,
                    "app_secret": feishu.app_secret,
                    "verification_token": "t",
                    "base_url": feishu.base_url,
                    "streaming": False,  # one plain text answer (streaming has its own tests)
                },
            )
            app = create_app(settings)
            async with app.router.lifespan_context(app):
                bot = app.state.services.bot
                msg = IncomingMessage(
                    channel=Channel.FEISHU,
                    chat_id="oc_vision",
                    user_id="ou_1",
                    text="what is this?",
                    message_id="om_photo_1",
                    event_id="ev_photo_1",
                    attachments=[Attachment(kind="image", key="img_1")],
                )
                replies = await bot.handle_incoming(msg)
                assert replies is not None and replies[0].text == "A red rectangle."
            parts = last_message(llm.requests[0])["content"]
            assert parts[0] == {"type": "text", "text": "what is this?"}
            url = parts[1]["image_url"]["url"]
            assert url.startswith("data:image/png;base64,")
            assert base64.b64decode(url.split(",", 1)[1]) == photo
            # handle_incoming returns after the replies went out.
            assert feishu.sent("text")[0]["content"]["text"] == "A red rectangle."
    finally:
        feishu.stop()
