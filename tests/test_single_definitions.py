"""The rollout states are defined once (issue 27): ``storage/states.py`` holds ``ROLLOUT_STATES``
and ``ACTIVE_ROLLOUT_STATES``; every other module imports them.  This test walks the package's
AST and fails on any other literal tuple, list or set of exactly those states (the active ones had
been copied six times: the policies, the agent's observation, the read model, the queries, the demo).
``server/api.py`` keeps a ``Literal[...]`` of all states in a signature (FastAPI's schema): a
subscript, not a collection, so not counted."""

from __future__ import annotations

import ast
from pathlib import Path

from modelsteward.storage import states

PACKAGE = Path(__file__).resolve().parents[1] / "modelsteward"


def copies(values: tuple[str, ...], root: Path = PACKAGE) -> list[str]:
    want = set(values)
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        slices = {id(n.slice) for n in ast.walk(tree) if isinstance(n, ast.Subscript)}  # Literal[...]
        for node in ast.walk(tree):
            if id(node) not in slices and isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(node.elts) == len(want) and all(
                    isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
                if {e.value for e in node.elts} == want:  # type: ignore[attr-defined]
                    found.append(f"{path.relative_to(root).as_posix()}:{node.lineno}")
    return found


def test_the_walker_finds_a_copy(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text('X = ("paused", "running", "waiting")\n\n\ndef f(s):\n'
                                   '    return s in {"running", "waiting", "paused"} or s in ("running", "waiting")\n'
                                   'Y = Literal["running", "waiting", "paused"]\n')
    assert copies(states.ACTIVE_ROLLOUT_STATES, tmp_path) == ["a.py:1", "a.py:5"]


def test_the_rollout_states_are_defined_once() -> None:
    assert set(states.ACTIVE_ROLLOUT_STATES) < set(states.ROLLOUT_STATES)
    for values in (states.ACTIVE_ROLLOUT_STATES, states.ROLLOUT_STATES):
        assert copies(values) == ["storage/states.py:" + str(_line_of(values))], "import them from storage/states.py"


def _line_of(values: tuple[str, ...]) -> int:
    text = (PACKAGE / "storage" / "states.py").read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(text, 1) if line.endswith(repr(values).replace("'", '"')))
