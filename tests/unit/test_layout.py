"""The layout rules of README's "Layout" section, checked on the source tree.

They are the rules a reviewer would otherwise have to remember: no import
cycles, the deploy-only predictor never imports the serving stack, ``common/``
holds only shared code, no step imports another step, and nothing reads from
outside the repository. The import graph is read with ``ast`` (every import,
also the ones inside functions: a lazy import hides a cycle, it does not
remove it).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("common", "steps", "serving", "runner", "tools", "bench")
# Who may count as a user of common/: the steps, the serving runtime and the runner.
# The folder of reference material beside the repository (read by nothing in it): named as a relative
# path from the repository, or built as <something above the repo> / "<name>".
BESIDE = "shared"
OUTSIDE = re.compile(rf"""\.\./{BESIDE}\b|parents\[\d+\]\s*/\s*["']{BESIDE}["']""")
CONSUMERS = ("steps.builder", "steps.trainer", "steps.predictor", "serving", "runner")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def imported_names(path: Path, name: str, modules: frozenset[str] = frozenset()) -> Iterator[str]:
    """Every module ``path`` imports, relative imports resolved.

    ``from a import b`` names ``a.b`` when that is one of ``modules``, else ``a``
    (the names come from a's ``__init__``).
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base


def import_graph() -> dict[str, set[str]]:
    """Edges between our own modules."""
    modules = source_modules()
    known = frozenset(modules)
    return {
        name: {t for t in imported_names(path, name, known) if t in modules and t != name}
        for name, path in modules.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def all_imports(prefix: str) -> dict[str, set[str]]:
    """Every name imported by each module under ``prefix`` (ours and third-party)."""
    return {
        name: set(imported_names(path, name))
        for name, path in source_modules().items()
        if name == prefix or name.startswith(prefix + ".")
    }


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_predictor_never_imports_the_serving_stack() -> None:
    """The deploy-only predictor image has no kserve or scikit-learn: neither it nor what it imports may need them."""
    graph = import_graph()
    predictor = {m for m in graph if m == "steps.predictor" or m.startswith("steps.predictor.")}
    modules = source_modules()
    offending = {}
    for module in sorted(predictor | reachable(graph, predictor)):
        names = imported_names(modules[module], module)
        bad = sorted({n for n in names if n.split(".")[0] in ("kserve", "sklearn", "skops", "serving")})
        if bad:
            offending[module] = bad
    assert offending == {}


@pytest.mark.parametrize("step", ["steps.builder", "steps.trainer", "steps.predictor"])
def test_no_step_imports_another_step(step: str) -> None:
    others = [s for s in ("steps.builder", "steps.trainer", "steps.predictor") if s != step]
    offending = {
        module: sorted(n for n in names if any(n == o or n.startswith(o + ".") for o in others))
        for module, names in all_imports(step).items()
    }
    assert {m: n for m, n in offending.items() if n} == {}


def test_steps_and_runtime_do_not_import_test_scaffolding() -> None:
    for prefix in ("common", "steps", "serving", "runner"):
        offending = {m: sorted(n for n in names if n.split(".")[0] in ("tools", "tests", "bench"))
                     for m, names in all_imports(prefix).items()}  # fmt: skip
        assert {m: n for m, n in offending.items() if n} == {}


def test_every_common_module_is_shared() -> None:
    """A module is used by whoever imports it, directly or not. A script that runs inside builds and is
    imported by nobody (``common/check_python.py``) is used by whoever uses the build payload that
    names it: a ``common/*.py`` path written in ``common/build_payload.py`` counts as that module."""
    graph = import_graph()
    users: dict[str, set[str]] = {m: set() for m in graph if m.startswith("common.")}
    for module, edges in graph.items():
        consumer = next((c for c in CONSUMERS if module == c or module.startswith(c + ".")), None)
        if consumer is None:
            continue
        for target in reachable(graph, edges):
            if target in users:
                users[target].add(consumer)
    for carried in payload_modules():
        users[carried] |= users[PAYLOAD]
    lonely = {m: sorted(u) for m, u in users.items() if len(u) < 2}
    assert lonely == {}, "common/ modules used by fewer than two of the steps, runtime and runner"


PAYLOAD = "common.build_payload"


def payload_modules() -> set[str]:
    """The ``common/`` modules ``common/build_payload.py`` names as files (scripts it puts into builds)."""
    tree = ast.parse((ROOT / "common" / "build_payload.py").read_text())
    paths = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    return {module_name(ROOT / p) for p in paths if re.fullmatch(r"common/\w+\.py", p) and (ROOT / p).is_file()}


def test_payload_modules_are_the_scripts_the_payload_names() -> None:
    assert payload_modules() == {"common.check_python"}


def reachable(graph: dict[str, set[str]], start: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def test_nothing_reads_outside_the_repository() -> None:
    """Data the code and tests need is in the repository, never read from a folder beside it."""
    offending = []
    for path in ROOT.rglob("*"):
        if (
            not path.is_file()
            or path.suffix not in (".py", ".yaml", ".yml", ".toml", ".cfg", ".sh", "")
            or ({".venv", ".git", "__pycache__", "node_modules", ".fuseml"} & set(path.parts))
        ):
            continue
        if path == Path(__file__):
            continue
        text = path.read_text(errors="replace")
        if OUTSIDE.search(text):
            offending.append(str(path.relative_to(ROOT)))
    assert offending == []
