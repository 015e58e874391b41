"""End to end with the playbook planner, the real tools and two local models.

Both models are SmolLM2-135M-Instruct weights: the current one at a paid-hosting price, the
candidate a self-hosted copy at a tenth of it.  The use case is configured for direct switches
(``config["agent"]["rollout_strategy"] = "full"``), which policy lets through only with a human
approval.  One cycle evaluates the candidate for real (it passes: same answers, cheaper), asks to
switch, and stops at the approval; ``steward approvals approve`` resumes that run, which switches
the traffic and carries on.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from agent_helpers import routing, shared_mlflow
from sqlalchemy import select

from modelsteward.agent import run_agent
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import AgentRun, Approval, CatalogScan, RealisedGain, TestResult, utcnow

UC = "story"
CUR = "local:smollm2-135m-instruct"
CAND = "local:smollm2-selfhosted"
QA = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("How many legs does a spider have?", "A spider has eight legs."),
    ("What do bees make?", "Bees make honey."),
    ("Which planet is known as the red planet?", "Mars is known as the red planet."),
    ("What is 2 + 2?", "2 + 2 equals 4."),
    ("Who wrote Romeo and Juliet?", "William Shakespeare wrote Romeo and Juliet."),
]


@pytest.fixture(autouse=True)
def _tracking(shared_mlflow: str) -> str:
    return shared_mlflow


@pytest.mark.slow
def test_playbook_evaluates_rolls_out_stops_at_approval_and_resumes(steward) -> None:  # type: ignore[no-untyped-def]
    from modelsteward.providers.local_assets import ensure_base_model

    base = ensure_base_model(steward.settings.cache_dir)
    reg = steward.registry
    reg.register_model("local", "smollm2-135m-instruct", price_in_per_m="1", price_out_per_m="2")
    reg.add_use_case(UC, description="short factual answers", model=CUR)
    reg.register_model("local", "smollm2-selfhosted", price_in_per_m="0.1", price_out_per_m="0.2",
                       metadata={"path": str(base)}, use_case=UC, status="candidate")
    golden = steward.settings.workspace / "golden.jsonl"
    golden.write_text("".join(json.dumps({"prompt": q, "reference": a}) + "\n" for q, a in QA))
    reg.update_use_case(UC, golden_set_path=str(golden), config={"agent": {
        "rollout_strategy": "full",
        "evaluate": {"samples": 0, "max_tokens": 12, "safety": False, "concurrency": 1},
    }})
    with session_scope(steward.sessions) as s:  # the catalogs were scanned an hour ago: not stale
        s.add(CatalogScan(provider="all", status="ok", created_at=utcnow() - dt.timedelta(hours=1)))
    # Load both models one after the other first: two local models loading at the same moment in
    # the evaluator's threads currently fail in transformers ("Cannot copy out of meta tensor").
    from modelsteward.providers.factory import complete

    for mid in (CUR, CAND):
        complete(reg.get_model(mid), steward.settings, [{"role": "user", "content": "Hi"}], max_tokens=1)
    ts = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=6)
    steward.logs.append_many([
        {"ts": (ts + dt.timedelta(seconds=i)).isoformat(), "request_id": f"q{i}", "use_case": UC, "model_id": CUR,
         "role": "primary", "messages": [{"role": "user", "content": q}], "response": a, "input_tokens": 12,
         "output_tokens": 10, "latency_ms": 50.0, "cost_usd": 0.0, "status": "ok", "feedback": 1.0}
        for i, (q, a) in enumerate(QA)
    ])
    steward.logs.flush()
    before = routing(steward, UC)

    res = run_agent(steward, use_case=UC)
    assert res.status == "waiting_approval", res.report
    with session_scope(steward.sessions) as s:
        test = s.scalars(select(TestResult).where(TestResult.candidate_model_id == CAND)).one()
        approval = s.get(Approval, res.approval_id)
        steps = s.get(AgentRun, res.run_id).steps
    assert test.passed and test.baseline_model_id == CUR  # evaluated for real against the current model
    assert approval.action == "deploy" and approval.arguments["strategy"] == "full"
    assert approval.arguments["model_id"] == CAND and "promotion_to_100" in approval.reason
    assert [e["name"] for e in steps if e["kind"] == "tool"][-1] == "evaluate"
    assert routing(steward, UC) == before  # nothing live changed before a person said yes

    from modelsteward.server.auth import create_token

    # the CLI decides as the person its token names (STEWARD_TOKEN), never a free --as
    env = {**os.environ, "STEWARD_HOME": str(steward.settings.home),
           "STEWARD_TOKEN": create_token(steward, "ops", "approver")[1]}
    proc = subprocess.run([sys.executable, "-m", "modelsteward", "approvals", "approve", str(res.approval_id),
                           "--as", "ops", "--json"], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["agent_run"]["status"] == "completed", out["summary"]
    version, table = routing(steward, UC)
    assert version == before[0] + 1
    assert table == [{"model_id": CAND, "weight": 100.0, "role": "primary"}]
    with session_scope(steward.sessions) as s:
        run = s.get(AgentRun, res.run_id)
        assert s.get(Approval, res.approval_id).status == "executed"
    tools = [(e["name"], e["args"].get("model_id")) for e in run.steps if e["kind"] == "tool"]
    deploy_at = tools.index(("deploy", CAND))
    # before the approval: exactly one evaluation; the resume ran the approved switch as its next step,
    # did not repeat anything, opened the promotion's realised-gain entry, and found nothing more to do
    assert [t for t in tools[:deploy_at] if t[0] == "evaluate"] == [("evaluate", CAND)]
    assert tools[deploy_at + 1:] == [("measure_gains", None)]
    with session_scope(steward.sessions) as s:
        (gain,) = list(s.scalars(select(RealisedGain)))
        assert (gain.model_id, gain.previous_model_id, gain.verdict) == (CAND, CUR, "pending")
    assert "nothing more to do" in run.report
    checks = [c for e in run.steps if e["kind"] == "verify" for c in e["checks"] if c["name"] == "deploy"]
    assert [c["status"] for c in checks] == ["confirmed"]
    assert "approved by cli:ops" in run.report
