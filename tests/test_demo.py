"""A shortened demo (fewer requests and steps, same code path), checked from the database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text


@pytest.mark.slow
def test_short_demo_closes_the_loop(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    env = {**os.environ, "STEWARD_HOME": str(ws)}
    for var in ("STEWARD_DATABASE_URL", "STEWARD_LOG_DIR", "MLFLOW_TRACKING_URI", "STEWARD_AGENT_LLM"):
        env.pop(var, None)
    proc = subprocess.run([sys.executable, "-m", "modelsteward", "demo", "--short", "--json"], env=env,
                          capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-4000:]
    (Path(__file__).parent / "artifacts").mkdir(exist_ok=True)
    (Path(__file__).parent / "artifacts" / "demo-short.log").write_text(proc.stderr)
    report = json.loads(proc.stdout)
    assert (ws / "demo-report.json").exists()

    eng = create_engine(f"sqlite:///{ws / 'steward.db'}")
    with eng.connect() as c:
        ft = c.execute(text("SELECT id, kind, parent_model_id, adapter_path FROM models WHERE kind = 'fine_tuned'")).all()
        assert ft, "no fine-tuned model registered"
        assert ft[0].parent_model_id == "local:smollm2-135m-instruct" and Path(ft[0].adapter_path).exists()
        jobs = c.execute(text("SELECT status FROM fine_tuning_jobs")).scalars().all()
        assert "succeeded" in jobs
        evals = c.execute(text("SELECT verdict, sample_count FROM test_results")).all()
        assert evals and evals[-1].sample_count > 0
        rollouts = c.execute(text("SELECT state, strategy FROM rollouts")).all()
        assert rollouts, "no rollout started"
        hist = c.execute(text("SELECT action FROM deployment_history")).scalars().all()
        snaps = c.execute(text("SELECT count(*) FROM model_snapshots")).scalar()
        assert len(hist) >= 2 and snaps >= 2
        decided = c.execute(text("SELECT decided_by FROM approvals WHERE status IN ('approved', 'executed')")).all()
        assert any(d.decided_by == "demo-operator" for d in decided)
        runs = c.execute(text("SELECT report FROM agent_runs WHERE report IS NOT NULL")).scalars().all()
        assert runs and all(r.strip() for r in runs)
    # a passing candidate can still fail a canary analysis (e.g. a feedback drop): either outcome is shown
    assert report["decision"] in ("completed", "rolled_back", "aborted")
    if report["decision"] == "completed":
        assert any(a["model_id"].startswith("local:story_teller-lora") and a["weight"] == 100
                   for a in report["routing"])
    else:  # rolled back: the routing table is the stable model alone again
        assert report["routing"] == [{"model_id": "local:smollm2-135m-instruct", "weight": 100.0, "role": "primary"}]
