"""model_downloader: resumable, verified downloads of model files for agents with "models"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avatarbot.plugins.base import Plugin
from avatarbot.tools import ToolSpec

from .downloader import ModelDownloader


class ModelDownloaderPlugin(Plugin):
    downloader: ModelDownloader

    def on_load(self, context) -> None:
        super().on_load(context)
        folder = self.config.get("download_dir") or str(context.media_dir.parent / "models")
        self.downloader = ModelDownloader(
            Path(folder),
            chunk_size=self.config.get("chunk_size"),
            verify_checksum=self.config.get("verify_checksum"),
            timeout=self.config.get("timeout"),
            allowed_hosts=self.config.get("allowed_hosts"),
        )

    def get_state(self) -> dict[str, Any]:
        return {"stats": dict(self.downloader.stats)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.downloader.stats.update(state.get("stats", {}))

    def _download(self, url: str, name: str, sha256: str | None = None) -> dict[str, Any]:
        path = self.downloader.download(url, name, sha256)
        return {"path": path, "size": Path(path).stat().st_size}

    def tools(self) -> list[ToolSpec]:
        name = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$"}
        return [
            self.tool(
                "download",
                "Download a model file (resumes a broken download) and verify its sha256.",
                self._download,
                {
                    "url": {"type": "string", "format": "uri"},
                    "name": name,
                    "sha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"},
                },
                ["url", "name", "sha256"],
            ),
            self.tool(
                "list",
                "Model files in the download folder with their sizes.",
                lambda: {"models": self.downloader.list_models()},
            ),
            self.tool(
                "delete",
                "Delete a downloaded model file.",
                lambda name: {"deleted": self.downloader.delete_model(name)},
                {"name": name},
                ["name"],
            ),
        ]
