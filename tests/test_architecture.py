"""The package's shape (docs/architecture.md): no import cycle, no forbidden edge between rooms,
every module under 500 lines, and the public API that ``import galm`` promises."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "galm"
MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(modules imported when the module loads, including `if TYPE_CHECKING:` blocks; every galm
    module imported anywhere in it, function bodies included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]

    def targets(node: ast.AST) -> set[str]:
        if isinstance(node, ast.Import):
            return {alias.name for alias in node.names}
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            # `from galm.x import y` may name a submodule y
            return {base} | {f"{base}.{alias.name}" for alias in node.names}
        return set()

    load_time: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                load_time.update(targets(node))
            elif isinstance(node, ast.If):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)

    visit(tree.body)
    anywhere = set().union(*(targets(node) for node in ast.walk(tree)))
    return load_time, anywhere


@pytest.fixture(scope="module")
def graph() -> dict[str, tuple[set[str], set[str]]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}

    def known(names: set[str]) -> set[str]:
        return {n for n in names if n in modules}

    return {name: tuple(known(s) for s in _imports(path)) for name, path in modules.items()}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_import_cycle(graph) -> None:
    """Depth-first search over load-time imports; an edge to one's own package is the package's
    business (a submodule loads while its package initialises)."""
    edges = {m: {t for t in load if not m.startswith(t + ".")} for m, (load, _) in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                walk(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            walk(module)


# room -> rooms it must never import (anywhere in its modules, function bodies included)
FORBIDDEN = {
    "config": {"space", "data", "engine", "nn", "training", "search", "runs", "baselines", "experiments", "report", "predict"},
    "space": {"data", "engine", "nn", "training", "search", "runs", "baselines", "experiments", "report", "predict"},
    "engine": {"nn", "training", "search", "runs", "baselines", "experiments", "report", "predict"},
    "nn": {"data", "engine", "training", "search", "runs", "baselines", "experiments", "report", "predict"},
    "data": {"nn", "training", "search", "baselines", "experiments", "report", "predict"},
    "training": {"search", "baselines", "experiments", "report", "predict"},
    "search": {"baselines", "experiments", "report", "predict"},
    "report": {"search", "nn", "training", "engine", "baselines", "experiments", "predict"},
}


def test_no_forbidden_edge(graph) -> None:
    bad = []
    for module, (_, anywhere) in graph.items():
        room = _room(module)
        for target in anywhere:
            if _room(target) == "cli" and room != "cli" and module != "galm.__main__":
                bad.append(f"{module} -> {target} (nothing imports the command line)")
            if _room(target) in FORBIDDEN.get(room, ()):
                bad.append(f"{module} -> {target} ({room} must not import {_room(target)})")
    assert not bad, "\n".join(sorted(bad))


def test_modules_stay_small() -> None:
    long = [f"{p.relative_to(PACKAGE.parent)}: {n} lines" for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert not long, long


def test_public_api_imports_lazily_and_resolves() -> None:
    code = (
        "import sys, galm\n"
        "assert 'torch' not in sys.modules, 'import galm pulled in torch'\n"
        "import galm.report, galm.config, galm.space\n"
        "assert 'torch' not in sys.modules, 'the report, config or space pulled in torch'\n"
        "missing = [n for n in galm.__all__ if not hasattr(galm, n)]\n"
        "assert not missing, missing\n"
        "print(len(galm.__all__))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PACKAGE.parent)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 20
