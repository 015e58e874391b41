"""A process killed with SIGKILL during step changes leaves the old or the new routing table,
never a mix: allocations, snapshot, history and the Rollout row move together."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rollout_helpers import CAND, STABLE, UC, pass_eval, setup_use_case
from sqlalchemy import func, select

from modelsteward.rollout import RolloutManager
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import DeploymentHistory, ModelSnapshot, Rollout

CHILD = Path(__file__).with_name("rollout_crash_child.py")
KILLS = int(os.environ.get("STEWARD_CRASH_KILLS", "12"))


def _check_consistent(steward) -> tuple[int, float]:
    dep = steward.registry.deployment(UC)
    table = steward.registry.routing_table(dep)
    weights = {(r["model_id"], r["role"]): r["weight"] for r in table}
    assert set(weights) == {(STABLE, "primary"), (CAND, "canary")}, table
    w = weights[(CAND, "canary")]
    assert w in (5.0, 25.0, 50.0) and weights[(STABLE, "primary")] == 100.0 - w, table
    with session_scope(steward.sessions) as s:
        ro = s.scalars(select(Rollout)).one()
        assert ro.state == "waiting" and ro.steps[ro.step_index] == w  # the Rollout row moved with the table
        hist = list(s.scalars(select(DeploymentHistory).order_by(DeploymentHistory.id)))
        assert [h.to_version for h in hist] == list(range(1, dep.version + 1))  # one history row per version
        assert hist[-1].details["allocations"] == table
        n_snap = s.scalar(select(func.count(ModelSnapshot.id)))
        assert n_snap == len(hist)  # one snapshot per change
    return dep.version, w


def _kill_loop(steward) -> set[float]:
    setup_use_case(steward)
    pass_eval(steward)
    RolloutManager(steward).deploy(UC, CAND, "canary", actor="test")
    seen: set[float] = set()
    last_version = steward.registry.deployment(UC).version
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(CHILD.parent.parent), os.environ.get("PYTHONPATH", "")])}
    for _ in range(KILLS):
        proc = subprocess.Popen([sys.executable, str(CHILD), str(steward.settings.workspace), steward.settings.db_url],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            line = proc.stdout.readline() if proc.stdout else ""
            assert line.strip() == "ready", proc.stderr.read() if proc.stderr else ""
            time.sleep(random.uniform(0.05, 0.6))
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            for f in (proc.stdout, proc.stderr):
                if f:
                    f.close()
        version, w = _check_consistent(steward)
        assert version >= last_version
        last_version = version
        seen.add(w)
    assert last_version > 2 + KILLS  # the children did change steps many times before they died
    return seen


@pytest.mark.slow
def test_sigkill_during_step_changes_sqlite(steward) -> None:
    seen = _kill_loop(steward)
    assert len(seen) >= 2  # the kills landed on different tables


@pytest.mark.slow
def test_sigkill_during_step_changes_postgres(pg_steward) -> None:
    _kill_loop(pg_steward)
