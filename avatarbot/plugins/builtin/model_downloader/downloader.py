"""ModelDownloader: the plugin face of avatarbot.pipeline.download (the product's one downloader).

A download that breaks leaves `<name>.part`; the next call asks the server for the remaining
bytes (`Range: bytes=N-`) and appends them, or starts over when the server ignores Range.
Only a file whose sha256 matches is renamed to its final name. This class adds what a tool
call needs around it: safe file names, allowed hosts, a required checksum, and stats.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from avatarbot.errors import AvatarbotError, InvalidInput, NotFound
from avatarbot.pipeline.download import download, file_sha256, part_path

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
Progress = Callable[[int, int | None], None]  # (bytes so far, total or None)


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
        # Kept for the config schema; the shared download streams blocks as they arrive.
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
        if target.exists() and (not expected or file_sha256(target) == expected):
            self.stats["cached"] += 1
            return str(target)
        self.download_dir.mkdir(parents=True, exist_ok=True)
        resuming = part_path(target).exists()
        try:
            download(
                url,
                target,
                sha256=expected or None,
                progress=self._counting(progress_callback),
                retries=0,  # one attempt per tool call; the next call resumes
                timeout=self.timeout,
            )
        except AvatarbotError:
            self.stats["failed"] += 1
            raise
        self.stats["resumed"] += int(resuming)
        self.stats["downloads"] += 1
        return str(target)

    def _counting(self, progress: Progress | None) -> Progress:
        """Wrap `progress` so stats["bytes"] counts the bytes this call transferred."""
        last: int | None = None

        def update(done: int, total: int | None) -> None:
            nonlocal last
            if last is not None:  # the first report is the resume offset, not new bytes
                self.stats["bytes"] += max(0, done - last)
            last = done
            if progress:
                progress(done, total)

        return update

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
