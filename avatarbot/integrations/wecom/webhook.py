"""GET/POST /webhooks/wecom: URL verification echo and encrypted callback messages.

Stores the message (the inbox) and answers with an empty 200 (WeCom waits up to 5 s, then
retries 3 times); the bot works after the answer. Bad signature -> 403, undecryptable body
-> 400, body over 1 MB -> 413; 503 only when the message cannot be stored (WeCom retries).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from avatarbot.api.uploads import read_body
from avatarbot.errors import AvatarbotError
from avatarbot.integrations.intake import intake
from avatarbot.integrations.wecom.crypto import MAX_XML_BYTES, parse_xml

logger = logging.getLogger(__name__)

router = APIRouter(tags=["webhooks"])


def _channel(request: Request):  # type: ignore[no-untyped-def]
    return request.app.state.services.channels.get("wecom")


def _reject(exc: AvatarbotError) -> JSONResponse:
    status = 403 if exc.status_code in (401, 403) else 413 if exc.status_code == 413 else 400
    logger.warning("WeCom webhook rejected (%d): %s", status, exc.message)
    return JSONResponse({"detail": exc.message}, status_code=status)


@router.get("/webhooks/wecom")
async def wecom_verify(
    request: Request,
    msg_signature: str = "",
    timestamp: str = "",
    nonce: str = "",
    echostr: str = "",
) -> Response:
    """WeCom callback URL verification: answer the decrypted echostr."""
    channel = _channel(request)
    if channel is None:
        return JSONResponse({"detail": "the WeCom channel is not configured"}, status_code=404)
    try:
        plain = channel.crypto.verify_url(
            msg_signature=msg_signature, timestamp=timestamp, nonce=nonce, echostr=echostr
        )
    except AvatarbotError as exc:
        return _reject(exc)
    except Exception:
        logger.exception("WeCom URL verification failed unexpectedly")
        return JSONResponse({"detail": "verification failed"}, status_code=400)
    return PlainTextResponse(plain)


@router.post("/webhooks/wecom")
async def wecom_callback(
    request: Request, msg_signature: str = "", timestamp: str = "", nonce: str = ""
) -> Response:
    """WeCom encrypted callback (text, image, voice, event)."""
    channel = _channel(request)
    if channel is None:
        return JSONResponse({"detail": "the WeCom channel is not configured"}, status_code=404)
    try:
        body = await read_body(request, max_bytes=MAX_XML_BYTES)
        xml = channel.crypto.decrypt(
            body=body, msg_signature=msg_signature, timestamp=timestamp, nonce=nonce
        )
        msg = channel.parse_webhook(parse_xml(xml))
    except AvatarbotError as exc:
        return _reject(exc)
    except Exception:
        logger.exception("WeCom callback could not be handled")
        return JSONResponse({"detail": "unreadable message"}, status_code=400)
    background = None
    if msg is not None:
        try:
            background = await intake(channel.bot, msg)
        except Exception:
            logger.exception("WeCom message %s could not be stored", msg.event_id)
            return JSONResponse({"detail": "try again later"}, status_code=503)
    return PlainTextResponse("", background=background)
