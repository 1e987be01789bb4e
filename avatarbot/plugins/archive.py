"""Safe extraction of plugin archives (.zip, .whl, .tar.gz): every member is checked first.

Refused before anything is written: absolute paths, `..` components, drive letters,
symlinks/hardlinks/devices, too many members or too many bytes (zip bombs). The sizes an
archive's directory declares are not trusted while extracting: bytes are counted as they are
read, and a member that is bigger than declared (or corrupt) is a clear 4xx, never a 500.
"""

from __future__ import annotations

import hashlib
import hmac
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from avatarbot.errors import InvalidInput, TooLarge
from avatarbot.plugins.manifest import find_manifest

MAX_MEMBERS = 5000
MAX_TOTAL_BYTES = 500 * 1024 * 1024
CHUNK_BYTES = 1 << 20
# What a lying or broken member raises from zipfile/tarfile/zlib while it is read.
_CORRUPT = (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, ValueError)


@dataclass(frozen=True)
class _Member:
    name: str
    is_dir: bool
    size: int


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> str:
    actual = sha256_file(path)
    if not expected or not hmac.compare_digest(actual, expected.strip().lower()):
        raise InvalidInput("archive sha256 does not match the expected checksum")
    return actual


def _safe_name(name: str) -> str:
    if "\\" in name or "\x00" in name:
        raise InvalidInput(f"archive member {name!r} has an unsafe name")
    pure = PurePosixPath(name)
    if pure.is_absolute() or (pure.parts and pure.parts[0].endswith(":")):
        raise InvalidInput(f"archive member {name!r} has an absolute path")
    if ".." in pure.parts:
        raise InvalidInput(f"archive member {name!r} escapes the plugin folder")
    return str(pure)


def _zip_members(archive: zipfile.ZipFile) -> list[_Member]:
    members = []
    for info in archive.infolist():
        # Unix type bits live in the high word; zips made elsewhere leave them 0 (= plain).
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise InvalidInput(f"archive member {info.filename!r} is a link or special file")
        members.append(_Member(_safe_name(info.filename), info.is_dir(), info.file_size))
    return members


def _tar_members(archive: tarfile.TarFile) -> list[_Member]:
    members = []
    for info in archive.getmembers():
        if not (info.isfile() or info.isdir()):
            raise InvalidInput(f"archive member {info.name!r} is a link or special file")
        members.append(_Member(_safe_name(info.name), info.isdir(), info.size))
    return members


def _check_limits(members: list[_Member]) -> None:
    if len(members) > MAX_MEMBERS:
        raise TooLarge(f"archive has more than {MAX_MEMBERS} members")
    if sum(m.size for m in members) > MAX_TOTAL_BYTES:
        raise TooLarge("archive expands to more than 500 MB")


class _Budget:
    """Bytes left for the whole archive (the declared total may be a lie as well)."""

    def __init__(self) -> None:
        self.left = MAX_TOTAL_BYTES


def _copy_member(src: BinaryIO, target: Path, member: _Member, budget: _Budget) -> None:
    """Copy one member, stopping as soon as it exceeds its declared size or the budget."""
    written = 0
    try:
        with target.open("wb") as out:
            while chunk := src.read(CHUNK_BYTES):
                written += len(chunk)
                if written > member.size:
                    raise TooLarge(
                        f"archive member {member.name!r} is larger than its declared size"
                    )
                budget.left -= len(chunk)
                if budget.left < 0:
                    raise TooLarge("archive expands to more than 500 MB")
                out.write(chunk)
    except _CORRUPT as exc:
        raise InvalidInput(
            f"archive member {member.name!r} is corrupt (size or checksum does not match)"
        ) from exc
    if written != member.size:
        raise InvalidInput(f"archive member {member.name!r} is shorter than its declared size")


def _write_inside(dest: Path, name: str) -> Path:
    target = (dest / name).resolve()
    if dest.resolve() not in target.parents:
        raise InvalidInput(f"archive member {name!r} escapes the plugin folder")
    return target


def safe_extract(archive_path: Path, dest: Path) -> None:
    """Extract into `dest` (an empty folder) after validating every member name and type."""
    dest.mkdir(parents=True, exist_ok=True)
    budget = _Budget()
    if zipfile.is_zipfile(archive_path):
        try:
            archive = zipfile.ZipFile(archive_path)
        except _CORRUPT as exc:
            raise InvalidInput("the zip archive is corrupt") from exc
        with archive:
            members = _zip_members(archive)
            _check_limits(members)
            for info, member in zip(archive.infolist(), members, strict=True):
                target = _write_inside(dest, member.name)
                if member.is_dir:
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    src = archive.open(info)
                except _CORRUPT as exc:
                    raise InvalidInput(f"archive member {member.name!r} is corrupt") from exc
                with src:
                    _copy_member(src, target, member, budget)
        return
    try:
        archive = tarfile.open(archive_path, "r:*")  # noqa: SIM115 - closed below
    except tarfile.TarError as exc:
        raise InvalidInput("not a .zip, .whl or .tar.gz archive") from exc
    with archive:
        members = _tar_members(archive)
        _check_limits(members)
        for info, member in zip(archive.getmembers(), members, strict=True):
            target = _write_inside(dest, member.name)
            if member.is_dir:
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                src = archive.extractfile(info)
            except _CORRUPT as exc:
                raise InvalidInput(f"archive member {info.name!r} is corrupt") from exc
            if src is None:
                raise InvalidInput(f"archive member {info.name!r} cannot be read")
            with src:
                _copy_member(src, target, member, budget)


def locate_plugin_root(folder: Path) -> Path:
    """The folder holding the manifest: the archive root or exactly one first-level folder."""
    if find_manifest(folder):
        return folder
    candidates = [p for p in folder.iterdir() if p.is_dir() and find_manifest(p)]
    if len(candidates) != 1:
        raise InvalidInput("archive must contain exactly one plugin manifest (plugin.yaml/json)")
    return candidates[0]
