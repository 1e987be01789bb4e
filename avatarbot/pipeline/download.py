"""Resumable HTTP downloads for model files (seed plugin `model_downloader`).

Bytes stream into `<dest>.part`; an interrupted transfer resumes from the part's size with a
`Range` request; the finished file is sha256-checked and only then atomically renamed into
place, so a half-written or corrupted file never sits under the real name.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from avatarbot.errors import ExternalServiceError, InvalidInput

if TYPE_CHECKING:  # httpx is imported when a download runs: not on every CLI start
    import httpx

DownloadProgress = Callable[[int, int | None], None]  # (bytes done, total or None)
CHUNK = 1 << 16


class DownloadError(ExternalServiceError):
    """The transfer failed; a `.part` file may be left for a later resume."""


class ChecksumMismatch(InvalidInput):
    """The downloaded or placed file's sha256 is not the catalogue's."""


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def tqdm_progress(label: str) -> DownloadProgress:
    """A progress callback drawing a tqdm bar (created on the first call, when the total is known)."""
    from tqdm import tqdm

    state: dict[str, tqdm] = {}

    def update(done: int, total: int | None) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(
                total=total, initial=done, unit="B", unit_scale=True, desc=label
            )
        bar.update(done - bar.n)
        if total is not None and done >= total:
            bar.close()

    return update


def _fetch_into_part(
    client: httpx.Client, url: str, part: Path, progress: DownloadProgress | None
) -> None:
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with client.stream("GET", url, headers=headers) as resp:
        if resp.status_code == 416:  # nothing left to send: the part is already complete
            return
        if resp.status_code >= 400:
            raise DownloadError(f"download failed: HTTP {resp.status_code} for {_safe(url)}")
        if offset and resp.status_code != 206:  # server ignored Range: start over
            offset = 0
        length = resp.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        with open(part, "ab" if offset else "wb") as fh:
            done = offset
            if progress:
                progress(done, total)
            for block in resp.iter_bytes():  # unchunked: bytes before a drop still land
                fh.write(block)
                done += len(block)
                if progress:
                    progress(done, total)
        if total is not None and done < total:
            import httpx

            raise httpx.RemoteProtocolError(f"connection closed at {done} of {total} bytes")


def _safe(url: str) -> str:
    """URL without query string: signed links carry tokens that must not reach logs."""
    return url.split("?", 1)[0]


def download(
    url: str,
    dest: str | Path,
    *,
    sha256: str | None = None,
    progress: DownloadProgress | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    client: httpx.Client | None = None,
) -> Path:
    """Download `url` to `dest`, resuming a previous `.part`; verify sha256; rename atomically."""
    import httpx

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    own_client = client is None
    client = client or httpx.Client(timeout=timeout, follow_redirects=True)
    try:
        for attempt in range(retries + 1):
            try:
                _fetch_into_part(client, url, part, progress)
                break
            except (httpx.TransportError, httpx.RemoteProtocolError) as exc:
                if attempt == retries:
                    size = part.stat().st_size if part.exists() else 0
                    raise DownloadError(
                        f"download of {dest.name} interrupted after {size} bytes ({exc}); "
                        "run it again to resume"
                    ) from exc
    finally:
        if own_client:
            client.close()
    if sha256:
        actual = file_sha256(part)
        if actual != sha256.lower():
            part.unlink(missing_ok=True)  # a wrong file cannot be resumed into a right one
            raise ChecksumMismatch(
                f"{dest.name}: sha256 {actual[:12]}… does not match the expected {sha256[:12]}…"
            )
    os.replace(part, dest)
    return dest
