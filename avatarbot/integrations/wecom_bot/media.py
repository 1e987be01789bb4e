"""Download a user's image/file/video from a WeCom AI-bot message and decrypt it.

URLs live 5 minutes: download at once. The whole file is AES-256-CBC (PKCS#7 to 32, no
header); the key is the URL's `aeskey` on the long connection (Attachment.name) or the
bot's EncodingAESKey in webhook mode. The name comes from Content-Disposition.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from urllib.parse import unquote

from avatarbot.errors import ExternalServiceError, InvalidInput
from avatarbot.integrations.wecom_bot.crypto import aes_decrypt, aes_key

MAX_MEDIA_BYTES = 20 * 1024 * 1024
_FILENAME_STAR = re.compile(r"filename\*=UTF-8''([^;]+)", re.IGNORECASE)
_FILENAME = re.compile(r'filename="?([^";]+)"?', re.IGNORECASE)


def filename_of(disposition: str, fallback: str) -> str:
    match = _FILENAME_STAR.search(disposition) or _FILENAME.search(disposition)
    name = unquote(match.group(1)) if match else fallback
    return Path(name.replace("\\", "/")).name or fallback  # never a path from the server


async def download_media(
    url: str, key: str, dest_dir: Path, *, max_bytes: int = MAX_MEDIA_BYTES, timeout_s: float = 30
) -> Path:
    """The decrypted file under dest_dir; InvalidInput for too big or undecryptable media."""
    import httpx

    try:
        secret = aes_key(key)
    except InvalidInput as exc:
        raise InvalidInput("the file came without a usable key") from exc
    try:
        async with (
            httpx.AsyncClient(timeout=timeout_s, follow_redirects=True) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise ExternalServiceError(
                    f"WeCom media download failed (HTTP {response.status_code})"
                )
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data.extend(chunk)
                if len(data) > max_bytes + 32:
                    raise InvalidInput(f"the file is over {max_bytes // 2**20} MB")
            disposition = response.headers.get("content-disposition", "")
    except httpx.HTTPError as exc:
        raise ExternalServiceError(f"WeCom media download failed ({type(exc).__name__})") from exc
    try:
        plain = await asyncio.to_thread(aes_decrypt, secret, bytes(data))
    except InvalidInput as exc:
        raise InvalidInput("the file could not be decrypted (wrong key or damaged)") from exc
    path = dest_dir / filename_of(disposition, "media.bin")
    await asyncio.to_thread(_write, path, plain)
    return path


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
