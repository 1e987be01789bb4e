"""Plugin dependencies: semver-style constraints translated to `packaging` specifiers, load order.

Accepted constraint forms (all end up as `packaging.specifiers.SpecifierSet`s):
`^1.2.3` (npm caret), `~1.2` (npm tilde), `1.2 - 2.0` (hyphen range), `>=1.0 <2.0` or
`>=2,<3` (ranges), `==1.4`, `=1.4`, bare `1.4` (exact), `*` or nothing (any), and
alternatives joined with `||`. PEP 440 forms such as `~=1.2` pass through unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from avatarbot.errors import InvalidInput

_DEP_RE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_\-]*)\s*:?\s*(.*?)\s*$")
_OPERATOR_RE = re.compile(r"(===|==|!=|~=|>=|<=|>|<)\s*")


def _release(text: str) -> list[int]:
    """The numeric parts of a partial version ("1.2" -> [1, 2]); validates with packaging."""
    try:
        return list(Version(text).release)
    except InvalidVersion as exc:
        raise InvalidInput(f"not a version: {text!r}") from exc


def _caret(text: str) -> str:
    parts = _release(text)
    padded = [*parts, 0, 0][:3]
    # The upper bound bumps the left-most non-zero part among those given (npm semantics).
    for index, value in enumerate(padded[: max(len(parts), 1)]):
        if value != 0 or index == len(parts) - 1:
            upper = [*padded[:index], value + 1]
            break
    else:  # pragma: no cover - loop always breaks
        upper = [padded[0] + 1]
    return f">={text},<{'.'.join(map(str, upper))}"


def _tilde(text: str) -> str:
    parts = _release(text)
    upper = [parts[0] + 1] if len(parts) == 1 else [parts[0], parts[1] + 1]
    return f">={text},<{'.'.join(map(str, upper))}"


def _translate_one(alternative: str) -> SpecifierSet:
    text = alternative.strip()
    if text in ("", "*", "x", "latest"):
        return SpecifierSet("")
    hyphen = re.fullmatch(r"(\S+)\s+-\s+(\S+)", text)
    if hyphen:
        text = f">={hyphen.group(1)},<={hyphen.group(2)}"
    elif text.startswith("^"):
        text = _caret(text[1:].strip())
    elif text.startswith("~") and not text.startswith("~="):
        text = _tilde(text[1:].strip())
    elif text.startswith("=") and not text.startswith("=="):
        text = "==" + text[1:].strip()
    elif re.fullmatch(r"v?\d[\w.+-]*", text):
        text = "==" + text.lstrip("v")
    else:
        # ">=1.0 <2.0" and ">= 2, < 3": glue operators to versions, join the clauses by commas.
        text = _OPERATOR_RE.sub(lambda m: m.group(1), text)
        text = ",".join(part for part in re.split(r"[,\s]+", text) if part)
    try:
        return SpecifierSet(text)
    except InvalidSpecifier as exc:
        raise InvalidInput(f"invalid version constraint {alternative.strip()!r}") from exc


def translate_constraint(constraint: str) -> tuple[SpecifierSet, ...]:
    """One SpecifierSet per `||` alternative; a version satisfies the constraint if any matches."""
    return tuple(_translate_one(alt) for alt in constraint.split("||"))


@dataclass(frozen=True)
class PluginDependency:
    name: str
    constraint: str = ""
    specifiers: tuple[SpecifierSet, ...] = field(default=(SpecifierSet(""),), compare=False)

    @classmethod
    def parse(cls, dep_string: str) -> PluginDependency:
        match = _DEP_RE.match(dep_string or "")
        if not match:
            raise InvalidInput(f"invalid dependency {dep_string!r}: expected 'name <constraint>'")
        name, constraint = match.group(1), match.group(2)
        return cls(name=name, constraint=constraint, specifiers=translate_constraint(constraint))

    def check_version(self, version: str) -> bool:
        try:
            parsed = Version(version)
        except InvalidVersion:
            return False
        return any(spec.contains(parsed, prereleases=True) for spec in self.specifiers)

    def __str__(self) -> str:
        return f"{self.name}{self.constraint and ' ' + self.constraint}"


@dataclass
class _Node:
    version: str
    dependencies: list[PluginDependency]


class DependencyResolver:
    """Dependency graph of known plugins: validation, topological load order, cycles, trees."""

    def __init__(self) -> None:
        self._nodes: dict[str, _Node] = {}

    def add_plugin(self, name: str, version: str, dependencies: list[str]) -> None:
        self._nodes[name] = _Node(version, [PluginDependency.parse(d) for d in dependencies])

    def remove_plugin(self, name: str) -> None:
        self._nodes.pop(name, None)

    def __contains__(self, name: str) -> bool:
        return name in self._nodes

    def check_dependencies(self, plugin_name: str) -> tuple[bool, list[str]]:
        node = self._nodes.get(plugin_name)
        if node is None:
            return False, [f"plugin {plugin_name!r} is not known"]
        errors: list[str] = []
        for dep in node.dependencies:
            target = self._nodes.get(dep.name)
            if target is None:
                errors.append(f"{plugin_name} requires {dep.name!r}, which is not installed")
            elif not dep.check_version(target.version):
                errors.append(
                    f"{plugin_name} requires {dep.name} {dep.constraint}, "
                    f"but {dep.name} {target.version} is installed"
                )
        for cycle in self.find_cycles():
            if plugin_name in cycle:
                errors.append("dependency cycle: " + " -> ".join(cycle))
        return not errors, errors

    def find_cycles(self) -> list[list[str]]:
        """Each cycle once, as a closed path ["a", "b", "a"]."""
        cycles: list[list[str]] = []
        seen_sets: set[frozenset[str]] = set()
        state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
        path: list[str] = []

        def visit(name: str) -> None:
            state[name] = 1
            path.append(name)
            for dep in self._nodes[name].dependencies:
                if dep.name not in self._nodes:
                    continue
                if state.get(dep.name) == 1:
                    cycle = [*path[path.index(dep.name) :], dep.name]
                    key = frozenset(cycle)
                    if key not in seen_sets:
                        seen_sets.add(key)
                        cycles.append(cycle)
                elif dep.name not in state:
                    visit(dep.name)
            path.pop()
            state[name] = 2

        for name in sorted(self._nodes):
            if name not in state:
                visit(name)
        return cycles

    def resolve_load_order(self) -> tuple[bool, list[str], list[str]]:
        """(ok, order, errors): dependencies come before dependents; plugins that cannot load
        (missing/unsatisfied dependency, cycle, or depending on such a plugin) are left out."""
        errors: list[str] = ["dependency cycle: " + " -> ".join(c) for c in self.find_cycles()]
        broken = {n for n in self._nodes if not self._direct_ok(n, errors)}
        for cycle in self.find_cycles():
            broken.update(cycle)
        order: list[str] = []
        placed: set[str] = set()
        remaining = sorted(n for n in self._nodes if n not in broken)
        progress = True
        while remaining and progress:
            progress = False
            for name in list(remaining):
                deps = {d.name for d in self._nodes[name].dependencies}
                if deps & broken:
                    broken.add(name)
                    errors.append(f"{name} depends on a plugin that cannot be loaded")
                    remaining.remove(name)
                    progress = True
                elif deps <= placed:
                    order.append(name)
                    placed.add(name)
                    remaining.remove(name)
                    progress = True
        for name in remaining:  # only reachable through cycles already reported
            errors.append(f"{name} depends on a plugin in a dependency cycle")
        return not errors, order, errors

    def _direct_ok(self, name: str, errors: list[str]) -> bool:
        ok = True
        for dep in self._nodes[name].dependencies:
            target = self._nodes.get(dep.name)
            if target is None:
                errors.append(f"{name} requires {dep.name!r}, which is not installed")
                ok = False
            elif not dep.check_version(target.version):
                errors.append(
                    f"{name} requires {dep.name} {dep.constraint}, "
                    f"but {dep.name} {target.version} is installed"
                )
                ok = False
        return ok

    def get_dependency_tree(self, plugin_name: str) -> dict[str, list[str]]:
        """Every plugin reachable from `plugin_name` mapped to its direct dependencies."""
        tree: dict[str, list[str]] = {}
        stack = [plugin_name]
        while stack:
            name = stack.pop()
            if name in tree:
                continue
            node = self._nodes.get(name)
            tree[name] = [d.name for d in node.dependencies] if node else []
            stack.extend(tree[name])
        return tree
