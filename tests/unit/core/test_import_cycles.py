"""No import circles among the pipeline's, the jobs' and the services' modules.

Every `import` counts, also those inside functions (they still run, just later); only
`if TYPE_CHECKING:` blocks are left out. Two circles used to exist:
pipeline/service -> services -> jobs/executor -> jobs/runner -> jobs/handlers -> pipeline/tasks
-> pipeline/voice_task -> pipeline/service, and pipeline/neural_status <-> tts/*, sadtalker.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "avatarbot"
# The circles must not come back anywhere these packages take part.
CHECKED = ("avatarbot.pipeline", "avatarbot.jobs", "avatarbot.services", "avatarbot.app")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    """The avatarbot modules one module imports (skipping `if TYPE_CHECKING:` blocks)."""

    def __init__(self, modules: dict[str, Path], package: str) -> None:
        self.modules = modules
        self.package = package
        self.found: set[str] = set()

    def resolve(self, name: str) -> str | None:
        while name and name not in self.modules:
            name = name.rpartition(".")[0]
        return name or None

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if (found := self.resolve(alias.name)) is not None:
                self.found.add(found)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            parts = self.package.split(".")
            anchor = parts[: len(parts) - (node.level - 1)]
            base = ".".join([*anchor, *([node.module] if node.module else [])])
        for alias in node.names:
            sub = f"{base}.{alias.name}"  # `from pkg import submodule` imports the submodule
            found = sub if sub in self.modules else self.resolve(base)
            if found is not None:
                self.found.add(found)


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> avatarbot modules it imports."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        visitor = _Imports(modules, package)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8")))
        # Importing a submodule runs its parent packages first: not a circle by itself.
        graph[module] = {d for d in visitor.found if d != module and not module.startswith(d + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_the_detector_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_the_graph_sees_imports_inside_functions_but_not_type_checking() -> None:
    graph = import_graph(_modules())
    assert "avatarbot.pipeline.neural_status" in graph["avatarbot.pipeline.neural"]
    # pipeline/service.py imports Services only for type checking
    assert "avatarbot.services" not in graph["avatarbot.pipeline.service"]
    # a function-level import: the bootstrap registers the handlers
    assert "avatarbot.pipeline.tasks" in graph["avatarbot.pipeline.bootstrap"]


@pytest.mark.parametrize("prefix", CHECKED)
def test_no_import_circles(prefix: str) -> None:
    circles = [c for c in cycles(import_graph(_modules())) if any(m.startswith(prefix) for m in c)]
    assert circles == [], f"import circles through {prefix}: {circles}"


def test_jobs_reach_the_pipeline_only_through_the_bootstrap() -> None:
    graph = import_graph(_modules())
    upward = {
        (module, dep)
        for module, deps in graph.items()
        if module.startswith("avatarbot.jobs")
        for dep in deps
        if dep.startswith("avatarbot.pipeline")
    }
    # The Celery worker process starts there: it runs the bootstrap, like serve and the CLI.
    assert upward == {("avatarbot.jobs.celery_app", "avatarbot.pipeline.bootstrap")}
