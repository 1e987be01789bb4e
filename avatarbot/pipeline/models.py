"""`ModelManager` (seed API): catalogue, on-disk cache, verification, loaded-model LRU, device info.

Files live at `<cache_dir>/<backend>/<file>` (cache_dir is normally DATA_DIR/models); a model can
instead be pointed to by explicit path. Nothing is downloaded unless `download()` is called.
torch is imported only for device queries, and only when installed.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avatarbot.errors import InvalidInput, NotFound, PermissionDenied
from avatarbot.pipeline.download import DownloadProgress, download, file_sha256
from avatarbot.pipeline.model_catalogue import DEFAULT_CATALOGUE, ModelFile, ModelInfo
from avatarbot.pipeline.types import Availability

# pip name -> import name, where they differ
IMPORT_NAMES = {"coqui-tts": "TTS", "piper-tts": "piper"}


@dataclass(frozen=True)
class FileCheck:
    model: str
    file: str
    path: Path
    ok: bool
    problem: str = ""  # "missing", "size ...", "sha256 ..."


class ModelManager:
    def __init__(
        self,
        cache_dir: str | Path,
        device: str = "auto",
        max_cache_size_gb: float = 4.0,
        *,
        commercial: bool = False,
        catalogue: tuple[ModelInfo, ...] | list[ModelInfo] = DEFAULT_CATALOGUE,
        paths: dict[str, str | Path] | None = None,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.max_cache_bytes = int(max_cache_size_gb * 1024**3)
        self.commercial = commercial
        self._models: dict[str, dict[str, ModelInfo]] = {}
        self._paths: dict[str, Path] = {k: Path(v) for k, v in (paths or {}).items()}
        self._loaded: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._lock = threading.RLock()
        # "auto" is resolved on first use: picking imports torch, which server start-up avoids.
        self._device: str | None = None if device == "auto" else device
        self.loads = 0  # networks loaded (misses) and ...
        self.hits = 0  # ... requests served from the LRU, for /health and tests
        self.evictions = 0
        for info in catalogue:
            self.register_model(info)

    # ---- catalogue ---------------------------------------------------------------------
    def register_model(self, model_info: ModelInfo) -> None:
        self._models.setdefault(model_info.name, {})[model_info.version] = model_info

    def get_model_info(self, name: str, version: str | None = None) -> ModelInfo | None:
        versions = self._models.get(name)
        if not versions:
            return None
        if version is None:
            return versions[max(versions, key=_version_key)]
        return versions.get(version)

    def _info(self, name: str, version: str | None = None) -> ModelInfo:
        info = self.get_model_info(name, version)
        if info is None:
            known = ", ".join(sorted(self._models))
            raise NotFound(f"unknown model {name!r} (known: {known})")
        return info

    def list_models(self) -> list[ModelInfo]:
        return [self.get_model_info(name) for name in sorted(self._models)]  # type: ignore[misc]

    def set_model_path(self, name: str, path: str | Path) -> None:
        """Use a file placed elsewhere (single-file models) instead of the cache layout."""
        self._info(name)
        self._paths[name] = Path(path)

    # ---- files -------------------------------------------------------------------------
    def file_path(self, info: ModelInfo, file: ModelFile) -> Path:
        override = self._paths.get(info.name)
        if override is not None and len(info.files) == 1:
            return override
        return self.cache_dir / info.backend / file.name

    def get_model_path(self, name: str, version: str | None = None) -> Path | None:
        """Path of the model's main file when every file of it is present, else None."""
        info = self.get_model_info(name, version)
        if info is None:
            return None
        paths = [self.file_path(info, f) for f in info.files]
        return paths[0] if all(p.is_file() for p in paths) else None

    def is_model_cached(self, name: str, version: str | None = None) -> bool:
        return self.get_model_path(name, version) is not None

    def verify(self, name: str | None = None, *, deep: bool = True) -> list[FileCheck]:
        """Check presence, size and (deep) sha256 of one model's files, or of every present model."""
        infos = [self._info(name)] if name else self.list_models()
        checks: list[FileCheck] = []
        for info in infos:
            for file in info.files:
                path = self.file_path(info, file)
                if not path.is_file():
                    if name:  # unnamed verify skips models that are simply not installed
                        checks.append(FileCheck(info.name, file.name, path, False, "missing"))
                    continue
                checks.append(self._check_file(info, file, path, deep))
        return checks

    @staticmethod
    def _check_file(info: ModelInfo, file: ModelFile, path: Path, deep: bool) -> FileCheck:
        size = path.stat().st_size
        if file.size is not None and size != file.size:
            problem = f"size {size} bytes, expected {file.size}: corrupted or incomplete"
            return FileCheck(info.name, file.name, path, False, problem)
        if deep and file.sha256:
            digest = file_sha256(path)
            if digest != file.sha256:
                problem = f"sha256 {digest[:12]}… != expected {file.sha256[:12]}…: corrupted"
                return FileCheck(info.name, file.name, path, False, problem)
        return FileCheck(info.name, file.name, path, True)

    def status(self, name: str) -> Availability:
        """Whether the model can be used here; the reason names the missing file or package."""
        info = self._info(name)
        if self.commercial and not info.commercial_use:
            return Availability.no(
                f"licence {info.license} forbids commercial use and this deployment is commercial"
            )
        for dep in info.dependencies:
            if importlib.util.find_spec(IMPORT_NAMES.get(dep, dep)) is None:
                return Availability.no(f"python package {dep} is not installed (pip install {dep})")
        for file in info.files:
            path = self.file_path(info, file)
            if not path.is_file():
                return Availability.no(
                    f"missing {path} (run `avatarbot models download {name}`"
                    + (")" if file.url else " or place it by hand)")
                )
        return Availability.yes()

    def check_allowed(self, name: str) -> None:
        info = self._info(name)
        if self.commercial and not info.commercial_use:
            raise PermissionDenied(
                f"model {name} is licensed {info.license} (non-commercial); "
                "this deployment is configured as commercial"
            )

    def download(
        self,
        name: str,
        *,
        url: str | None = None,
        progress: Callable[[ModelFile], DownloadProgress | None] | None = None,
    ) -> list[Path]:
        """Fetch the model's missing files into the cache; present files are only verified."""
        info = self._info(name)
        self.check_allowed(name)
        out: list[Path] = []
        for file in info.files:
            path = self.file_path(info, file)
            source = url if (url and len(info.files) == 1) else file.url
            if path.is_file():
                out.append(path)
                continue
            if not source:
                raise NotFound(
                    f"no download URL is known for {file.name}: place it at {path} "
                    f"(from {info.source_url}) or pass --url"
                )
            if file.size and not disk_usage_ok(path, file.size):
                raise InvalidInput(f"not enough disk space for {file.name} ({file.size} bytes)")
            cb = progress(file) if progress else None
            out.append(download(source, path, sha256=file.sha256, progress=cb))
        return out

    def delete_model(self, name: str, version: str | None = None) -> bool:
        info = self.get_model_info(name, version)
        if info is None:
            return False
        removed = False
        for file in info.files:
            path = self.cache_dir / info.backend / file.name  # never delete user-pointed files
            if path.is_file():
                path.unlink()
                removed = True
        self.unload(info.key)
        return removed

    def clear_cache(self) -> None:
        """Forget every loaded model (disk files stay)."""
        with self._lock:
            self._loaded.clear()
        self._release_accelerator_memory()

    # ---- loaded models (LRU by memory budget) ------------------------------------------
    def get_loaded(
        self, key: str, loader: Callable[[], Any], size_bytes: int | Callable[[Any], int]
    ) -> Any:
        """Return the cached object for `key`, loading it (and evicting LRU ones) when needed.

        `size_bytes` may be a function of the loaded object (its measured size)."""
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                self.hits += 1
                return self._loaded[key][0]
            obj = loader()
            self.loads += 1
            size = size_bytes(obj) if callable(size_bytes) else size_bytes
            self._loaded[key] = (obj, int(size))
            evicted = False
            while self._loaded_bytes() > self.max_cache_bytes and len(self._loaded) > 1:
                self._loaded.popitem(last=False)
                self.evictions += 1
                evicted = True
        if evicted:
            self._release_accelerator_memory()
        return obj

    def unload(self, key: str) -> bool:
        with self._lock:
            return self._loaded.pop(key, None) is not None

    def loaded_keys(self) -> list[str]:
        with self._lock:
            return list(self._loaded)

    def _loaded_bytes(self) -> int:
        return sum(size for _, size in self._loaded.values())

    def get_cache_stats(self) -> dict[str, Any]:
        disk = (
            sorted(p for p in self.cache_dir.rglob("*") if p.is_file())
            if self.cache_dir.exists()
            else []
        )
        with self._lock:
            return {
                "cache_dir": str(self.cache_dir),
                "disk_files": len(disk),
                "disk_bytes": sum(p.stat().st_size for p in disk),
                "loaded_models": list(self._loaded),
                "loaded_bytes": self._loaded_bytes(),
                "max_cache_bytes": self.max_cache_bytes,
                "loads": self.loads,
                "hits": self.hits,
                "evictions": self.evictions,
            }

    # ---- device ------------------------------------------------------------------------
    def get_device(self) -> str:
        """The device networks load on: the configured one, or cuda -> mps -> cpu ("auto")."""
        with self._lock:
            if self._device is None:
                self._device = self._pick_device()
            return self._device

    def known_device(self) -> str | None:
        """The device if already picked; None while "auto" waits for the first load."""
        return self._device

    def resolve_device(self, device: str) -> str:
        """A backend's own device setting, with "auto" meaning this manager's device."""
        return self.get_device() if device in ("", "auto") else device

    def set_device(self, device: str) -> None:
        if device not in {"cpu", "cuda", "mps"} and not device.startswith("cuda:"):
            raise ValueError(f"unknown device {device!r}")
        self._device = device

    @staticmethod
    def _torch() -> Any | None:
        if importlib.util.find_spec("torch") is None:
            return None
        import torch

        return torch

    def _pick_device(self) -> str:
        return pick_device()

    def get_device_info(self) -> dict[str, Any]:
        import psutil

        mem = psutil.virtual_memory()
        info: dict[str, Any] = {
            "device": self.get_device(),
            "cpu_count": psutil.cpu_count(),
            "ram_total_mb": mem.total // 2**20,
            "ram_available_mb": mem.available // 2**20,
            "torch": None,
            "cuda": False,
            "mps": False,
            "gpus": [],
        }
        torch = self._torch()
        if torch is None:
            return info
        info["torch"] = torch.__version__
        mps = getattr(torch.backends, "mps", None)
        info["mps"] = bool(mps is not None and mps.is_available())
        if torch.cuda.is_available():
            info["cuda"] = True
            for idx in range(torch.cuda.device_count()):
                free, total = torch.cuda.mem_get_info(idx)
                info["gpus"].append(
                    {
                        "index": idx,
                        "name": torch.cuda.get_device_name(idx),
                        "memory_total_mb": total // 2**20,
                        "memory_free_mb": free // 2**20,
                    }
                )
        return info

    @staticmethod
    def _release_accelerator_memory() -> None:
        torch = sys.modules.get("torch")  # only if something already imported it
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()


def pick_device() -> str:
    """cuda, else mps, else cpu (cpu when torch is not installed)."""
    if importlib.util.find_spec("torch") is None:
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def _version_key(version: str) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in version.split("."))


def disk_usage_ok(path: Path, needed_bytes: int) -> bool:
    """Whether `path`'s filesystem has room for a download of `needed_bytes` (+10% slack)."""
    target = path if path.exists() else path.parent
    while not target.exists():
        target = target.parent
    return shutil.disk_usage(target).free > needed_bytes * 1.1


def network_bytes(runner: Any, fallback: int) -> int:
    """Memory a loaded torch network holds (parameters + buffers); else `fallback` (the file
    size: an ONNX session, or a checkpoint whose optimizer state is not loaded anyway)."""
    module = getattr(runner, "module", None)
    tensors = getattr(module, "parameters", None), getattr(module, "buffers", None)
    if not all(callable(t) for t in tensors):
        return fallback
    total = 0
    for get in tensors:
        total += sum(t.numel() * t.element_size() for t in get())  # type: ignore[misc]
    return total or fallback


class NetworkSlot:
    """Where a neural backend keeps its loaded network.

    With a ModelManager it asks the shared LRU on every call (holding the network here would
    defeat eviction); without one it loads once and keeps it."""

    def __init__(self, model_cache: ModelManager | None = None) -> None:
        self.model_cache = model_cache
        self._network: Any = None
        self._lock = threading.Lock()

    def device(self, device: str) -> str:
        """Resolve a backend's device setting: "auto" -> the manager's pick (cuda, mps, cpu)."""
        if device not in ("", "auto"):
            return device
        if self.model_cache is not None:
            return str(self.model_cache.get_device())
        return pick_device()

    def get(self, key: str, path: Path, load: Callable[[], Any]) -> Any:
        if self.model_cache is not None:
            file_bytes = path.stat().st_size
            return self.model_cache.get_loaded(
                key, load, lambda net: network_bytes(net, file_bytes)
            )
        with self._lock:
            if self._network is None:
                self._network = load()
            return self._network
