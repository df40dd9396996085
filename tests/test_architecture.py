"""The package's shape: data flows one way through layers, no import cycle, small files.

Every ``import`` in ``stgnn/`` counts, wherever it stands (top level, inside a function, under
``TYPE_CHECKING``): a lazy import is still a dependency. A module may import its own layer and the
layers before it in :data:`LAYERS`, never a later one.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "stgnn"
MAX_LINES = 500

#: lowest first: what a layer may import (DESIGN.md's data flow, read bottom-up)
LAYERS = ("utils", "config", "data", "eval", "features", "graph", "layers", "inputs", "models", "baselines",
          "registry", "preflight", "train", "recipes", "cli", "__main__")


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The ``stgnn`` modules ``path`` imports (``from pkg import submodule`` counts the submodule)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "stgnn"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "stgnn":
            if node.level:
                raise AssertionError(f"{path}: use absolute imports")
            subs = {f"{node.module}.{a.name}" for a in node.names} & modules
            out |= subs or {node.module}
    return out


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    return {m: imports_of(p, set(files)) - {m} for m, p in files.items()}


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "<package>"


def upward_imports(graph: dict[str, set[str]], layers: tuple[str, ...] = LAYERS) -> list[str]:
    """``"a -> b"`` for every import of a later layer; the package root and unknown layers fail too."""
    rank = {name: i for i, name in enumerate(layers)}
    bad = []
    for a, deps in sorted(graph.items()):
        for b in sorted(deps):
            la, lb = layer_of(a), layer_of(b)
            if la not in rank or lb not in rank or rank[lb] > rank[la]:
                bad.append(f"{a} ({la}) -> {b} ({lb})")
    return bad


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_checks_catch_what_they_should(tmp_path):
    g = {"stgnn.data.a": {"stgnn.models.b"}, "stgnn.models.b": {"stgnn.models.c"},
         "stgnn.models.c": {"stgnn.models.b", "stgnn.data.a"}}
    assert upward_imports(g) == ["stgnn.data.a (data) -> stgnn.models.b (models)"]
    assert cycles(g) == [["stgnn.data.a", "stgnn.models.b", "stgnn.models.c"]]
    assert upward_imports({"stgnn.newthing.x": {"stgnn.data.a"}}) == ["stgnn.newthing.x (newthing) -> stgnn.data.a (data)"]
    # a lazy import inside a function counts, and so does one under TYPE_CHECKING
    pkg = tmp_path / "stgnn"
    (pkg / "eval").mkdir(parents=True)
    (pkg / "eval" / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                       "    from stgnn.models.base import R\ndef f():\n    import stgnn.train.loop\n")
    assert import_graph(pkg) == {"stgnn.eval.a": {"stgnn.models.base", "stgnn.train.loop"}}


def test_every_subpackage_has_a_layer():
    tops = {p.name if p.is_dir() else p.stem for p in PACKAGE.iterdir()
            if (p.is_dir() and (p / "__init__.py").is_file()) or (p.suffix == ".py" and p.stem != "__init__")}
    assert tops <= set(LAYERS), f"place {sorted(tops - set(LAYERS))} in LAYERS (tests/test_architecture.py)"


def test_no_import_from_a_lower_layer_to_a_higher_one():
    assert upward_imports(import_graph()) == []


def test_no_import_cycle():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_file_over_the_line_limit(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(PACKAGE.parent)} has {n} lines (> {MAX_LINES}): split it by job"
