"""POST /webhooks/feishu: verify, decrypt, answer at once; the bot works after the answer.

Status codes: 200 handled (or ignored), 400 unreadable body, 401 bad signature,
403 bad verification token, 413 body over 1 MB, 404 channel not configured. An unexpected
error is logged and answered 400, so the platform does not hammer us with retries of a
poison event. The one 5xx: 503 when the message cannot be stored (the database is down);
the 200 is a promise that the message is safe, so Feishu must retry it later.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from avatarbot.api.uploads import read_body
from avatarbot.bot.types import IncomingMessage
from avatarbot.errors import AvatarbotError, InvalidInput, PermissionDenied
from avatarbot.integrations.feishu import crypto
from avatarbot.integrations.feishu.events import CARD_ACTION, event_type, parse_message_event
from avatarbot.integrations.intake import intake

logger = logging.getLogger(__name__)

router = APIRouter(tags=["webhooks"])

MAX_BODY_BYTES = 1024 * 1024  # events are a few kB; refuse anything absurd before parsing


def _decode(raw: bytes, encrypt_key: str) -> dict[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except ValueError as exc:
        raise InvalidInput("body is not JSON") from exc
    if not isinstance(body, dict):
        raise InvalidInput("body is not a JSON object")
    if "encrypt" in body:
        if not encrypt_key:
            raise InvalidInput("encrypted event but no encrypt key is configured")
        body = json.loads(crypto.decrypt(encrypt_key, str(body["encrypt"])))
        if not isinstance(body, dict):
            raise InvalidInput("decrypted body is not a JSON object")
    return body


def _event_token(body: dict[str, Any]) -> str:
    header = body.get("header")
    if isinstance(header, dict):
        return str(header.get("token") or "")
    return str(body.get("token") or "")


def process_body(
    channel: Any, raw: bytes, headers: dict[str, str]
) -> tuple[dict[str, Any], IncomingMessage | None]:
    """Verify and parse one webhook body: (the JSON answer, the message for the bot if any).

    Raises AvatarbotError."""
    settings = channel.settings
    encrypt_key = settings.encrypt_key.get_secret_value()
    token = settings.verification_token.get_secret_value()
    if not (encrypt_key or token):
        # Without either secret anyone who finds the URL could make the bot talk.
        raise PermissionDenied(
            "set AVATARBOT_FEISHU__VERIFICATION_TOKEN (and ideally __ENCRYPT_KEY) to accept events"
        )
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidInput("event body too large")
    body = _decode(raw, encrypt_key)
    if body.get("type") == "url_verification":
        # Feishu sends no signature with the URL check; the token proves it is our app.
        if token and body.get("token") != token:
            raise PermissionDenied("bad verification token")
        return {"challenge": body.get("challenge", "")}, None
    if encrypt_key:
        crypto.verify_signature(
            timestamp=headers.get("x-lark-request-timestamp"),
            nonce=headers.get("x-lark-request-nonce"),
            sig=headers.get("x-lark-signature"),
            encrypt_key=encrypt_key,
            raw_body=raw,
        )
    if token and _event_token(body) != token:
        raise PermissionDenied("bad verification token")
    msg = parse_event(channel, body)
    if event_type(body) == CARD_ACTION:  # answered within 3 s with a toast; the work follows
        from avatarbot.integrations.feishu.card_callback import answer

        return answer(body), msg
    return {}, msg


@router.post("/webhooks/feishu", include_in_schema=True)
async def feishu_webhook(request: Request) -> JSONResponse:
    """Feishu/Lark event subscription (plain or encrypted, url_verification included)."""
    services = request.app.state.services
    channel = services.channels.get("feishu")
    if channel is None:
        return JSONResponse({"detail": "the Feishu channel is not configured"}, status_code=404)
    started = time.perf_counter()
    try:
        raw = await read_body(request, max_bytes=MAX_BODY_BYTES)
        answer, msg = process_body(channel, raw, {k.lower(): v for k, v in request.headers.items()})
    except AvatarbotError as exc:
        status = exc.status_code if exc.status_code in (400, 401, 403, 413, 422) else 400
        logger.warning("Feishu webhook rejected (%d): %s", status, exc.message)
        return JSONResponse({"detail": exc.message}, status_code=400 if status == 422 else status)
    except Exception:
        logger.exception("Feishu webhook body could not be handled")
        return JSONResponse({"detail": "unreadable event"}, status_code=400)
    background = None
    if msg is not None:
        try:
            background = await intake(channel.bot, msg)
        except Exception:
            logger.exception("Feishu event %s could not be stored", msg.event_id)
            return JSONResponse({"detail": "try again later"}, status_code=503)
    logger.debug("Feishu webhook answered in %.1f ms", (time.perf_counter() - started) * 1000)
    return JSONResponse(answer, background=background)


def parse_event(channel: Any, body: dict[str, Any]) -> IncomingMessage | None:
    """A message event, or a card button press (structured input), as an IncomingMessage."""
    from avatarbot.integrations.feishu.card_callback import parse_card_action

    if event_type(body) == CARD_ACTION:
        msg = parse_card_action(body)
        if msg is not None and not msg.raw["card_action"].get("action"):
            msg = None  # a click without an action: only the toast answers it
    else:
        msg = parse_message_event(body, channel.bot_open_id)
    if msg is not None:
        channel.last_event_at = time.time()
    return msg


def handle_event(channel: Any, body: dict[str, Any]) -> dict[str, Any]:
    """Turn a verified event into an IncomingMessage and hand it to the bot (non-blocking)."""
    from avatarbot.integrations.feishu.card_callback import handle_card_action

    if event_type(body) == CARD_ACTION:  # a button under a video: answered with a toast
        channel.last_event_at = time.time()
        return handle_card_action(channel, body)
    msg = parse_event(channel, body)
    if msg is None:
        return {}
    if channel.bot is None:
        logger.warning("Feishu event %s dropped: the bot service is not running", msg.event_id)
        return {}
    channel.bot.submit(msg)
    return {}
