"""`steward deploy`, `steward rollout status|advance|abort`, `steward rollback`, `steward guard check`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from rollout_helpers import CAND, STABLE, UC, pass_eval, setup_use_case

from modelsteward.context import open_steward
from modelsteward.settings import Settings

STEWARD = [sys.executable, "-m", "modelsteward"]


def run(ws: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STEWARD_HOME": str(ws), "USER": "alice"}
    env.pop("STEWARD_DATABASE_URL", None)
    env.pop("STEWARD_LOG_DIR", None)
    proc = subprocess.run([*STEWARD, *args], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    return proc


def test_cli_rollout_commands(tmp_path: Path, hosted_upstream: Any) -> None:  # the models answer their check
    ws = tmp_path / "ws"
    st = open_steward(Settings(home=ws))
    setup_use_case(st)
    pass_eval(st)
    st.close()

    bad = run(ws, "deploy", "--use-case", UC, "--model", "openai:nope", "--strategy", "canary", code=1)
    assert "Unknown model 'openai:nope'" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1

    out = json.loads(run(ws, "deploy", "--use-case", UC, "--model", CAND, "--strategy", "canary", "--json").stdout)
    assert out["action"] == "deployed" and out["rollout"]["steps"] == [5, 25, 50, 100]
    assert {r["model_id"]: r["weight"] for r in out["routing"]} == {STABLE: 95.0, CAND: 5.0}

    again = run(ws, "deploy", "--use-case", UC, "--model", CAND, "--strategy", "shadow", code=1)
    assert "policy_denied" in again.stderr and "one_active_rollout" in again.stderr

    status = json.loads(run(ws, "rollout", "status", "--use-case", UC, "--json").stdout)
    assert status["rollout"]["state"] == "waiting" and status["version"] == 2

    adv = json.loads(run(ws, "rollout", "advance", "--use-case", UC, "--json").stdout)
    assert adv["action"] == "waiting" and adv["analysis"]["outcome"] == "inconclusive"

    guard = json.loads(run(ws, "guard", "check", "--json").stdout)
    assert guard["checked"] == [UC] and guard["violations"] == []

    ab = json.loads(run(ws, "rollout", "abort", "--use-case", UC, "--json").stdout)
    assert ab["routing"] == [{"model_id": STABLE, "weight": 100.0, "role": "primary"}] and ab["changed"] is True

    rb = json.loads(run(ws, "rollback", "--use-case", UC, "--json").stdout)
    assert rb["changed"] is False and rb["version"] == 3  # idempotent

    human = run(ws, "rollout", "advance", "--use-case", UC, code=1)
    assert "no active rollout" in human.stderr
