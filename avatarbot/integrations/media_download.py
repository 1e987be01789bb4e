"""Capped streaming download of user media (Feishu message resources, WeCom media/get).

The platforms answer either the file's bytes or a JSON error envelope with HTTP 200; the
body is read chunk by chunk and the download stops as soon as it passes the cap, so a
500 MB upload never lands in memory.
"""

from __future__ import annotations

from typing import Any

import httpx

from avatarbot.bot.user_media import MediaTooLarge

ERROR_BODY_BYTES = 64 * 1024  # a JSON error envelope is tiny


async def read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """The body, or MediaTooLarge once more than `max_bytes` arrived (or were announced)."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise MediaTooLarge(int(declared), max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise MediaTooLarge(size, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def is_json(response: httpx.Response) -> bool:
    ctype = response.headers.get("content-type", "").lower()
    return ctype.startswith("application/json") or ctype.startswith("text/plain")


async def error_envelope(response: httpx.Response) -> dict[str, Any]:
    """The platform's JSON error answer ({} when the body is no JSON object)."""
    import json

    try:
        raw = await read_capped(response, ERROR_BODY_BYTES)
        data = json.loads(raw or b"{}")
    except (MediaTooLarge, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
