"""GET/POST /webhooks/wecom-bot (AI bot webhook mode) and signed, expiring media links.

POST answers at once with an encrypted passive reply: a new message opens a stream bubble
(`finish: false`), and WeCom then polls it with `msgtype: stream` refreshes, answered from
the reply in progress. Bad signature -> 403, undecryptable or malformed -> 400, never 5xx.
Webhook mode cannot send files, so videos go as a link to /media/signed/… that expires.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response

from avatarbot.api.uploads import read_body
from avatarbot.config import Settings
from avatarbot.errors import AvatarbotError, ExternalServiceError
from avatarbot.integrations.wecom_bot.messages import event_of

logger = logging.getLogger(__name__)

router = APIRouter(tags=["webhooks"])

MAX_BODY_BYTES = 1024 * 1024
LINK_TTL_S = 7 * 24 * 3600


def _channel(request: Request) -> Any:
    channel = request.app.state.services.channels.get("wecom_bot")
    return channel if channel is not None and channel.webhook_mode else None


def _crypto(channel: Any) -> Any:
    if channel._crypto is None:
        from avatarbot.integrations.wecom_bot.crypto import BotCrypto

        channel._crypto = BotCrypto(
            token=channel.settings.token.get_secret_value(),
            encoding_aes_key=channel.settings.encoding_aes_key.get_secret_value(),
        )
    return channel._crypto


def _reject(exc: AvatarbotError) -> JSONResponse:
    status = 403 if exc.status_code in (401, 403) else 413 if exc.status_code == 413 else 400
    logger.warning("WeCom AI bot webhook rejected (%d): %s", status, exc.message)
    return JSONResponse({"detail": exc.message}, status_code=status)


def _not_configured() -> JSONResponse:
    return JSONResponse(
        {"detail": "the WeCom AI bot is not configured in webhook mode"}, status_code=404
    )


@router.get("/webhooks/wecom-bot")
async def wecom_bot_verify(
    request: Request,
    msg_signature: str = "",
    timestamp: str = "",
    nonce: str = "",
    echostr: str = "",
) -> Response:
    """WeCom AI bot URL verification: answer the decrypted echostr as plain text."""
    channel = _channel(request)
    if channel is None:
        return _not_configured()
    try:
        plain = _crypto(channel).verify_url(msg_signature, timestamp, nonce, echostr)
    except AvatarbotError as exc:
        return _reject(exc)
    return PlainTextResponse(plain)


@router.post("/webhooks/wecom-bot")
async def wecom_bot_callback(request: Request, timestamp: str = "", nonce: str = "") -> Response:
    """WeCom AI bot encrypted callback: messages, events and stream-refresh polls."""
    channel = _channel(request)
    if channel is None:
        return _not_configured()
    query = request.query_params
    signature = (
        query.get("msg_signature") or query.get("msgsignature") or query.get("signature") or ""
    )
    try:
        raw = await read_body(request, max_bytes=MAX_BODY_BYTES)
        envelope = _json_object(raw, "body")
        encrypt = str(envelope.get("encrypt") or envelope.get("Encrypt") or "")
        crypto = _crypto(channel)
        body = _json_object(
            crypto.open_envelope(signature, timestamp, nonce, encrypt).encode(), "message"
        )
    except AvatarbotError as exc:
        return _reject(exc)
    channel.last_event_at = time.time()
    try:
        answer = await _answer(channel, body)
    except (AttributeError, TypeError, ValueError):  # a signed but oddly shaped message
        logger.warning("WeCom AI bot message of an unexpected shape", exc_info=True)
        return JSONResponse({"detail": "malformed WeCom AI bot message"}, status_code=400)
    if answer is None:
        return PlainTextResponse("")
    sealed = crypto.seal(
        json.dumps(answer, ensure_ascii=False), nonce=nonce, timestamp=int(time.time())
    )
    return JSONResponse(sealed)


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    from avatarbot.errors import InvalidInput

    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"WeCom AI bot {what} is not JSON") from exc
    if not isinstance(value, dict):
        raise InvalidInput(f"WeCom AI bot {what} is not a JSON object")
    return value


async def _answer(channel: Any, body: dict[str, Any]) -> dict[str, Any] | None:
    """The passive reply for one decrypted callback (None: an empty 200)."""
    msgtype = str(body.get("msgtype") or "")
    if msgtype == "stream":  # WeCom polls a bubble we opened
        stream = body.get("stream") if isinstance(body.get("stream"), dict) else {}
        stream_id = str(stream.get("id") or "")
        ctx = channel.streams.get(stream_id)
        if ctx is None:
            return _stream(stream_id, "", True)
        from avatarbot.integrations.wecom_bot.stream import cut_utf8

        return _stream(stream_id, cut_utf8(ctx.stream.snapshot())[0], ctx.stream.finished)
    if msgtype == "event":
        kind, _ = event_of(body)
        if kind == "enter_chat":
            return {"msgtype": "text", "text": {"content": channel.settings.welcome}}
        return await channel.handle_event(body)  # a click on our buttons: the card update
    ctx = channel.accept_message(body)
    if ctx is None:
        return None
    return _stream(ctx.stream.stream_id, "", False)


def _stream(stream_id: str, content: str, finish: bool) -> dict[str, Any]:
    return {"msgtype": "stream", "stream": {"id": stream_id, "finish": finish, "content": content}}


async def post_response_url(url: str, body: dict[str, Any]) -> None:
    """One plain-JSON POST to a message's response_url (usable once, within an hour)."""
    import httpx

    try:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(url, json=body)
        data = response.json() if response.content else {}
    except (httpx.HTTPError, ValueError) as exc:
        raise ExternalServiceError(f"WeCom response_url failed ({type(exc).__name__})") from exc
    errcode = int(data.get("errcode") or 0) if isinstance(data, dict) else -1
    if response.status_code >= 400 or errcode != 0:
        raise ExternalServiceError(
            f"WeCom response_url refused the message (HTTP {response.status_code}, errcode {errcode})"
        )


# --- signed media links ------------------------------------------------------------------


def _sign(settings: Settings, rel: str, expires: int) -> str:
    key = settings.secret_key().encode("utf-8")
    return hmac.new(key, f"media:{rel}:{expires}".encode(), hashlib.sha256).hexdigest()[:40]


def signed_media_url(settings: Settings, path: Path, ttl_s: int = LINK_TTL_S) -> str:
    """A public, expiring URL for a file under the media directory."""
    rel = Path(path).resolve().relative_to(settings.media_dir.resolve()).as_posix()
    expires = int(time.time()) + ttl_s
    base = settings.public_base_url.rstrip("/")
    return f"{base}/media/signed/{rel}?expires={expires}&sig={_sign(settings, rel, expires)}"


@router.get("/media/signed/{rel:path}", response_model=None)
async def read_signed_media(
    request: Request, rel: str, expires: int = 0, sig: str = ""
) -> Response:
    """A media file behind a signed, expiring link (videos for chats that cannot take files)."""
    settings: Settings = request.app.state.services.settings
    if not hmac.compare_digest(_sign(settings, rel, expires).encode(), sig.encode("utf-8")):
        return JSONResponse({"detail": "invalid link signature"}, status_code=403)
    if expires < time.time():
        return JSONResponse({"detail": "this link has expired"}, status_code=410)
    root = settings.media_dir.resolve()
    path = (root / rel).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return JSONResponse({"detail": "not found"}, status_code=404)
    return FileResponse(path)
