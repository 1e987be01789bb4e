"""Reading uploads with a size cap, so a huge body is refused without filling memory."""

from __future__ import annotations

from fastapi import Request, UploadFile

from avatarbot.errors import InvalidInput, TooLarge

CHUNK = 1024 * 1024


async def read_upload(upload: UploadFile, *, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while chunk := await upload.read(CHUNK):
        total += len(chunk)
        if total > max_bytes:
            raise TooLarge(f"upload too large (limit {max_bytes // (1024 * 1024)} MB)")
        chunks.append(chunk)
    if total == 0:
        raise InvalidInput("the uploaded file is empty")
    return b"".join(chunks)


async def read_body(request: Request, *, max_bytes: int) -> bytes:
    """The raw request body, refused (TooLarge) as soon as it passes `max_bytes`.

    request.body() would first hold all of a hostile multi-GB body in memory.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise TooLarge(f"body too large (limit {max_bytes} bytes)")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > max_bytes:
            raise TooLarge(f"body too large (limit {max_bytes} bytes)")
        chunks.append(chunk)
    return b"".join(chunks)
