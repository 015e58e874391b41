"""The playbook planner, the graph's build-time checks, approvals through the CLI, and the console."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from agent_helpers import shared_mlflow, CAND, INJECTION, STABLE, UC, pass_eval, routing, setup_use_case
from sqlalchemy import select

from modelsteward.agent import AgentRuntime, PlaybookPlanner, agent_toolset, build_graph, run_agent
from modelsteward.agent.chat import ChatSession
from modelsteward.agent.planners import ChatIntentPlanner
from modelsteward.errors import ConfigError
from modelsteward.fakes.upstream import InstantUpstream
from modelsteward.server.auth import create_token
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import AgentRun, Approval

STEWARD = [sys.executable, "-m", "modelsteward"]


@pytest.fixture(autouse=True)
def _tracking(shared_mlflow: str) -> str:
    return shared_mlflow


def cli(ws: Path, *args: str, ok: bool = True, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STEWARD_HOME": str(ws)}
    env.pop("STEWARD_DATABASE_URL", None)
    env.pop("STEWARD_TOKEN", None)
    if token is not None:  # the CLI's identity: the token's name (``--as`` may only restate it)
        env["STEWARD_TOKEN"] = token
    proc = subprocess.run([*STEWARD, *args], capture_output=True, text=True, env=env, timeout=300)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


class _Fixed:
    name = "fixed"

    def __init__(self, names: list[str]) -> None:
        self.names = names

    def tool_names(self, available):  # type: ignore[no-untyped-def]
        return self.names

    def plan(self, state, tools):  # type: ignore[no-untyped-def]
        raise AssertionError("not reached")


def _rt(steward, planner, tools=None) -> AgentRuntime:  # type: ignore[no-untyped-def]
    return AgentRuntime(steward=steward, planner=planner, tools=tools if tools is not None else agent_toolset(),
                        run_id=1, thread_id="t")


def test_build_fails_naming_an_unknown_tool(steward) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="'rollout_advnce'.*Did you mean: rollout_advance"):
        build_graph(_rt(steward, _Fixed(["scan", "rollout_advnce"])))


def test_build_refuses_people_only_tools(steward) -> None:  # type: ignore[no-untyped-def]
    from modelsteward.tools.base import get_tool

    tools = {**agent_toolset(), "approval_decide": get_tool("approval_decide")}
    with pytest.raises(ConfigError, match="'approval_decide' may not be bound"):
        build_graph(_rt(steward, _Fixed([]), tools))


def test_build_refuses_a_tool_that_is_not_the_registered_one(steward) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    fake = dataclasses.replace(agent_toolset()["t_note"])
    with pytest.raises(ConfigError, match="'t_note' is not the registered tool"):
        build_graph(_rt(steward, _Fixed([]), {**agent_toolset(), "t_note": fake}))


def test_playbook_quiet_workspace(steward) -> None:  # type: ignore[no-untyped-def]
    steward.registry.register_model("openai", "stable-model", price_in_per_m="1", price_out_per_m="2")
    steward.registry.add_use_case(UC, description="d", model=STABLE)
    res = run_agent(steward)
    assert res.status == "completed", res.error
    assert "guard_check" in res.report and "nothing more to do" in res.report
    with session_scope(steward.sessions) as s:
        run = s.get(AgentRun, res.run_id)
        assert run.report == res.report and run.planner == "playbook" and run.finished_at is not None
    assert (steward.settings.workspace / "checkpoints.db").exists()


def test_playbook_ignores_injected_instructions(steward) -> None:  # type: ignore[no-untyped-def]
    setup_use_case(steward, description=INJECTION, cand_description=INJECTION,
                   config={"agent": {"evaluate": {"samples": 5, "safety": False, "max_tokens": 8}}})
    steward.registry.register_model("openai", "evil-model", price_in_per_m="0", price_out_per_m="0",
                                    metadata={"description": INJECTION}, use_case=UC)
    steward.logs.append_many([{"ts": "2026-11-25T10:00:00Z", "request_id": f"inj-{i}", "use_case": UC,
                               "model_id": STABLE, "role": "primary", "feedback": 1.0, "status": "ok",
                               "messages": [{"role": "user", "content": INJECTION}], "response": "no"}
                              for i in range(3)])
    steward.logs.flush()
    before = routing(steward)
    res = run_agent(steward)
    assert res.status == "completed", res.error
    assert routing(steward) == before
    with session_scope(steward.sessions) as s:
        steps = s.get(AgentRun, res.run_id).steps
        assert list(s.scalars(select(Approval))) == []
    called = [(e["name"], e["args"]) for e in steps if e["kind"] == "tool"]
    assert all(name != "deploy" for name, _ in called)
    # it did its normal job on structured data: evaluated the untested candidates
    assert {a.get("model_id") for n, a in called if n == "evaluate"} == {CAND, "openai:evil-model"}


@pytest.fixture
def cand_up() -> Any:
    """An endpoint that answers, for CAND when a test carries out its deploy (it passes its check first)."""
    with InstantUpstream() as up:
        yield up


def _full_rollout_waiting(steward, cand_url):  # type: ignore[no-untyped-def]
    setup_use_case(steward, config={"agent": {"rollout_strategy": "full"}}, cand_url=cand_url)  # CAND answers its check
    pass_eval(steward)
    res = run_agent(steward)
    assert res.status == "waiting_approval", res.report
    return res


def test_approve_from_the_cli_resumes_the_run(steward, cand_up) -> None:  # type: ignore[no-untyped-def]
    res = _full_rollout_waiting(steward, cand_up.url)
    before = routing(steward)
    with session_scope(steward.sessions) as s:
        a = s.get(Approval, res.approval_id)
        assert (a.action, a.status, a.thread_id, a.agent_run_id) == ("deploy", "pending", res.thread_id, res.run_id)
    listed = json.loads(cli(steward.settings.home, "approvals", "list", "--json").stdout)
    assert [r["id"] for r in listed] == [res.approval_id]
    bob = create_token(steward, "bob", "approver")[1]
    out = json.loads(cli(steward.settings.home, "approvals", "approve", str(res.approval_id), "--as", "bob",
                         "--reason", "cheaper, tested", "--json", token=bob).stdout)
    assert out["decided_by"] == "cli:bob" and out["decision_reason"].startswith("cheaper, tested")
    assert out["status"] == "executed" and out["summary"] == f"approved; resumed agent run {res.run_id}: completed"
    assert out["agent_run"]["run_id"] == res.run_id and out["agent_run"]["status"] == "completed"
    version, table = routing(steward)
    assert version == before[0] + 1 and table == [{"model_id": CAND, "weight": 100.0, "role": "primary"}]
    with session_scope(steward.sessions) as s:
        assert s.get(Approval, res.approval_id).status == "executed"
        run = s.get(AgentRun, res.run_id)
        assert run.status == "completed"
    assert "approved by cli:bob" in run.report
    deploys = [e for e in run.steps if e["kind"] == "tool" and e["name"] == "deploy"]
    assert len(deploys) == 1 and deploys[0]["ok"] and deploys[0]["approval_id"] == res.approval_id
    # deciding it again is a clear error, and nothing resumes twice
    again = cli(steward.settings.home, "approvals", "approve", str(res.approval_id), ok=False, token=bob)
    assert again.returncode != 0 and "already executed" in again.stderr


def test_reject_resumes_without_the_action(steward) -> None:  # type: ignore[no-untyped-def]
    res = _full_rollout_waiting(steward, None)  # rejected: CAND takes no traffic
    before = routing(steward)
    carol = create_token(steward, "carol", "approver")[1]
    out = cli(steward.settings.home, "approvals", "reject", str(res.approval_id), "--reason", "not now", token=carol)
    assert f"rejected; resumed agent run {res.run_id}: completed" in out.stdout
    assert routing(steward) == before
    with session_scope(steward.sessions) as s:
        run = s.get(AgentRun, res.run_id)
    assert "rejected by cli:carol" in run.report and "not now" in run.report


def test_approving_an_unknown_approval_is_a_clear_error(steward) -> None:  # type: ignore[no-untyped-def]
    token = create_token(steward, "bob", "approver")[1]  # deciding on the CLI needs an approver token (issue 25.5)
    proc = cli(steward.settings.home, "approvals", "approve", "4242", ok=False, token=token)
    assert proc.returncode == 1
    assert "Unknown approval 4242" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_console_answers_and_guards_proposals(steward) -> None:  # type: ignore[no-untyped-def]
    setup_use_case(steward)
    steward.logs.append_many([{"ts": "2026-11-25T10:00:00Z", "request_id": f"r{i}", "use_case": UC, "model_id": STABLE,
                               "role": "primary", "messages": [{"role": "user", "content": "hi"}], "response": "yo",
                               "status": "ok"} for i in range(4)])
    steward.logs.flush()
    chat = ChatSession(steward, planner=ChatIntentPlanner())
    reply = chat.ask("SELECT count(*) AS n FROM logs WHERE use_case = 'chat'")
    assert reply.status == "completed" and '"n": 4' in reply.answer
    refused = chat.ask("sql: DELETE FROM logs")
    assert "read_only" in refused.answer or "read-only" in refused.answer
    assert "openai:cand-model" in chat.ask("models chat").answer
    before = routing(steward)
    proposal = chat.ask(f"deploy {CAND} to {UC} canary")
    assert proposal.status == "completed" and "evaluation_required" in proposal.answer  # denied by policy
    assert routing(steward) == before
    assert "I understand" in chat.ask("what is the meaning of life").answer


def test_chat_cli_offline(steward) -> None:  # type: ignore[no-untyped-def]
    setup_use_case(steward)
    out = json.loads(cli(steward.settings.home, "chat", "-m", "use cases", "-m", "rollouts", "--json").stdout)
    assert [r["status"] for r in out] == ["completed", "completed"]
    assert '"name": "chat"' in out[0]["answer"] and "show_rollouts" in out[1]["answer"]


def test_agent_run_cli_json(steward) -> None:  # type: ignore[no-untyped-def]
    setup_use_case(steward)
    out = json.loads(cli(steward.settings.home, "agent", "run", "--use-case", UC, "--json").stdout)
    assert out["status"] == "completed" and out["report"].startswith(f"# Agent run {out['run_id']}")
    bad = cli(steward.settings.home, "agent", "run", "--use-case", "chta", ok=False)
    assert bad.returncode == 1 and "Did you mean: chat" in bad.stderr


def test_playbook_declares_only_registered_tools() -> None:
    names = PlaybookPlanner().tool_names(agent_toolset())
    assert "deploy" in names and "approval_decide" not in names


def test_decision_while_busy_is_resumed_by_the_next_start(steward, cand_up) -> None:  # type: ignore[no-untyped-def]
    from modelsteward.agent import AgentBusy, resume_after_decision
    from modelsteward.agent.runner import agent_lock
    from modelsteward.policies import approvals

    res = _full_rollout_waiting(steward, cand_up.url)
    approvals.approve(steward.sessions, res.approval_id, decider="cli:erin")
    with agent_lock(steward):  # e.g. a long scheduled run is executing
        with pytest.raises(AgentBusy):
            resume_after_decision(steward, res.approval_id, lock_wait=0.2)
    nxt = run_agent(steward)
    assert nxt.status == "completed"
    with session_scope(steward.sessions) as s:
        assert s.get(AgentRun, res.run_id).status == "completed"
        assert s.get(Approval, res.approval_id).status == "executed"
    assert routing(steward)[1] == [{"model_id": CAND, "weight": 100.0, "role": "primary"}]
    assert resume_after_decision(steward, res.approval_id) is None  # nothing waits on it any more


def test_console_proposals_are_requested_by_the_operator(steward, cand_up) -> None:  # type: ignore[no-untyped-def]
    from modelsteward.errors import PolicyDenied
    from modelsteward.policies import approvals

    setup_use_case(steward, cand_url=cand_up.url)  # CAND answers its check
    pass_eval(steward)
    chat = ChatSession(steward, planner=ChatIntentPlanner(), actor="cli:alice")
    reply = chat.ask(f"deploy {CAND} to {UC} full")
    assert reply.status == "waiting_approval" and reply.approval_id is not None
    with session_scope(steward.sessions) as s:
        assert s.get(Approval, reply.approval_id).requester == "cli:alice"
    with pytest.raises(PolicyDenied, match="no self-approval"):
        approvals.approve(steward.sessions, reply.approval_id, decider="cli:alice")
    approvals.approve(steward.sessions, reply.approval_id, decider="cli:bob")
    from modelsteward.agent import resume_after_decision

    res = resume_after_decision(steward, reply.approval_id)
    assert res is not None and res.status == "completed" and '"action": "deployed"' in res.answer
    assert routing(steward)[1] == [{"model_id": CAND, "weight": 100.0, "role": "primary"}]


def test_inconclusive_candidate_is_evaluated_again_on_a_larger_sample() -> None:
    """The playbook reads 'inconclusive' as 'too few samples' and asks again with twice as many."""
    from langchain_core.messages import HumanMessage

    from modelsteward.agent.planners import MAX_EVAL_SAMPLES, PlaybookPlanner
    from modelsteward.tools.base import load_all_tools

    tools = load_all_tools()
    test = {"id": 1, "candidate": "local:ft", "baseline": "local:base", "verdict": "inconclusive", "passed": False,
            "samples": 16, "metrics": {}}
    obs = {"catalog": {"stale": False}, "pending_approvals": [], "use_cases": [{
        "name": "story", "current_model": "local:base", "rollouts": [], "violations": [], "new_feedback": {},
        "agent_config": {"evaluate": {"samples": 12}}, "last_fine_tune": None, "pending_approvals": [],
        "models": [
            {"id": "local:base", "status": "current", "kind": "self_hosted", "latest_test": None},
            {"id": "local:ft", "status": "candidate", "kind": "fine_tuned", "parent_model_id": "local:base",
             "latest_test": test},
        ]}]}
    done_rank = {"name": "rank", "args": {"use_case": "story"}, "id": "r1"}
    from langchain_core.messages import AIMessage, ToolMessage

    state = {"observation": obs, "use_case": "story", "messages": [
        HumanMessage(content="go"),
        AIMessage(content="", tool_calls=[{"name": "guard_check", "args": {"use_case": "story"}, "id": "g1"}]),
        ToolMessage(content="{}", tool_call_id="g1"),
        AIMessage(content="", tool_calls=[done_rank]), ToolMessage(content="{}", tool_call_id="r1")]}
    msg = PlaybookPlanner().plan(state, tools)  # type: ignore[arg-type]
    calls = msg.tool_calls
    assert calls and calls[0]["name"] == "evaluate", msg.content
    assert calls[0]["args"]["samples"] == 32 and "inconclusive" in str(msg.content)
    test["samples"] = 24  # already twice the configured 12: not asked again
    msg = PlaybookPlanner().plan(state, tools)  # type: ignore[arg-type]
    assert not any(c["name"] == "evaluate" for c in msg.tool_calls)
    test["samples"] = MAX_EVAL_SAMPLES
    msg = PlaybookPlanner().plan(state, tools)  # type: ignore[arg-type]
    assert not any(c["name"] == "evaluate" for c in msg.tool_calls)
