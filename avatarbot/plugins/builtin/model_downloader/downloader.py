"""ModelDownloader: HTTP download with Range resume of a `.part` file and sha256 verification.

A download that breaks leaves `<name>.part`; the next call asks the server for the remaining
bytes (`Range: bytes=N-`) and appends them, or starts over when the server ignores Range.
Only a file whose sha256 matches is renamed to its final name.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from avatarbot.errors import AvatarbotError, ExternalServiceError, InvalidInput, NotFound

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
Progress = Callable[[int, int | None], None]  # (bytes so far, total or None)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _shared_download():
    """avatarbot.pipeline.download.download (the ModelManager's downloader) when present.

    Both implement the same `.part` + Range + sha256 scheme; the plugin prefers the shared one
    so there is one downloader in the product, and keeps its own for trees without it."""
    try:
        from avatarbot.pipeline.download import download  # type: ignore[attr-defined]
    except ImportError:
        return None
    return download


class ModelDownloader:
    def __init__(
        self,
        download_dir: Path,
        chunk_size: int = 1 << 20,
        verify_checksum: bool = True,
        timeout: float = 300,
        allowed_hosts: list[str] | None = None,
    ) -> None:
        self.download_dir = Path(download_dir)
        self.chunk_size = chunk_size
        self.verify_checksum = verify_checksum
        self.timeout = timeout
        self.allowed_hosts = [h.lower() for h in allowed_hosts or []]
        self.stats = {"downloads": 0, "resumed": 0, "cached": 0, "failed": 0, "bytes": 0}

    def _target(self, name: str) -> Path:
        if not NAME_RE.match(name) or name.endswith(".part"):
            raise InvalidInput(f"invalid model file name {name!r}")
        return self.download_dir / name

    def _check_url(self, url: str) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise InvalidInput("only http(s) URLs can be downloaded")
        if self.allowed_hosts and parsed.hostname.lower() not in self.allowed_hosts:
            raise InvalidInput(f"host {parsed.hostname} is not in allowed_hosts")

    def download(
        self,
        url: str,
        output_path: str,
        checksum: str | None = None,
        progress_callback: Progress | None = None,
    ) -> str:
        """Download `url` to download_dir/output_path; returns the final path."""
        self._check_url(url)
        target = self._target(output_path)
        expected = (checksum or "").strip().lower()
        if self.verify_checksum and not re.fullmatch(r"[0-9a-f]{64}", expected):
            raise InvalidInput("a sha256 checksum (64 hex digits) is required")
        if target.exists() and (not expected or _sha256(target) == expected):
            self.stats["cached"] += 1
            return str(target)
        self.download_dir.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        shared = _shared_download()
        if shared is not None:
            resuming = part.exists()
            try:
                shared(
                    url,
                    target,
                    sha256=expected or None,
                    progress=progress_callback,
                    retries=0,  # one attempt per tool call; the next call resumes
                    timeout=self.timeout,
                )
            except AvatarbotError:
                self.stats["failed"] += 1
                raise
            self.stats["resumed"] += int(resuming)
            self.stats["downloads"] += 1
            return str(target)
        try:
            self._fetch(url, part, progress_callback)
        except httpx.HTTPError as exc:
            self.stats["failed"] += 1
            # The .part file stays: the next call resumes from where this one stopped.
            raise ExternalServiceError(f"download of {target.name} interrupted: {exc}") from exc
        if expected and not hmac.compare_digest(_sha256(part), expected):
            part.unlink()
            self.stats["failed"] += 1
            raise InvalidInput(f"{target.name}: sha256 does not match the expected one; deleted")
        part.replace(target)
        self.stats["downloads"] += 1
        return str(target)

    def download_with_progress(
        self, url: str, output_path: str, checksum: str | None = None
    ) -> str:
        """download() with a tqdm progress bar on stderr (for the CLI)."""
        from tqdm import tqdm

        with tqdm(unit="B", unit_scale=True, desc=output_path) as bar:

            def show(done: int, total: int | None) -> None:
                bar.total = total
                bar.update(done - bar.n)

            return self.download(url, output_path, checksum, show)

    def _fetch(self, url: str, part: Path, progress: Progress | None) -> None:
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        timeout = httpx.Timeout(30.0, read=self.timeout)
        with httpx.stream("GET", url, headers=headers, timeout=timeout, follow_redirects=True) as r:
            if r.status_code == 416:  # nothing left to fetch: the part file is complete
                return
            r.raise_for_status()
            resumed = have > 0 and r.status_code == 206
            if have and not resumed:
                have = 0  # server ignored Range: start over
            else:
                self.stats["resumed"] += int(resumed)
            length = r.headers.get("Content-Length")
            total = have + int(length) if length and length.isdigit() else None
            with part.open("ab" if resumed else "wb") as out:
                for chunk in r.iter_bytes(self.chunk_size):
                    out.write(chunk)
                    have += len(chunk)
                    self.stats["bytes"] += len(chunk)
                    if progress:
                        progress(have, total)

    def list_models(self) -> list[dict[str, Any]]:
        if not self.download_dir.is_dir():
            return []
        return [
            {"name": p.name, "size": p.stat().st_size}
            for p in sorted(self.download_dir.iterdir())
            if p.is_file() and not p.name.endswith(".part")
        ]

    def get_model_path(self, name: str) -> str | None:
        target = self._target(name)
        return str(target) if target.is_file() else None

    def delete_model(self, name: str) -> bool:
        target = self._target(name)
        if not target.is_file():
            raise NotFound(f"model {name!r} not found")
        target.unlink()
        return True

    def get_stats(self) -> dict[str, Any]:
        return {**self.stats, "models": len(self.list_models())}
