"""Each hard-coded policy, with a test that tries to break it (and finds every denial recorded)."""

from __future__ import annotations

import datetime as dt

import pytest
from rollout_helpers import CAND, STABLE, UC, add_rows, backdate_step, ctx, healthy_window, pass_eval, setup_use_case
from sqlalchemy import func, select

from modelsteward.errors import ApprovalRequired, Conflict, IllegalTransition, InvalidInput, PolicyDenied
from modelsteward.policies import enforce, evaluate
from modelsteward.rollout import RolloutManager
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import Approval, DeploymentHistory, PolicyDecision, Rollout, UseCase, utcnow
from modelsteward.tools import call_tool
from modelsteward.tools.base import policy_verdict

# their models (openai:) answer the check a model passes before it takes traffic (tools/checks.py)
pytestmark = pytest.mark.usefixtures("hosted_upstream")


def _decisions(steward, policy: str | None = None) -> list[PolicyDecision]:
    with session_scope(steward.sessions) as s:
        q = select(PolicyDecision).order_by(PolicyDecision.id)
        rows = list(s.scalars(q))
    return [r for r in rows if policy is None or policy in r.policy.split(",")]


def _version(steward) -> int:
    return steward.registry.deployment(UC).version


def _deploy(steward, actor="cli:alice", **kw):
    args = {"use_case": UC, "model_id": CAND, "strategy": "canary", **kw}
    return call_tool("deploy", args, ctx(steward, actor))


@pytest.fixture
def st(steward):
    setup_use_case(steward)
    return steward


# ---------------------------------------------------------------------- evaluation_required
def test_no_canary_traffic_without_a_passing_evaluation(st) -> None:
    v0 = _version(st)
    with pytest.raises(PolicyDenied, match="evaluation_required"):
        _deploy(st)
    pass_eval(st, passed=False)  # a failing evaluation does not count
    with pytest.raises(PolicyDenied, match="evaluation_required"):
        _deploy(st, strategy="full")
    assert _version(st) == v0 and RolloutManager(st).active(UC) is None
    assert len(_decisions(st, "evaluation_required")) == 2
    # shadow traffic of an unevaluated model needs an approval (live prompts are mirrored to it)
    with pytest.raises(ApprovalRequired, match="shadow_unevaluated"):
        _deploy(st, strategy="shadow")
    pass_eval(st)
    out = _deploy(st, strategy="shadow")
    assert out.rollout.strategy == "shadow"


def test_stale_evaluation_does_not_count_even_if_config_loosens_the_age(st) -> None:
    pass_eval(st, age_days=40)
    st.registry.update_use_case(UC, config={"policy": {"eval_max_age_days": 365}})  # loosened: clamped to 30
    with pytest.raises(PolicyDenied, match="last 30 days"):
        _deploy(st)
    pass_eval(st, age_days=1)
    assert _deploy(st).action == "deployed"


def test_evaluation_checked_again_on_each_advance(st) -> None:
    pass_eval(st)
    _deploy(st)
    with session_scope(st.sessions) as s:
        from modelsteward.storage.models import TestResult

        for t in s.scalars(select(TestResult)):
            t.created_at = utcnow() - dt.timedelta(days=60)
    healthy_window(st, 5)
    with pytest.raises(PolicyDenied, match="evaluation_required"):
        call_tool("rollout_advance", {"use_case": UC}, ctx(st))
    assert RolloutManager(st).active(UC).step_index == 0


# ---------------------------------------------------------------------- canary_step_size / every_step_passed
@pytest.mark.parametrize("steps", [[10, 50, 100], [30, 100], [5, 25, 60, 100]])
def test_canary_steps_above_25_points_are_denied(st, steps) -> None:
    pass_eval(st)
    st.registry.update_use_case(UC, config={"policy": {"max_step_points": 60}})  # clamped to 25
    with pytest.raises(PolicyDenied, match="canary_step_size"):
        _deploy(st, steps=steps)
    assert _version(st) == 1


def test_tampered_steps_are_denied_at_advance(st) -> None:
    pass_eval(st)
    _deploy(st)
    with session_scope(st.sessions) as s:
        ro = s.scalars(select(Rollout)).one()
        ro.steps = [5.0, 60.0, 100.0]
    healthy_window(st, 5)
    with pytest.raises(PolicyDenied, match="raises traffic by 55 points"):
        call_tool("rollout_advance", {"use_case": UC}, ctx(st))
    assert st.registry.routing_table(st.registry.deployment(UC))[0]["weight"] == 5.0


def test_promotion_needs_every_step_passed(st) -> None:
    pass_eval(st)
    _deploy(st)
    RolloutManager(st).step_to(UC, 2, actor="cli:alice", reason="skip ahead")  # skips steps 0 and 1's analyses
    healthy_window(st, 50)
    with pytest.raises(PolicyDenied, match="every_step_passed"):
        call_tool("rollout_advance", {"use_case": UC}, ctx(st))
    assert all(a.status != "pending" for a in _approvals(st))


def _approvals(steward) -> list[Approval]:
    with session_scope(steward.sessions) as s:
        return list(s.scalars(select(Approval).order_by(Approval.id)))


def _to_last_step(st) -> None:
    pass_eval(st)
    _deploy(st)
    for w in (5, 25):
        healthy_window(st, w)
        assert call_tool("rollout_advance", {"use_case": UC}, ctx(st)).action == "advanced"
    healthy_window(st, 50)


# ---------------------------------------------------------------------- promotion_to_100 + approvals
def test_promotion_to_100_needs_an_approval_by_someone_else(st) -> None:
    _to_last_step(st)
    v = _version(st)
    with pytest.raises(ApprovalRequired) as ei:
        call_tool("rollout_advance", {"use_case": UC}, ctx(st, "agent:run-1", thread_id="t-1", agent_run_id=1))
    aid = ei.value.details["approval_id"]
    assert ei.value.approval_id == aid and _version(st) == v
    a = _approvals(st)[-1]
    assert (a.action, a.arguments, a.requester, a.thread_id, a.agent_run_id, a.status) == (
        "rollout_advance", {"use_case": UC, "resume": None, "no_check": False}, "agent:run-1", "t-1", 1, "pending")
    # executing before approval: still pending -> the call is refused, nothing changes
    with pytest.raises(PolicyDenied, match="pending, not approved"):
        call_tool("rollout_advance", {"use_case": UC}, ctx(st, "agent:run-1", approval_id=aid))
    # the requester may not approve, nor may another agent
    with pytest.raises(PolicyDenied, match="no_self_approval"):
        call_tool("approval_decide", {"approval_id": aid, "decision": "approve"}, ctx(st, "agent:run-1"))
    with pytest.raises(PolicyDenied, match="agents may not decide"):
        call_tool("approval_decide", {"approval_id": aid, "decision": "approve"}, ctx(st, "agent:run-2"))
    out = call_tool("approval_decide", {"approval_id": aid, "decision": "approve", "carry_out": False, "reason": "ok"}, ctx(st, "cli:bob"))
    assert out.status == "approved" and out.decided_by == "cli:bob"
    with pytest.raises(Conflict, match="already approved"):
        call_tool("approval_decide", {"approval_id": aid, "decision": "reject"}, ctx(st, "cli:carol"))
    # the approval covers exactly these arguments
    with pytest.raises(PolicyDenied, match="approval_mismatch"):
        call_tool("rollout_advance", {"use_case": UC, "resume": True}, ctx(st, "agent:run-1", approval_id=aid))
    res = call_tool("rollout_advance", {"use_case": UC}, ctx(st, "agent:run-1", approval_id=aid))
    assert res.action == "completed"
    assert [r.model_dump() for r in res.routing] == [{"model_id": CAND, "weight": 100.0, "role": "primary"}]
    assert st.registry.get_model(CAND).status == "current" and st.registry.get_model(STABLE).status == "candidate"
    assert _approvals(st)[-1].status == "executed"
    assert len(_decisions(st, "no_self_approval")) >= 2


def test_an_executed_approval_cannot_be_replayed(st) -> None:
    _to_last_step(st)
    with pytest.raises(ApprovalRequired) as ei:
        call_tool("rollout_advance", {"use_case": UC}, ctx(st))
    aid = ei.value.approval_id
    call_tool("approval_decide", {"approval_id": aid, "decision": "approve", "carry_out": False}, ctx(st, "cli:bob"))
    call_tool("rollout_advance", {"use_case": UC}, ctx(st, approval_id=aid))
    # a new rollout (back to the old model) reaches its last step: the old approval does not promote it
    call_tool("rollback", {"use_case": UC}, ctx(st))
    with session_scope(st.sessions) as s:
        for h in s.scalars(select(DeploymentHistory)):
            h.created_at = utcnow() - dt.timedelta(hours=3)
    _to_last_step(st)
    with pytest.raises(PolicyDenied, match="executed, not approved"):
        call_tool("rollout_advance", {"use_case": UC}, ctx(st, approval_id=aid))


def test_rejected_approval_does_not_authorise(st) -> None:
    _to_last_step(st)
    with pytest.raises(ApprovalRequired) as ei:
        call_tool("rollout_advance", {"use_case": UC}, ctx(st))
    aid = ei.value.approval_id
    call_tool("approval_decide", {"approval_id": aid, "decision": "reject", "reason": "not yet"}, ctx(st, "cli:bob"))
    with pytest.raises(PolicyDenied, match="rejected, not approved"):
        call_tool("rollout_advance", {"use_case": UC}, ctx(st, approval_id=aid))
    assert _version(st) == RolloutManager(st).status(UC)["version"]


def test_full_strategy_needs_approval(st) -> None:
    pass_eval(st)
    with pytest.raises(ApprovalRequired, match="promotion_to_100"):
        _deploy(st, strategy="full")
    assert _version(st) == 1


def test_approving_an_approval_decision_is_refused(st) -> None:
    with pytest.raises(PolicyDenied):
        enforce(ctx(st, "cli:bob", approval_id=1), "approval_decide", {"approval_id": 1, "decision": "approve"})


# ---------------------------------------------------------------------- cost and budget
def test_cost_increase_over_10_percent_needs_approval(steward) -> None:
    setup_use_case(steward, cand_price=("1.2", "2.4"), config={"policy": {"cost_increase_approval": 0.5}})
    pass_eval(steward)
    with pytest.raises(ApprovalRequired, match=r"cost_increase.*20%"):
        _deploy(steward)
    assert _version(steward) == 1
    d = policy_verdict("deploy", {"use_case": UC, "model_id": CAND, "strategy": "shadow"}, ctx(steward))
    assert d.verdict == "allow"


def test_cheaper_candidate_needs_no_cost_approval(steward) -> None:
    setup_use_case(steward, cand_price=("0.5", "1"))
    pass_eval(steward)
    assert _deploy(steward).action == "deployed"


def test_projected_cost_beyond_budget_is_denied(steward) -> None:
    # 1000 requests in the last day ~ 30k/month; candidate at $0.0009/request ~ $27/month > $10 budget
    setup_use_case(steward, budget="10", cand_price=("1", "2"), config={"policy": {"budget_fraction": 3.0}})
    add_rows(steward, STABLE, "primary", 1000, ts=utcnow() - dt.timedelta(hours=23))
    add_rows(steward, STABLE, "primary", 1, ts=utcnow())
    pass_eval(steward)
    with pytest.raises(PolicyDenied, match=r"budget.*exceeds 100% of the \$10.00 budget"):
        _deploy(steward)
    with pytest.raises(PolicyDenied, match="budget"):
        _deploy(steward, strategy="shadow")  # mirroring doubles the cost
    assert _version(steward) == 1


# ---------------------------------------------------------------------- one rollout, cooldown, rate
def test_one_active_rollout_per_use_case(st) -> None:
    pass_eval(st)
    _deploy(st)
    v = _version(st)
    st.registry.register_model("openai", "third", price_in_per_m="1", price_out_per_m="2", status="candidate")
    pass_eval(st, "openai:third")
    with pytest.raises(PolicyDenied, match="one_active_rollout"):
        _deploy(st, model_id="openai:third")
    with pytest.raises(Conflict, match="already has rollout"):  # the manager refuses it too
        RolloutManager(st).deploy(UC, "openai:third", "canary", actor="cli:alice")
    assert _version(st) == v


def test_cooldown_after_rollback(st) -> None:
    pass_eval(st)
    st.registry.update_use_case(UC, config={"policy": {"rollback_cooldown_minutes": 1},
                                            "rollout": {"min_requests": 10, "min_duration_s": 30}})
    _deploy(st)
    call_tool("rollout_abort", {"use_case": UC}, ctx(st))
    with pytest.raises(PolicyDenied, match=r"rollback_cooldown.*30 minutes"):  # 1 minute clamped up to 30
        _deploy(st)
    with session_scope(st.sessions) as s:
        for h in s.scalars(select(DeploymentHistory).where(DeploymentHistory.action == "rollout_abort")):
            h.created_at = utcnow() - dt.timedelta(minutes=31)
    assert _deploy(st).action == "deployed"


def test_cap_on_deploys_per_hour(st) -> None:
    pass_eval(st)
    st.registry.update_use_case(UC, config={"policy": {"max_deploys_per_hour": 1000}})  # clamped to 10
    with session_scope(st.sessions) as s:
        uc = s.scalars(select(UseCase)).one()
        for _ in range(10):
            s.add(DeploymentHistory(use_case_id=uc.id, action="deploy", actor="x", reason="", details={}))
    with pytest.raises(PolicyDenied, match="deploy_rate"):
        _deploy(st)


# ---------------------------------------------------------------------- other approvals
def test_full_fine_tuning_needs_approval(st) -> None:
    c = ctx(st)
    assert evaluate(c, "fine_tune", {"use_case": UC, "base": "local:x", "method": "lora"}).verdict == "allow"
    with pytest.raises(ApprovalRequired, match="full_fine_tune") as ei:
        enforce(c, "fine_tune", {"use_case": UC, "base": "local:x", "method": "full"})
    aid = ei.value.approval_id
    from modelsteward.policies import approvals

    approvals.approve(st.sessions, aid, decider="cli:bob")
    ok = enforce(ctx(st, approval_id=aid), "fine_tune", {"use_case": UC, "base": "local:x", "method": "full"})
    assert ok.verdict == "allow"


def test_retiring_the_current_model_needs_approval_and_a_replacement(st) -> None:
    with pytest.raises(ApprovalRequired, match="retire_current") as ei:
        call_tool("retire_model", {"model_id": STABLE}, ctx(st))
    aid = ei.value.approval_id
    call_tool("approval_decide", {"approval_id": aid, "decision": "approve", "carry_out": False}, ctx(st, "cli:bob"))
    with pytest.raises(Conflict, match="still serves live traffic"):
        call_tool("retire_model", {"model_id": STABLE}, ctx(st, approval_id=aid))
    assert st.registry.get_model(STABLE).status == "current" and _version(st) == 1
    out = call_tool("retire_model", {"model_id": CAND}, ctx(st))  # not current: no approval
    assert out.status == "retired"
    pass_eval(st)
    with pytest.raises(IllegalTransition, match="retired"):
        _deploy(st)


def test_policy_change_needs_approval_and_cannot_loosen(st) -> None:
    args = {"use_case": UC, "policy": {"cost_increase_approval": 0.05}}
    with pytest.raises(ApprovalRequired, match="policy_change") as ei:
        call_tool("set_policy", args, ctx(st))
    aid = ei.value.approval_id
    with pytest.raises(PolicyDenied):
        call_tool("approval_decide", {"approval_id": aid, "decision": "approve"}, ctx(st))
    call_tool("approval_decide", {"approval_id": aid, "decision": "approve", "carry_out": False}, ctx(st, "cli:bob"))
    out = call_tool("set_policy", args, ctx(st, approval_id=aid))
    assert out.config["policy"]["cost_increase_approval"] == 0.05
    loosen = {"use_case": UC, "policy": {"cost_increase_approval": 0.5}}
    with pytest.raises(InvalidInput, match="looser than its hard bound"):  # refused when asked, no approval
        call_tool("set_policy", loosen, ctx(st))
    assert st.registry.get_use_case(UC).config["policy"]["cost_increase_approval"] == 0.05


def test_safety_actions_are_never_blocked(st) -> None:
    for action in ("rollback", "rollout_abort", "guard_check"):
        assert evaluate(ctx(st, "agent:run-9"), action, {"use_case": UC}).verdict == "allow"


def test_every_denial_is_recorded(st) -> None:
    with session_scope(st.sessions) as s:
        before = s.scalar(select(func.count(PolicyDecision.id)))
    for _ in range(3):
        with pytest.raises(PolicyDenied):
            _deploy(st, actor="agent:run-5")
    rows = _decisions(st)
    assert len(rows) == before + 3
    assert {(r.verdict, r.actor, r.action) for r in rows[-3:]} == {("deny", "agent:run-5", "deploy")}
    assert rows[-1].use_case_id is not None and "evaluation" in rows[-1].reason


def test_advance_waiting_step_is_allowed_by_policy(st) -> None:
    pass_eval(st)
    _deploy(st)
    backdate_step(st, 5)
    assert policy_verdict("rollout_advance", {"use_case": UC}, ctx(st)).verdict == "allow"


def test_promotion_cannot_slip_through_a_stale_policy_verdict(st) -> None:
    """The policy saw an inconclusive window (allow) but by the time the tool analyses, the step has
    passed: the tool re-checks before raising traffic, so promotion still needs an approval."""
    from modelsteward.tools.rollout import AdvanceIn, rollout_advance

    _to_last_step(st)
    v = _version(st)
    with pytest.raises(ApprovalRequired, match="promotion_to_100"):
        rollout_advance(ctx(st), AdvanceIn(use_case=UC))  # the tool body alone, as after a stale allow
    assert _version(st) == v and RolloutManager(st).active(UC).step_index == 2


# ---------------------------------------------------------------------- facts and approval expiry (issue 18)
def test_pending_promotion_approval_expires_when_the_tool_ends_the_rollout(st) -> None:
    """The rollout tools (not rollout/) expire a promotion approval once its rollout ended."""
    _to_last_step(st)
    with pytest.raises(ApprovalRequired) as ei:
        call_tool("rollout_advance", {"use_case": UC}, ctx(st))
    aid = ei.value.details["approval_id"]
    call_tool("rollout_abort", {"use_case": UC, "reason": "changed my mind"}, ctx(st))
    with session_scope(st.sessions) as s:
        a = s.get(Approval, aid)
        assert a.status == "expired" and "rolled back" in (a.decision_reason or "")


def test_a_rule_without_the_facts_it_needs_fails_loudly(st) -> None:
    """Policies never gather facts themselves (no import of rollout/): a caller that skips the tool's
    hook gets an error naming the fact, not a silent allow."""
    from modelsteward.policies.registry import PolicyFactMissing

    pass_eval(st)
    with pytest.raises(PolicyFactMissing, match="usage"):
        evaluate(ctx(st), "deploy", {"use_case": UC, "model_id": CAND, "strategy": "canary"})
    assert evaluate(ctx(st), "deploy", {"use_case": UC, "model_id": CAND, "strategy": "canary"},
                    facts={"usage": {"requests": 0.0, "input_tokens": 10.0, "output_tokens": 10.0,
                                     "monthly_requests": 0.0}}).verdict == "allow"


def test_the_context_clock_is_the_policies_now(st) -> None:
    """``ToolContext.clock`` (a typed field, no longer an unset ``extras["clock"]``) is what the rules
    read as now: the same rollback cooldown (60 minutes) holds at the real time and is over two hours later."""
    pass_eval(st)
    _deploy(st)
    call_tool("rollout_abort", {"use_case": UC}, ctx(st))
    args = {"use_case": UC, "model_id": CAND, "strategy": "canary"}
    assert "rollback_cooldown" in policy_verdict("deploy", args, ctx(st)).policy
    later = ctx(st, clock=lambda: utcnow() + dt.timedelta(hours=2))
    assert "rollback_cooldown" not in policy_verdict("deploy", args, later).policy
