"""The package's shape: imports run one way (no cycle, not even one hidden inside a function), no module over
800 lines, no model file over 15,000 characters."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "tinyformers"
MAX_LINES = 800
MAX_MODEL_CHARS = 15_000


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return getattr(test, "id", getattr(test, "attr", None)) == "TYPE_CHECKING"


def imported_modules(name: str, path: Path) -> dict[str, int]:
    """The package modules that ``name`` imports, anywhere in it (module level or inside a function), with the
    line of the first import: what running it can execute. ``if TYPE_CHECKING:`` blocks never run."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: dict[str, int] = {}

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and is_type_checking(child):
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name in MODULES:
                        found.setdefault(alias.name, child.lineno)
            elif isinstance(child, ast.ImportFrom):
                base = package[: len(package) - child.level + 1] if child.level else []
                source = ".".join(base + ([child.module] if child.module else []))
                submodules = [f"{source}.{alias.name}" for alias in child.names]
                for submodule in submodules:
                    if submodule in MODULES:
                        found.setdefault(submodule, child.lineno)
                # `from pkg import name` runs pkg/__init__ unless every name is a submodule of pkg.
                if source in MODULES and not all(s in MODULES for s in submodules):
                    found.setdefault(source, child.lineno)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of names (first == last), or None (depth-first search)."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in graph[node]:
            if state.get(target) == "open":
                return path[path.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        path.pop()
        return None

    for node in graph:
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_import_graph_is_read():
    t5 = imported_modules("tinyformers.models.t5", MODULES["tinyformers.models.t5"])
    assert {"tinyformers.models.t5_layers", "tinyformers.modeling", "tinyformers.outputs"} <= t5.keys()
    decoder = imported_modules("tinyformers.models.decoder", MODULES["tinyformers.models.decoder"])
    assert "tinyformers.generation" in decoder  # `from ..generation import X` runs generation/__init__.py


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": 1}, "b": {}, "c": {"b": 1}}) is None


def test_imports_run_one_way():
    graph = {name: imported_modules(name, path) for name, path in MODULES.items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + ", ".join(
        f"{a} imports {b} (line {graph[a][b]})" for a, b in zip(cycle[:-1], cycle[1:], strict=True)
    )


def test_modules_stay_small():
    too_long = []
    for name, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_LINES:
            too_long.append(f"{name}: {len(text.splitlines())} lines (at most {MAX_LINES})")
        if name.startswith("tinyformers.models.") and len(text) > MAX_MODEL_CHARS:
            too_long.append(f"{name}: {len(text)} characters (a model file has at most {MAX_MODEL_CHARS})")
    assert not too_long, "split by concept: " + "; ".join(too_long)
