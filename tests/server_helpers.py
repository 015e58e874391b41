"""Helpers for the server tests: tokens for every role and a small seeded workspace."""

from __future__ import annotations

import datetime as dt
from typing import Any

from modelsteward.context import Steward
from modelsteward.server.auth import API_ROLES, create_token
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import (
    AgentRun,
    Approval,
    FineTuningJob,
    GuardrailViolation,
    Rollout,
    TestResult,
    utcnow,
)

ROLES = API_ROLES


def make_tokens(steward: Steward) -> dict[str, str]:
    """One token per role, named after the role, plus ``approver2`` (a second approver)."""
    tokens = {role: create_token(steward, role, role)[1] for role in ROLES}
    tokens["approver2"] = create_token(steward, "approver2", "approver")[1]
    return tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def seed(steward: Steward, *, logs: int = 24) -> dict[str, Any]:
    """Two models, use case ``story`` on A, a canary rollout of B, a test result, a violation,
    a fine-tuning job, an agent run and a pending approval (requested by ``api:operator``)."""
    reg = steward.registry
    a = reg.register_model("openai", "gpt-4o-mini", price_in_per_m="0.15", price_out_per_m="0.6", context_length=128000)
    b = reg.register_model("local", "smollm2-135m-instruct", status="candidate")
    uc = reg.add_use_case("story", description="tells stories", model=a.id)
    now = utcnow()
    with session_scope(steward.sessions) as s:
        ro = Rollout(use_case_id=uc.id, candidate_model_id=b.id, stable_model_id=a.id, strategy="canary",
                     steps=[5, 25, 50, 100], step_index=0, state="waiting", step_started_at=now,
                     analyses=[{"step": 0, "verdict": "pass", "error_rate": 0.0}], actor="cli:alice", reason="test")
        s.add(ro)
        tr = TestResult(use_case_id=uc.id, candidate_model_id=b.id, baseline_model_id=a.id, verdict="pass", passed=True,
                        sample_count=20, metrics={"quality": 0.91}, reasons=["quality 0.91 >= 0.95 x 0.93"])
        s.add(tr)
        v = GuardrailViolation(policy="error_rate", severity="warn", use_case_id=uc.id, model_id=b.id, measured=0.2,
                               threshold=0.1, action="warn", details={})
        s.add(v)
        job = FineTuningJob(use_case_id=uc.id, base_model_id=b.id, method="lora", status="succeeded", metrics={"loss": 1.2})
        s.add(job)
        run = AgentRun(trigger="api", goal="keep story healthy", use_case="story", status="completed",
                       thread_id="t-1", report="# Report\nall good", steps=[{"tool": "show_status"}])
        s.add(run)
        ap = Approval(action="rollout_advance", arguments={"use_case": "story"}, reason="canary step needs a person",
                      requester="api:operator", status="pending", use_case_id=uc.id)
        s.add(ap)
        s.flush()
        ids = {"rollout": ro.id, "test_result": tr.id, "violation": v.id, "job": job.id, "agent_run": run.id,
               "approval": ap.id, "use_case": uc.id}
    base = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    steward.logs.append_many([
        {"ts": base - dt.timedelta(hours=i), "request_id": f"r{i}", "use_case": "story",
         "model_id": a.id if i % 4 else b.id, "role": "primary" if i % 4 else "canary",
         "messages": [{"role": "user", "content": f"tell me story {i}"}], "response": "once upon a time",
         "input_tokens": 10 + i, "output_tokens": 20, "latency_ms": 80.0 + 40 * i, "cost_usd": 0.0001 * (i + 1),
         "status": "error" if i == 3 else "ok", "feedback": 0.5 if i % 2 else None}
        for i in range(logs)
    ])
    steward.logs.flush()
    return {"a": a.id, "b": b.id, **ids}


def promotion_scenario(steward: Steward, requester: str = "api:operator") -> dict[str, Any]:
    """A canary rollout (steps 25% -> 100%) whose analysis passes, so that advancing it to 100%
    needs a person's approval; returns the rollout and the pending approval's ids."""
    from modelsteward.errors import ApprovalRequired
    from modelsteward.tools.base import ToolContext, call_tool

    reg = steward.registry
    a = reg.register_model("openai", "gpt-4o-mini", price_in_per_m="0.15", price_out_per_m="0.6")
    b = reg.register_model("local", "smollm2-135m-instruct", status="candidate", price_in_per_m="0.1",
                           price_out_per_m="0.4")
    uc = reg.add_use_case("story", description="tells stories", model=a.id)
    reg.update_use_case("story", config={"rollout": {"min_requests": 10, "min_duration_s": 30}})
    with session_scope(steward.sessions) as s:
        s.add(TestResult(use_case_id=uc.id, candidate_model_id=b.id, baseline_model_id=a.id, verdict="pass",
                         passed=True, sample_count=20, reasons=[],
                         metrics={"quality": 0.97, "benefit": {  # cheaper at equal quality: worth promoting
                             "verdict": "cheaper", "rule": "cheaper (test fixture)", "quality_ratio": 1.0,
                             "quality_ratio_lcb": 0.97, "cost_ratio": 0.66, "method": "golden"}}))
    ctx = ToolContext(steward=steward, actor=requester)
    out = call_tool("deploy", {"use_case": "story", "model_id": b.id, "strategy": "canary", "steps": [25, 100]}, ctx)
    rollout_id = out.rollout.id  # type: ignore[attr-defined]
    start = utcnow() - dt.timedelta(minutes=10)
    with session_scope(steward.sessions) as s:
        s.get(Rollout, rollout_id).step_started_at = start
    rows = []
    for i in range(80):
        model, role = (b.id, "canary") if i % 4 == 0 else (a.id, "primary")
        rows.append({"ts": start + dt.timedelta(seconds=5 * i + 1), "request_id": f"p{i}", "use_case": "story",
                     "model_id": model, "role": role, "messages": [{"role": "user", "content": f"story {i}"}],
                     "response": "once upon a time", "input_tokens": 12, "output_tokens": 30, "latency_ms": 120.0,
                     "cost_usd": 0.00001, "status": "ok"})
    steward.logs.append_many(rows)
    steward.logs.flush()
    try:
        call_tool("rollout_advance", {"use_case": "story"}, ctx)
    except ApprovalRequired as exc:
        return {"rollout": rollout_id, "approval": exc.details["approval_id"], "a": a.id, "b": b.id}
    raise AssertionError("advancing to 100% did not ask for an approval")
