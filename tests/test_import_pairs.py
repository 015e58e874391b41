"""No two modules of the package import each other (issue 27).

``lint-imports`` (tests/test_layers.py) orders the packages; inside one package two modules could
still import each other (agent graph/report, catalog base/paid/prices, ...), which hides which one
holds the shared definition and breaks as soon as one of them is imported first.  This test walks
the package's AST, builds the module import graph (every ``import``/``from ... import`` anywhere in
the file: module level, inside functions, under ``TYPE_CHECKING``) and fails on any pair A -> B and
B -> A, naming them.  The fix is the one of the layers: move the shared definition down to a module
both can import, or pass what is needed down.

Decision: ``from pkg.mod import name`` is an edge to ``pkg.mod.name`` when that is a module, else
to ``pkg.mod``; importing ``pkg.mod`` is not counted as importing ``pkg/__init__.py`` (Python runs
it, but a package re-exporting its children would otherwise pair with each of them).  A package's
``__init__`` importing its own child and the child importing a name *from the package* is a pair.

Run as a script to list the pairs: ``python tests/test_import_pairs.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "modelsteward"


def _module_names(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``root`` (the package directory)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of dotted ``name`` that is a module of the package."""
    parts = name.split(".")
    while parts:
        cand = ".".join(parts)
        if cand in modules:
            return cand
        parts.pop()
    return None


def _imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package, one level up per extra dot
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            targets = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in modules else prefix for a in node.names]
        else:
            continue
        for t in targets:
            hit = _resolve(t, modules)
            if hit and hit != module:
                found.add(hit)
    return found


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    modules = _module_names(root)
    return {m: _imports_of(m, p, modules) for m, p in modules.items()}


def mutual_pairs(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} <-> {b}" for a, deps in graph.items() for b in deps if a < b and a in graph.get(b, ()))


def test_the_walker_finds_a_pair_anywhere_in_a_file(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub.a import A\n")
    (pkg / "sub" / "a.py").write_text("def f():\n    from . import b\n")                 # inside a function
    (pkg / "sub" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                      "    from pkg.sub.a import f\n")                    # under TYPE_CHECKING
    (pkg / "sub" / "c.py").write_text("from pkg.sub import A\n")                          # through the package
    (pkg / "d.py").write_text("import pkg.sub.c\nfrom .sub import b\n")                   # one way only
    graph = import_graph(pkg)
    assert graph["pkg.d"] == {"pkg.sub.c", "pkg.sub.b"}
    assert mutual_pairs(graph) == ["pkg.sub.a <-> pkg.sub.b"]
    (pkg / "sub" / "a.py").write_text("from pkg.sub import c\n")
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub.c import C\n")
    assert mutual_pairs(import_graph(pkg)) == ["pkg.sub <-> pkg.sub.c"]


def test_no_two_modules_import_each_other() -> None:
    graph = import_graph()
    assert len(graph) > 50  # the package was found
    pairs = mutual_pairs(graph)
    assert pairs == [], ("these modules import each other; move the shared definition down to a module "
                         "both can import, or pass what is needed down:\n" + "\n".join(pairs))


if __name__ == "__main__":
    rows = mutual_pairs(import_graph())
    print("\n".join(rows) or "no two modules import each other")
    raise SystemExit(1 if rows else 0)
