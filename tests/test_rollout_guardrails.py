"""The guardrails monitor: violations with measured value and threshold, acting by severity."""

from __future__ import annotations

import datetime as dt

import pytest
from rollout_helpers import CAND, STABLE, UC, add_rows, ctx, pass_eval, setup_use_case
from sqlalchemy import select

from modelsteward.errors import NotFound
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import GuardrailViolation, Rollout, utcnow
from modelsteward.tools import call_tool

# their models (openai:, openrouter:) answer the check a model passes before it takes traffic (tools/checks.py)
pytestmark = pytest.mark.usefixtures("hosted_upstream")


def _violations(steward) -> list[GuardrailViolation]:
    with session_scope(steward.sessions) as s:
        return list(s.scalars(select(GuardrailViolation).order_by(GuardrailViolation.id)))


def _rollout_state(steward) -> str:
    with session_scope(steward.sessions) as s:
        return s.scalars(select(Rollout).order_by(Rollout.id.desc())).first().state


def _canary(steward) -> None:
    pass_eval(steward)
    call_tool("deploy", {"use_case": UC, "model_id": CAND, "strategy": "canary"}, ctx(steward))


def _check(steward, use_case=UC):
    return call_tool("guard_check", {"use_case": use_case}, ctx(steward, "scheduler:guard"))


def test_quiet_traffic_has_no_violations(steward) -> None:
    setup_use_case(steward, slo=1000)
    add_rows(steward, STABLE, "primary", 50, errors=1)
    out = _check(steward)
    assert out.checked == [UC] and out.violations == [] and _violations(steward) == []


def test_candidate_error_spike_rolls_back(steward) -> None:
    setup_use_case(steward)
    _canary(steward)
    add_rows(steward, STABLE, "primary", 40, ts=utcnow() - dt.timedelta(hours=2))  # clean baseline
    add_rows(steward, CAND, "canary", 20, errors=6)  # 30% errors now
    add_rows(steward, STABLE, "primary", 40)
    out = _check(steward)
    v = next(v for v in out.violations if v["policy"] == "error_rate_spike")
    assert v["model_id"] == CAND and v["severity"] == "rollback" and v["action"] == "rollback"
    assert v["measured"] == pytest.approx(0.3) and v["threshold"] == pytest.approx(0.05)
    assert _rollout_state(steward) == "rolled_back"
    assert steward.registry.routing_table(steward.registry.deployment(UC)) == [
        {"model_id": STABLE, "weight": 100.0, "role": "primary"}]
    row = _violations(steward)[0]
    assert (row.policy, row.measured, row.threshold, row.action) == ("error_rate_spike", pytest.approx(0.3),
                                                                      pytest.approx(0.05), "rollback")
    # a second check finds nothing live to act on any more and changes nothing
    v_before = steward.registry.deployment(UC).version
    _check(steward)
    assert steward.registry.deployment(UC).version == v_before


def test_safety_flags_disable_the_candidate(steward) -> None:
    setup_use_case(steward)
    _canary(steward)
    add_rows(steward, CAND, "canary", 20, flagged=2)
    add_rows(steward, STABLE, "primary", 40)
    out = _check(steward)
    assert out.actions[0]["action"] == "disable"
    m = steward.registry.get_model(CAND)
    assert m.status == "rejected" and "safety_flags" in m.meta["disabled"]["reason"]
    assert _rollout_state(steward) == "rolled_back"


def test_candidate_latency_over_slo_pauses(steward) -> None:
    setup_use_case(steward, slo=500)
    _canary(steward)
    add_rows(steward, CAND, "canary", 20, latency=700)
    add_rows(steward, STABLE, "primary", 40, latency=100)
    out = _check(steward)
    v = out.violations[0]
    assert (v["policy"], v["severity"], v["measured"], v["threshold"]) == ("latency_slo", "pause", 700, 500)
    assert _rollout_state(steward) == "paused"
    assert steward.registry.routing_table(steward.registry.deployment(UC))[0]["weight"] == 5.0


def test_stable_model_violations_only_warn(steward) -> None:
    setup_use_case(steward, slo=50)
    add_rows(steward, STABLE, "primary", 30, latency=400, errors=10)
    out = _check(steward)
    assert {v["policy"] for v in out.violations} == {"slo_p95_latency", "error_rate_spike", "slo_error_rate"}
    assert all(v["severity"] == "warn" and v["action"] == "warn" for v in out.violations)
    assert steward.registry.get_model(STABLE).status == "current"  # never removes the only live model


def test_feedback_drop_of_candidate_rolls_back(steward) -> None:
    setup_use_case(steward)
    _canary(steward)
    add_rows(steward, CAND, "canary", 20, feedback=0.8, ts=utcnow() - dt.timedelta(hours=1))
    add_rows(steward, CAND, "canary", 20, feedback=-0.2)
    out = _check(steward)
    v = next(v for v in out.violations if v["policy"] == "feedback_drop")
    assert v["severity"] == "rollback" and v["measured"] == pytest.approx(-0.2)


def test_budget_burn_warns_and_pauses(steward) -> None:
    setup_use_case(steward, budget="10")
    add_rows(steward, STABLE, "primary", 20, cost=0.05, ts=utcnow() - dt.timedelta(hours=2))  # $1 in 2h ~ $360/month
    out = _check(steward)
    v = out.violations[0]
    assert v["policy"] == "budget_burn" and v["severity"] == "warn" and v["measured"] > 30
    _canary(steward)
    out = _check(steward)
    assert out.actions[0]["action"] == "pause" and _rollout_state(steward) == "paused"


def test_all_use_cases_and_unknown_one(steward) -> None:
    setup_use_case(steward)
    assert _check(steward, None).checked == [UC]
    with pytest.raises(NotFound, match="Unknown use case"):
        _check(steward, "nope")
