"""The layer order of DESIGN.md is enforced: ``lint-imports`` (import-linter, contracts in
pyproject.toml) passes on the package, and fails on a copy of it with one upward import added,
whether at module level, hidden inside a function or under ``TYPE_CHECKING``, and on a policy
rule that reaches into the domain instead of reading its facts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    """Run lint-imports with ``root``'s pyproject.toml, importing ``modelsteward`` from ``root``."""
    if not LINT.exists():
        pytest.fail(f"lint-imports not found next to {sys.executable}: install the test extra (import-linter)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    args = [str(LINT), "--no-cache", "--no-logo", str(root / "pyproject.toml")]
    for c in contracts:
        args += ["--contract", c]
    return subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_the_package_keeps_every_layer_contract() -> None:
    res = _lint(REPO)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 broken" in res.stdout and "Layers of DESIGN.md" in res.stdout


@pytest.fixture
def copy_of_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(REPO / "modelsteward", root / "modelsteward",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "static", "templates", "data"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


UPWARD = {
    # storage (near the bottom) importing the tools, at module level
    "module level": ("layers", "storage/registry.py", "\nfrom modelsteward.tools import base as _upward  # noqa: E402,F401\n",
                     "modelsteward.storage.registry -> modelsteward.tools.base"),
    # rollout reaching up into policies, hidden inside a function (half of the cycle issue 18 removed)
    "inside a function": ("layers", "rollout/manager.py", "\n\ndef _hidden():\n    from modelsteward.policies import approvals\n\n"
                          "    return approvals\n", "modelsteward.rollout.manager -> modelsteward.policies"),
    # the tools reaching up into the agent only for type checking
    "under TYPE_CHECKING": ("layers", "tools/agent.py", "\nif TYPE_CHECKING:\n    from modelsteward.agent.runner import run_agent\n",
                            "modelsteward.tools.agent -> modelsteward.agent.runner"),
    # a policy rule running the rollout analysis itself instead of reading the fact the tool gathered
    "policy reaching into rollout": ("policies-on-facts", "policies/rules.py",
                                     "\n\ndef _hidden():\n    from modelsteward.rollout import analysis\n\n"
                                     "    return analysis\n",
                                     "modelsteward.policies.rules -> modelsteward.rollout.analysis"),
}


@pytest.mark.parametrize("case", sorted(UPWARD))
def test_an_upward_import_breaks_the_contract(copy_of_repo: Path, case: str) -> None:
    contract, rel, code, reported = UPWARD[case]
    path = copy_of_repo / "modelsteward" / rel
    text = path.read_text()
    if "TYPE_CHECKING" in code and "TYPE_CHECKING" not in text:
        code = "\nfrom typing import TYPE_CHECKING\n" + code
    path.write_text(text + code)
    res = _lint(copy_of_repo, contract)
    assert res.returncode != 0, res.stdout
    assert "BROKEN" in res.stdout and reported in res.stdout, res.stdout


def test_a_new_top_level_package_must_be_placed(copy_of_repo: Path) -> None:
    (copy_of_repo / "modelsteward" / "newthing").mkdir()
    (copy_of_repo / "modelsteward" / "newthing" / "__init__.py").write_text("")
    res = _lint(copy_of_repo, "layers")
    assert res.returncode != 0 and "newthing" in res.stdout + res.stderr, res.stdout + res.stderr
