"""The walls of ARCHITECTURE.md, read from the source: who may import what.

Imports are read with ``ast`` (module level and inside functions alike), so a lazy import
inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KAMOE = ROOT / "kamoe"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in KAMOE.rglob("*.py")}
EXTENSIONS = {module_name(p.with_name(p.name.split(".")[0] + ".py"))
              for p in KAMOE.rglob("*.so")}


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports: for ``from pkg import name``, pkg.name when it is a module."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                out.add(sub if sub in MODULES or sub in EXTENSIONS else node.module)
    return out


def test_nothing_under_kamoe_imports_streamlit():
    offenders = {m: sorted(i for i in imports(p) if i.split(".")[0] == "streamlit")
                 for m, p in MODULES.items()}
    assert {m: i for m, i in offenders.items() if i} == {}


def test_viz_imports_no_training_code():
    # Figures are built from plain data: no torch, no models, no training, no dashboard state.
    banned = ("torch", "kamoe.train", "kamoe.nn", "kamoe.models", "kamoe.runs", "kamoe.jobs",
              "kamoe.state", "kamoe.store", "kamoe.interpret", "kamoe.symbolic")
    viz = {m: p for m, p in MODULES.items() if m == "kamoe.viz" or m.startswith("kamoe.viz.")}
    assert len(viz) >= 2  # the package and its figure modules were found
    offenders = {m: sorted(i for i in imports(p) if i.startswith(banned)) for m, p in viz.items()}
    assert {m: i for m, i in offenders.items() if i} == {}


def test_pages_import_no_torch():
    pages = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]
    offenders = {p.name: sorted(i for i in imports(p) if i.split(".")[0] == "torch")
                 for p in pages}
    assert {m: i for m, i in offenders.items() if i} == {}


def test_no_import_cycles_inside_kamoe():
    # Edges between kamoe modules, lazy imports included (the CSV reader once made
    # kamoe.data.tabular and kamoe.data.sequence import each other).
    graph = {m: {i for i in imports(p) if i in MODULES and i != m} for m, p in MODULES.items()}
    cycles, state, stack = [], {}, []

    def visit(m: str) -> None:
        state[m] = "open"
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert cycles == []


def test_the_walls_checker_sees_a_violation(tmp_path):
    # The checks above would report a page-style import under kamoe/: the reader finds it.
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    import streamlit as st\n    from torch import nn\n")
    assert {"streamlit", "torch"} <= imports(bad)
