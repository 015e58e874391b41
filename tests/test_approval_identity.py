"""Who started it counts: the person behind an agent run cannot approve what the run requests, the
CLI's approval identity is proven (token or OS user, never a free ``--as``), and an approval decided
anywhere is carried out by one path (the ``approval_decide`` tool)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from agent_helpers import CAND, UC, shared_mlflow, pass_eval, routing, setup_use_case
from fastapi.testclient import TestClient
from server_helpers import bearer, make_tokens
from sqlalchemy import select

from modelsteward.context import effective_user
from modelsteward.errors import ApprovalRequired
from modelsteward.server import create_app
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import AgentRun, Approval, PolicyDecision
from modelsteward.tools.base import ToolContext, call_tool

STEWARD = [sys.executable, "-m", "modelsteward"]


@pytest.fixture(autouse=True)
def _tracking(shared_mlflow: str) -> str:  # noqa: F811 - the fixture imported above
    return shared_mlflow


def cli(ws: Path, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STEWARD_HOME": str(ws)}
    env.pop("STEWARD_DATABASE_URL", None)
    env.pop("STEWARD_TOKEN", None)
    if token is not None:
        env["STEWARD_TOKEN"] = token
    return subprocess.run([*STEWARD, *args], capture_output=True, text=True, env=env, timeout=300)


def _approval(steward: Any, aid: int) -> Approval:
    with session_scope(steward.sessions) as s:
        return s.get(Approval, aid)


def _denials(steward: Any) -> list[PolicyDecision]:
    with session_scope(steward.sessions) as s:
        return list(s.scalars(select(PolicyDecision).where(PolicyDecision.policy == "no_self_approval")))


def _policy_request(steward: Any, actor: str) -> int:
    """A set_policy call by ``actor``: needs an approval; returns its id."""
    with pytest.raises(ApprovalRequired) as ei:
        call_tool("set_policy", {"use_case": UC, "rollout": {"min_requests": 77}}, ToolContext(steward=steward, actor=actor))
    return int(ei.value.details["approval_id"])


def _min_requests(steward: Any) -> Any:
    return (steward.registry.get_use_case(UC).config or {}).get("rollout", {}).get("min_requests")


def test_agent_run_starter_may_not_approve_what_the_run_requests(steward: Any, hosted_upstream: Any) -> None:
    setup_use_case(steward, cand_url=hosted_upstream.url)  # CAND answers its check when the deploy is carried out
    pass_eval(steward)
    tokens = make_tokens(steward)
    before = routing(steward)
    with TestClient(create_app(steward, gateway=False), raise_server_exceptions=False) as client:
        r = client.post("/api/agent-runs?wait=true", headers=bearer(tokens["approver"]),
                        json={"goal": f"deploy {CAND} to {UC} full", "trigger": "chat"})
        assert r.status_code == 201, r.text
        run = r.json()
        assert run["status"] == "waiting_approval" and run["approval_id"], run
        aid = run["approval_id"]
        with session_scope(steward.sessions) as s:
            assert s.get(AgentRun, run["run_id"]).started_by == "api:approver"
        r = client.post(f"/api/approvals/{aid}/approve", headers=bearer(tokens["approver"]), json={"reason": "mine"})
        assert r.status_code == 403, r.text
        body = r.json()
        assert body["code"] == "policy_denied" and "no_self_approval" in body["message"], body
        assert "started agent run" in body["message"]
        assert _approval(steward, aid).status == "pending"
        assert routing(steward) == before
        assert any(d.actor == "api:approver" and d.verdict == "deny" for d in _denials(steward))
        # another approver may: the run resumes (on the task registry) and carries out the deploy
        r = client.post(f"/api/approvals/{aid}/approve", headers=bearer(tokens["approver2"]), json={})
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["resuming_agent_run"] == run["run_id"] and out["task_id"], out
        assert out["summary"] == f"approved; resuming agent run {run['run_id']} (task {out['task_id']})"
        deadline = time.monotonic() + 120
        while True:
            task = client.get(f"/api/tasks/{out['task_id']}", headers=bearer(tokens["viewer"])).json()
            if task["status"] != "running" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert task["status"] == "succeeded", task
    assert routing(steward)[1] == [{"model_id": CAND, "weight": 100.0, "role": "primary"}]
    assert _approval(steward, aid).status == "executed"


def test_scheduled_runs_are_started_by_the_schedule(steward: Any) -> None:
    import datetime as dt

    from modelsteward.agent.scheduler import run_schedule

    setup_use_case(steward)
    ticks = run_schedule(steward, dt.timedelta(hours=1), max_runs=1, sleep=lambda s: None)
    with session_scope(steward.sessions) as s:
        assert s.get(AgentRun, ticks[0].run_id).started_by == "schedule"


def test_cli_as_may_not_claim_another_name(steward: Any) -> None:
    """Without a token nobody decides on the CLI (an OS account proves no person); ``--as`` changes nothing."""
    setup_use_case(steward)
    me = effective_user()
    aid = _policy_request(steward, f"cli:{me}")
    ws = steward.settings.home
    for extra in (["--as", "someone-else"], ["--as", me], []):
        proc = cli(ws, "approvals", "approve", str(aid), *extra)
        assert proc.returncode != 0, proc.stdout + proc.stderr
        assert "STEWARD_TOKEN" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        assert "Traceback" not in proc.stderr
    assert _approval(steward, aid).status == "pending" and _min_requests(steward) is None


def test_logname_does_not_change_who_you_are(steward: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 25.4: ``LOGNAME=mallory steward approvals approve N`` approved as mallory (getpass reads
    LOGNAME/USER), defeating the no-self-approval rule and forging the audit trail."""
    from modelsteward.cli.common import cli_identity

    setup_use_case(steward)
    me = effective_user()
    aid = _policy_request(steward, f"cli:{me}")
    env = {"LOGNAME": "mallory", "USER": "mallory", "LNAME": "mallory", "USERNAME": "mallory"}
    proc = subprocess.run([*STEWARD, "approvals", "approve", str(aid), "--json"], capture_output=True, text=True,
                          timeout=300, env={**{k: v for k, v in os.environ.items() if k not in ("STEWARD_TOKEN",
                                                                                              "STEWARD_DATABASE_URL")},
                                            "STEWARD_HOME": str(steward.settings.home), **env})
    assert proc.returncode != 0, proc.stdout  # before the fix: 0, decided_by cli:mallory
    assert _approval(steward, aid).status == "pending" and _min_requests(steward) is None
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("STEWARD_TOKEN", raising=False)
    assert cli_identity(steward) == (f"cli:{me}", "admin") and me != "mallory"


def test_cli_token_identity_and_roles(steward: Any) -> None:
    setup_use_case(steward)
    tokens = make_tokens(steward)
    aid = _policy_request(steward, "api:operator")
    ws = steward.settings.home
    bad = cli(ws, "approvals", "approve", str(aid), token="stw_not-a-token")
    assert bad.returncode == 2 and "STEWARD_TOKEN" in bad.stderr and "Traceback" not in bad.stderr
    low = cli(ws, "approvals", "approve", str(aid), token=tokens["operator"])
    assert low.returncode == 1 and "approver" in low.stderr and "operator" in low.stderr
    other = cli(ws, "approvals", "approve", str(aid), "--as", "someone-else", token=tokens["approver"])
    assert other.returncode == 2 and "--as someone-else" in other.stderr
    assert _approval(steward, aid).status == "pending" and _min_requests(steward) is None
    ok = cli(ws, "approvals", "approve", str(aid), "--as", "approver", "--json", token=tokens["approver"])
    assert ok.returncode == 0, ok.stderr
    out = json.loads(ok.stdout)
    assert out["decided_by"] == "cli:approver" and out["status"] == "executed" and out["outcome"] == "executed"
    assert out["summary"].startswith("approved; executed set_policy"), out
    assert _min_requests(steward) == 77  # the approved policy change is carried out


def test_set_policy_approved_on_the_cli_is_carried_out(steward: Any) -> None:
    setup_use_case(steward)
    tokens = make_tokens(steward)
    aid = _policy_request(steward, "api:operator")
    proc = cli(steward.settings.home, "approvals", "approve", str(aid), token=tokens["approver"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[0].startswith(f"Approval {aid}: approved; executed set_policy")
    assert _approval(steward, aid).status == "executed"
    assert _min_requests(steward) == 77


def test_the_starter_rule_holds_for_every_kind_of_run(steward: Any) -> None:
    """Chat and CLI runs exclude their starter; scheduled runs exclude nobody; an approval the
    starter decided anyway (e.g. before this rule) cannot be consumed."""
    from modelsteward.errors import PolicyDenied

    setup_use_case(steward)
    with session_scope(steward.sessions) as s:
        runs = {who: AgentRun(trigger=trig, goal="", status="waiting_approval", thread_id=f"t-{trig}", planner="playbook",
                              steps=[], started_by=who)
                for who, trig in (("cli:alice", "chat"), ("schedule", "schedule"))}
        s.add_all(runs.values())
        s.flush()
        run_ids = {who: r.id for who, r in runs.items()}
    aids = {}
    for who, rid in run_ids.items():
        ctx = ToolContext(steward=steward, actor=f"agent:run-{rid}", agent_run_id=rid, thread_id=f"t-{who}")
        with pytest.raises(ApprovalRequired) as ei:
            call_tool("set_policy", {"use_case": UC, "rollout": {"min_requests": 50 + rid}}, ctx)
        aids[who] = int(ei.value.details["approval_id"])
    decide = {"decision": "approve", "carry_out": False}
    with pytest.raises(PolicyDenied, match="started agent run"):
        call_tool("approval_decide", {"approval_id": aids["cli:alice"], **decide},
                  ToolContext(steward=steward, actor="api:Alice"))
    out: Any = call_tool("approval_decide", {"approval_id": aids["schedule"], **decide},
                         ToolContext(steward=steward, actor="api:alice"))
    assert out.status == "approved" and out.outcome == "decided"
    # decided by the starter behind the rule's back: executing it is refused, nothing changes
    with session_scope(steward.sessions) as s:
        row = s.get(Approval, aids["cli:alice"])
        row.status, row.decided_by = "approved", "api:alice"
    with pytest.raises(PolicyDenied, match="approval_mismatch"):
        call_tool("set_policy", {"use_case": UC, "rollout": {"min_requests": 50 + run_ids["cli:alice"]}},
                  ToolContext(steward=steward, actor="agent:run-1", approval_id=aids["cli:alice"]))
    assert _approval(steward, aids["cli:alice"]).status == "approved" and _min_requests(steward) is None
