"""Find plugins: folders (or .zip/.whl archives) holding a manifest, builtin and installed."""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from avatarbot.plugins.archive import locate_plugin_root, safe_extract, sha256_file
from avatarbot.plugins.manifest import PluginManifest, find_manifest, load_manifest

log = logging.getLogger(__name__)
BUILTIN_DIR = Path(__file__).parent / "builtin"
ARCHIVE_SUFFIXES = (".zip", ".whl")


@dataclass(frozen=True)
class DiscoveredPlugin:
    manifest: PluginManifest
    path: Path  # the folder that holds the manifest
    origin: str  # "builtin" | "user" | "archive"

    @property
    def name(self) -> str:
        return self.manifest.name


def fingerprint(folder: Path) -> str:
    """Changes whenever a file in the plugin folder is added, removed or modified."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        info = path.stat()
        digest.update(f"{path.relative_to(folder)}|{info.st_mtime_ns}|{info.st_size}\n".encode())
    return digest.hexdigest()


_digests: dict[tuple[str, int, int], str] = {}


def _archive_digest(archive: Path) -> str:
    """sha256 of an archive, remembered per (path, mtime, size): the watcher polls often."""
    info = archive.stat()
    key = (str(archive), info.st_mtime_ns, info.st_size)
    if key not in _digests:
        _digests[key] = sha256_file(archive)
    return _digests[key]


def _unpack_archive(archive: Path, cache_dir: Path) -> Path:
    """Extract an archive dropped into the plugins folder once, keyed by its content hash."""
    target = cache_dir / f"{archive.stem}-{_archive_digest(archive)[:16]}"
    if not target.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".unpack-"))
        try:
            safe_extract(archive, tmp)
            tmp.rename(target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return locate_plugin_root(target)


def _scan(folder: Path, origin: str, cache_dir: Path | None, problems: dict[str, str]) -> list:
    found: list[DiscoveredPlugin] = []
    if not folder.is_dir():
        return found
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith((".", "_")):
            continue
        try:
            if entry.is_dir() and find_manifest(entry):
                found.append(DiscoveredPlugin(load_manifest(entry), entry, origin))
            elif entry.is_file() and entry.suffix in ARCHIVE_SUFFIXES and cache_dir is not None:
                root = _unpack_archive(entry, cache_dir)
                found.append(DiscoveredPlugin(load_manifest(root), root, "archive"))
        except Exception as exc:
            # One broken plugin folder must not hide the others.
            problems[entry.name] = str(exc)
            log.warning("skipping plugin %s: %s", entry.name, exc)
    return found


def discover(
    builtin_dir: Path | None, plugins_dir: Path, cache_dir: Path
) -> tuple[dict[str, DiscoveredPlugin], dict[str, str]]:
    """All plugins by name (installed ones override builtin ones), and per-entry problems."""
    problems: dict[str, str] = {}
    result: dict[str, DiscoveredPlugin] = {}
    if builtin_dir is not None:
        for item in _scan(builtin_dir, "builtin", None, problems):
            result[item.name] = item
    for item in _scan(plugins_dir, "user", cache_dir, problems):
        if item.name in result:
            log.info("installed plugin %s overrides the builtin one", item.name)
        result[item.name] = item
    return result, problems
