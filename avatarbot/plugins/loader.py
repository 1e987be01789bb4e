"""Import a plugin folder as a fresh package under a unique module name, and forget it again.

Each load gets its own top-level name (`_avatarbot_plugin_<name>_<n>`), so a reload never
sees the previous version's modules, and sources are compiled straight from disk (no .pyc),
so an edit within the same second as the previous load is still picked up.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import itertools
import sys
import threading
from pathlib import Path
from types import ModuleType

PREFIX = "_avatarbot_plugin_"
_counter = itertools.count(1)
_lock = threading.Lock()


class _FreshSourceLoader(importlib.machinery.SourceFileLoader):
    def get_code(self, fullname: str):  # type: ignore[override]
        path = self.get_filename(fullname)
        return compile(self.get_data(path), path, "exec", dont_inherit=True)


class _PluginFinder(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.roots: dict[str, Path] = {}

    def find_spec(self, fullname, path=None, target=None):  # type: ignore[override]
        root_name, _, rest = fullname.partition(".")
        folder = self.roots.get(root_name)
        if folder is None:
            return None
        base = folder.joinpath(*rest.split(".")) if rest else folder
        init = base / "__init__.py"
        if base.is_dir():
            origin = init if init.is_file() else None
            if origin is None:  # a folder without __init__.py still works as a package
                spec = importlib.machinery.ModuleSpec(fullname, None, is_package=True)
                spec.submodule_search_locations = [str(base)]
                return spec
            return importlib.util.spec_from_file_location(
                fullname,
                origin,
                loader=_FreshSourceLoader(fullname, str(origin)),
                submodule_search_locations=[str(base)],
            )
        source = base.with_suffix(".py")
        if source.is_file():
            return importlib.util.spec_from_file_location(
                fullname, source, loader=_FreshSourceLoader(fullname, str(source))
            )
        return None


_finder = _PluginFinder()


def _ensure_finder() -> None:
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def import_plugin(plugin_name: str, folder: Path, module: str) -> tuple[str, ModuleType]:
    """Import `module` (dotted, relative to `folder`); returns (package name, module)."""
    with _lock:
        _ensure_finder()
        package = f"{PREFIX}{plugin_name}_{next(_counter)}"
        _finder.roots[package] = folder.resolve()
    try:
        importlib.import_module(package)
        return package, importlib.import_module(f"{package}.{module}")
    except BaseException:
        forget_plugin(package)
        raise


def forget_plugin(package: str) -> None:
    """Drop every module of one load from sys.modules so it can be garbage collected."""
    with _lock:
        _finder.roots.pop(package, None)
        for key in [k for k in sys.modules if k == package or k.startswith(package + ".")]:
            del sys.modules[key]


def loaded_packages() -> list[str]:
    return sorted(_finder.roots)
