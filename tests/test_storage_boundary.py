"""Only ``storage/`` reaches the database (issue 27): no module outside ``modelsteward/storage/``
imports SQLAlchemy, ``session_scope`` or the ORM models (``storage.models``), whether at module
level, inside a function or under ``TYPE_CHECKING``; reads go through the read model
(``storage/read/``), writes through storage functions that hold their own transaction.

The walk is over the AST (every ``import`` node, wherever it sits), so a hidden import counts.
``EXEMPT`` lists the modules not converted yet; it may only shrink: a module on it that no longer
reaches the database fails the test until it is taken off.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "modelsteward"

# modules (relative to modelsteward/) still reaching the database themselves: none since issue 27
EXEMPT: frozenset[str] = frozenset()


def _resolve(module: str | None, level: int, path: Path, root: Path) -> str:
    """The absolute dotted name of an ``ImportFrom``'s module (relative imports resolved)."""
    if not level:
        return module or ""
    parts = ["modelsteward", *path.relative_to(root).with_suffix("").parts][: -level]
    return ".".join(parts + ([module] if module else []))


def reaches(tree: ast.AST, path: Path, root: Path) -> list[str]:
    """What in ``tree`` reaches the database: ``LINE: name`` for each import (and each
    ``x.session_scope`` attribute) of SQLAlchemy, ``session_scope`` or ``storage.models``."""
    found: list[str] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = _resolve(node.module, node.level, path, root)
            names = [mod] + [f"{mod}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Attribute) and node.attr == "session_scope":
            names = ["session_scope"]
        for name in names:
            if (name == "sqlalchemy" or name.startswith("sqlalchemy.") or name.endswith("session_scope")
                    or name == "modelsteward.storage.models" or name.startswith("modelsteward.storage.models.")):
                found.append(f"{node.lineno}: {name}")  # type: ignore[attr-defined]
                break
    return found


def offenders(root: Path = PACKAGE) -> dict[str, list[str]]:
    """``{module outside storage/: what it imports}`` for every module of ``root`` that reaches the database."""
    out: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("storage/"):
            continue
        hits = reaches(ast.parse(path.read_text(encoding="utf-8")), path, root)
        if hits:
            out[rel] = hits
    return out


def test_no_module_outside_storage_reaches_the_database() -> None:
    new = {m: hits for m, hits in offenders().items() if m not in EXEMPT}
    assert not new, ("these modules reach the database themselves; read through modelsteward.storage.read and "
                     f"write through a storage function instead: {new}")


def test_the_exemptions_only_shrink() -> None:
    stale = sorted(EXEMPT - set(offenders()))
    assert not stale, f"no longer reaching the database: take them off EXEMPT in {Path(__file__).name}: {stale}"
    missing = sorted(m for m in EXEMPT if not (PACKAGE / m).is_file())
    assert not missing, f"EXEMPT names modules that do not exist: {missing}"


PLANTED = {
    "module level": "from sqlalchemy import select\n",
    "inside a function": "def f():\n    from modelsteward.storage.db import session_scope\n    return session_scope\n",
    "under TYPE_CHECKING": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from sqlalchemy.orm import Session\n",
    "the ORM package": "from modelsteward.storage import models\n",
    "the ORM models": "import modelsteward.storage.models as m\n",
    "relative": "from ..storage.models import Model\n",
    "a session through db": "from modelsteward.storage import db\n\n\ndef f(st):\n    return db.session_scope(st)\n",
}


@pytest.mark.parametrize("case", sorted(PLANTED))
def test_a_planted_import_is_found(tmp_path: Path, case: str) -> None:
    root = tmp_path / "modelsteward"
    (root / "agent").mkdir(parents=True)
    (root / "storage").mkdir()
    (root / "agent" / "fine.py").write_text("from modelsteward.storage import read\nfrom modelsteward.storage.states "
                                            "import ACTIVE_ROLLOUT_STATES\nimport sqlite3\n")
    (root / "storage" / "own.py").write_text("from sqlalchemy import select\nfrom modelsteward.storage.models import Model\n")
    (root / "agent" / "bad.py").write_text(PLANTED[case])
    found = offenders(root)
    assert list(found) == ["agent/bad.py"], found  # storage/ itself, and the read model, may
    assert found["agent/bad.py"][0].split(":")[0].isdigit()
