"""The deployment manager and the rollback manager on the log store fed directly with rows."""

from __future__ import annotations

import pytest
from rollout_helpers import CAND, STABLE, UC, add_rows, backdate_step, ctx, healthy_window, pass_eval, setup_use_case
from sqlalchemy import select

from modelsteward.errors import Conflict, IllegalTransition, InvalidInput, NotFound, PolicyDenied
from modelsteward.rollout import RollbackManager, RolloutManager, judge
from modelsteward.rollout.metrics import WindowMetrics, lexical_similarity
from modelsteward.bounds import section_of
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import DeploymentHistory, ModelSnapshot, Rollout
from modelsteward.tools import call_tool

# their models (openai:, openrouter:) answer the check a model passes before it takes traffic (tools/checks.py)
pytestmark = pytest.mark.usefixtures("hosted_upstream")


@pytest.fixture
def st(any_steward):
    """SQLite, and PostgreSQL too when STEWARD_TEST_POSTGRES_URL is set."""
    setup_use_case(any_steward)
    pass_eval(any_steward)
    return any_steward


def _table(steward):
    return steward.registry.routing_table(steward.registry.deployment(UC))


def _advance(steward, actor="cli:alice"):
    return call_tool("rollout_advance", {"use_case": UC}, ctx(steward, actor))


def _history(steward) -> list[DeploymentHistory]:
    with session_scope(steward.sessions) as s:
        return list(s.scalars(select(DeploymentHistory).order_by(DeploymentHistory.id)))


def test_canary_walks_its_steps_one_transaction_each(st) -> None:
    out = call_tool("deploy", {"use_case": UC, "model_id": CAND, "strategy": "canary"}, ctx(st))
    assert [r.model_dump() for r in out.routing] == [{"model_id": STABLE, "weight": 95.0, "role": "primary"},
                           {"model_id": CAND, "weight": 5.0, "role": "canary"}]
    assert st.registry.get_model(CAND).status == "canary"
    assert _advance(st).action == "waiting"  # no data yet: inconclusive, nothing changes
    assert _table(st)[0]["weight"] == 5.0
    for w, nxt in ((5, 25.0), (25, 50.0)):
        healthy_window(st, w)
        res = _advance(st)
        assert res.action == "advanced" and res.analysis.outcome == "successful"
        assert {r.model_id: r.weight for r in res.routing} == {CAND: nxt, STABLE: 100 - nxt}
    hist = _history(st)
    assert [h.action for h in hist] == ["initial", "deploy", "rollout_step", "rollout_step"]
    # every change: one history row naming its snapshot, versions contiguous, snapshot = table before it
    for prev, h in zip(hist, hist[1:]):
        assert h.from_version == prev.to_version and h.to_version == h.from_version + 1
        with session_scope(st.sessions) as s:
            snap = s.get(ModelSnapshot, h.snapshot_id)
            assert snap.allocations == prev.details["allocations"]
    ro = RolloutManager(st).active(UC)
    assert ro.step_index == 2 and [e["event"] for e in ro.analyses].count("analysis") == 3


def test_failing_candidate_is_aborted_and_rolled_back_fast(st) -> None:
    call_tool("deploy", {"use_case": UC, "model_id": CAND, "strategy": "canary"}, ctx(st))
    ro = RolloutManager(st).active(UC)
    backdate_step(st, 5)  # well inside min_duration_s: failure does not wait for the window to end
    add_rows(st, CAND, "canary", 12, errors=6)
    add_rows(st, STABLE, "primary", 100, errors=1)
    res = _advance(st)
    assert res.action == "rolled_back" and res.analysis.outcome == "failed"
    assert "error rate 50.0%" in res.analysis.reasons[0]
    with session_scope(st.sessions) as s:
        snap = s.get(ModelSnapshot, ro.snapshot_id)
        assert _table(st) == snap.allocations == [{"model_id": STABLE, "weight": 100.0, "role": "primary"}]
        assert s.get(Rollout, ro.id).state == "rolled_back"
    assert st.registry.get_model(CAND).status == "rejected"
    assert st.registry.get_model(STABLE).status == "current"


@pytest.mark.parametrize("kind", ["latency", "cost", "feedback", "safety"])
def test_each_analysis_metric_can_fail_a_step(st, kind) -> None:
    call_tool("deploy", {"use_case": UC, "model_id": CAND, "strategy": "canary"}, ctx(st))
    backdate_step(st, 60)
    cand = {"latency": {"latency": 400.0}, "cost": {"cost": 0.01}, "feedback": {"feedback": -0.5},
            "safety": {"flagged": 3}}[kind]
    base = {"feedback": {"feedback": 0.5}}.get(kind, {})
    add_rows(st, CAND, "canary", 12, **cand)
    add_rows(st, STABLE, "primary", 50, **base)
    res = _advance(st)
    assert res.action == "rolled_back", res.analysis
    word = {"latency": "p95 latency", "cost": "cost per request", "feedback": "mean feedback", "safety": "safety flags"}[kind]
    assert any(word in r for r in res.analysis.reasons)


def test_inconclusive_keeps_waiting_then_pauses(st) -> None:
    st.registry.update_use_case(UC, config={"rollout": {"min_requests": 10, "min_duration_s": 30,
                                                        "inconclusive_timeout_s": 100}})
    call_tool("deploy", {"use_case": UC, "model_id": CAND, "strategy": "canary"}, ctx(st))
    add_rows(st, CAND, "canary", 3)
    assert _advance(st).action == "waiting"
    backdate_step(st, 200)
    res = _advance(st)
    assert res.action == "paused" and res.rollout.state == "paused"
    with pytest.raises(IllegalTransition, match="paused .*--resume"):
        _advance(st)
    res = call_tool("rollout_advance", {"use_case": UC, "resume": True}, ctx(st))
    assert res.action == "resumed" and res.rollout.state == "waiting"
    assert _table(st)[0]["weight"] == 5.0


def test_shadow_rollout_compares_outputs(st) -> None:
    out = call_tool("deploy", {"use_case": UC, "model_id": CAND, "strategy": "shadow"}, ctx(st))
    assert {(r.model_id, r.role) for r in out.routing} == {(STABLE, "primary"), (CAND, "shadow")}
    assert st.registry.get_model(CAND).status == "shadow"
    backdate_step(st, 60)
    ids = add_rows(st, STABLE, "primary", 12, response="the cat sat on the mat")
    add_rows(st, CAND, "shadow", 12, response="a cat sat on a mat", request_ids=ids)
    res = _advance(st)
    assert res.action == "completed" and res.analysis.similarity > 0.5
    assert _table(st) == [{"model_id": STABLE, "weight": 100.0, "role": "primary"}]
    m = st.registry.get_model(CAND)
    assert m.status == "candidate" and m.meta["shadow_passed"]["use_case"] == UC


def test_dissimilar_shadow_fails(st) -> None:
    call_tool("deploy", {"use_case": UC, "model_id": CAND, "strategy": "shadow"}, ctx(st))
    backdate_step(st, 60)
    ids = add_rows(st, STABLE, "primary", 12, response="the cat sat on the mat")
    add_rows(st, CAND, "shadow", 12, response="completely unrelated output here", request_ids=ids)
    res = _advance(st)
    assert res.action == "rolled_back" and "similar" in res.analysis.reasons[0]
    assert _table(st) == [{"model_id": STABLE, "weight": 100.0, "role": "primary"}]


def test_full_strategy_after_approval(st) -> None:
    args = {"use_case": UC, "model_id": CAND, "strategy": "full"}
    from modelsteward.errors import ApprovalRequired

    with pytest.raises(ApprovalRequired) as ei:
        call_tool("deploy", args, ctx(st))
    call_tool("approval_decide", {"approval_id": ei.value.approval_id, "decision": "approve", "carry_out": False}, ctx(st, "cli:bob"))
    out = call_tool("deploy", args, ctx(st, approval_id=ei.value.approval_id))
    assert out.rollout.state == "completed"
    assert _table(st) == [{"model_id": CAND, "weight": 100.0, "role": "primary"}]
    assert st.registry.get_model(STABLE).status == "candidate"


# ---------------------------------------------------------------------- bad input
def test_bad_input_changes_nothing(st) -> None:
    v = st.registry.deployment(UC).version
    with pytest.raises(NotFound, match="Unknown model 'openai:nope'"):
        call_tool("deploy", {"use_case": UC, "model_id": "openai:nope", "strategy": "canary"}, ctx(st))
    with pytest.raises(NotFound, match="Unknown use case"):
        call_tool("deploy", {"use_case": "chta", "model_id": CAND, "strategy": "canary"}, ctx(st))
    with pytest.raises(InvalidInput, match="strategy"):
        call_tool("deploy", {"use_case": UC, "model_id": CAND, "strategy": "yolo"}, ctx(st))
    with pytest.raises(IllegalTransition, match="no active rollout"):
        _advance(st)
    with pytest.raises(IllegalTransition, match="no active rollout"):
        call_tool("rollout_abort", {"use_case": UC}, ctx(st))
    with pytest.raises(Conflict, match="already the live primary"):
        RolloutManager(st).deploy(UC, STABLE, "canary", actor="cli:alice")
    st.registry.set_status(CAND, "retired")
    with pytest.raises(IllegalTransition, match="is retired"):
        call_tool("deploy", {"use_case": UC, "model_id": CAND, "strategy": "canary"}, ctx(st))
    st.registry.set_status(CAND, "candidate")
    st.registry.set_status(CAND, "rejected")
    with pytest.raises(IllegalTransition, match="is rejected"):
        RolloutManager(st).deploy(UC, CAND, "shadow", actor="cli:alice")
    assert st.registry.deployment(UC).version == v
    with session_scope(st.sessions) as s:
        assert s.scalars(select(Rollout)).first() is None


def test_second_rollout_and_advancing_a_finished_one(st) -> None:
    call_tool("deploy", {"use_case": UC, "model_id": CAND, "strategy": "canary"}, ctx(st))
    v = st.registry.deployment(UC).version
    with pytest.raises(PolicyDenied, match="one_active_rollout"):
        call_tool("deploy", {"use_case": UC, "model_id": CAND, "strategy": "shadow"}, ctx(st))
    with pytest.raises(Conflict, match="moved to step"):  # a concurrent step change is detected
        RolloutManager(st).step_to(UC, 1, actor="x", reason="y", expect_index=5)
    assert st.registry.deployment(UC).version == v
    call_tool("rollout_abort", {"use_case": UC}, ctx(st))
    v2 = st.registry.deployment(UC).version
    assert v2 == v + 1
    with pytest.raises(IllegalTransition, match="latest rollout 1 is rolled_back"):
        _advance(st)
    assert st.registry.deployment(UC).version == v2


# ---------------------------------------------------------------------- rollback manager
def test_rollback_restores_table_and_config_exactly_and_is_idempotent(st) -> None:
    cfg_before = st.registry.get_use_case(UC).config
    call_tool("deploy", {"use_case": UC, "model_id": CAND, "strategy": "canary"}, ctx(st))
    ro = RolloutManager(st).active(UC)
    healthy_window(st, 5)
    _advance(st)
    st.registry.update_use_case(UC, config={**cfg_before, "extra": 1}, sticky=True, fallback=[CAND])
    with session_scope(st.sessions) as s:
        snap = s.get(ModelSnapshot, ro.snapshot_id)
        want = (snap.allocations, snap.config)
    rb = RollbackManager(st).rollback(UC, actor="cli:alice", reason="manual")
    assert rb["changed"] and rb["verified"] and rb["snapshot_id"] == ro.snapshot_id
    uc = st.registry.get_use_case(UC)
    assert (_table(st), st.registry.config_of(uc)) == want
    assert uc.config == cfg_before and uc.sticky is False and uc.fallback == []
    v = st.registry.deployment(UC).version
    n = len(_history(st))
    again = call_tool("rollback", {"use_case": UC}, ctx(st))
    assert again.changed is False and st.registry.deployment(UC).version == v and len(_history(st)) == n


def test_rollback_to_a_named_snapshot_and_unknown_one(st) -> None:
    call_tool("deploy", {"use_case": UC, "model_id": CAND, "strategy": "canary"}, ctx(st))
    healthy_window(st, 5)
    _advance(st)  # now 25%
    hist = _history(st)
    step_snap = hist[-1].snapshot_id  # the 5% table
    with pytest.raises(NotFound, match="does not belong"):
        call_tool("rollback", {"use_case": UC, "snapshot_id": 9999}, ctx(st))
    out = call_tool("rollback", {"use_case": UC, "snapshot_id": step_snap}, ctx(st))
    assert {r.model_id: r.weight for r in out.routing} == {CAND: 5.0, STABLE: 95.0}
    assert {r["model_id"]: r["weight"] for r in _table(st)} == {CAND: 5.0, STABLE: 95.0}


def test_rollback_after_completion_restores_previous_model(st) -> None:
    RolloutManager(st).deploy(UC, CAND, "full", actor="cli:alice")  # domain call: no policy here
    assert st.registry.get_model(CAND).status == "current"
    out = call_tool("rollback", {"use_case": UC}, ctx(st))
    assert out.changed and _table(st) == [{"model_id": STABLE, "weight": 100.0, "role": "primary"}]
    assert st.registry.get_model(STABLE).status == "current" and st.registry.get_model(CAND).status == "candidate"
    assert out.rollout.state == "rolled_back"


# ---------------------------------------------------------------------- pure pieces
def test_feedback_drop_fails_only_when_significant() -> None:
    from modelsteward.rollout.metrics import feedback_drop_p_value

    cfg = section_of({}, "rollout")
    base = dict(requests=60, errors=0, p95_ms=100, cost_per_request=0.001)
    stable = WindowMetrics(**base, mean_feedback=0.7, feedback_count=40, feedback_var=0.35)
    # six noisy votes averaging 0.33: over the 0.2 threshold, but not distinguishable from noise
    few = WindowMetrics(**base, mean_feedback=0.33, feedback_count=6, feedback_var=0.67)
    p = feedback_drop_p_value(few, stable)
    assert 0.05 < p < 0.5
    outcome, reasons = judge(few, stable, cfg, 400)
    assert outcome == "inconclusive" and "feedback drop 0.37 not significant yet" in reasons[0]
    # the same drop on sixty votes is a failure
    many = WindowMetrics(**base, mean_feedback=0.33, feedback_count=60, feedback_var=0.67)
    outcome, reasons = judge(many, stable, cfg, 400)
    assert outcome == "failed" and "mean feedback 0.33 < stable 0.70" in reasons[0] and "p=0.00" in reasons[0]
    # a policy may fail on less evidence (alpha 1: any drop over the threshold fails), never demand more than 0.01
    assert judge(few, stable, {**cfg, "feedback_alpha": 1.0}, 400)[0] == "failed"
    assert section_of({"rollout": {"feedback_alpha": 0.001}}, "rollout")["feedback_alpha"] == 0.01
    const = WindowMetrics(**base, mean_feedback=-0.5, feedback_count=12, feedback_var=0.0)
    assert feedback_drop_p_value(const, WindowMetrics(**base, mean_feedback=0.5, feedback_count=50, feedback_var=0.0)) == 0.0
    assert feedback_drop_p_value(stable, stable) == 0.5


def test_judge_pure() -> None:
    cfg = section_of({}, "rollout")
    good = WindowMetrics(requests=60, errors=1, p95_ms=100, cost_per_request=0.001)
    assert judge(good, good, cfg, 400)[0] == "successful"
    assert judge(good, good, cfg, 10)[0] == "inconclusive"
    assert judge(WindowMetrics(requests=5), good, cfg, 400)[0] == "inconclusive"
    bad = WindowMetrics(requests=60, errors=10, p95_ms=100, cost_per_request=0.001)
    assert judge(bad, good, cfg, 1)[0] == "failed"
    assert judge(good, good, cfg, 400, similarity=0.05, similarity_pairs=60)[0] == "failed"


def test_lexical_similarity() -> None:
    assert lexical_similarity("a b c", "c b a") == 1.0
    assert lexical_similarity("", "") == 1.0
    assert lexical_similarity("x y", "z w") == 0.0
