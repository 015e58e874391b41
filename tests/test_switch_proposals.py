"""Scenario: a live model that fails in bursts, scheduled agent cycles over simulated hours.

One open proposal per switch (issue 26 item 2) and one open violation per (rule, use case, model)
(issue 29 item 5), judged from the registry: approvals, violations, notifications, decisions.
Time is simulated with ``time-machine`` (every clock in the process moves); the log rows are
written at the simulated times.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from rollout_helpers import CAND, STABLE, UC, add_rows, pass_eval, setup_use_case
from sqlalchemy import select

from modelsteward.agent import run_agent
from modelsteward.storage import outbox
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import AgentDecision, Approval, CatalogScan, GuardrailViolation, Notification, utcnow
from modelsteward.tools import call_tool
from modelsteward.tools.base import ToolContext

T0 = dt.datetime(2031, 3, 3, 9, 0, 0)


def _world(steward: Any, cooldown: float | None = None) -> None:
    """``chat`` live on the stable model, the candidate its fallback, passing (no benefit: no rollout of its own)."""
    agent: dict[str, Any] = {"evaluate": {"samples": 0}}
    if cooldown is not None:
        agent["switch_cooldown_minutes"] = cooldown
    setup_use_case(steward, config={"agent": agent})
    steward.registry.update_use_case(UC, fallback=[CAND])
    with time_machine.travel(T0 - dt.timedelta(hours=1), tick=False):
        pass_eval(steward, CAND, benefit=None)
        with session_scope(steward.sessions) as s:
            s.add(CatalogScan(provider="all", status="ok", created_at=utcnow()))


def _traffic(steward: Any, minute: float, *, bad: bool) -> None:
    """20 requests of the live model just before ``minute``; half of them fail in a burst."""
    add_rows(steward, STABLE, "primary", 20, errors=10 if bad else 0, ts=T0 + dt.timedelta(minutes=minute))


def _cycle(steward: Any, minute: float) -> None:
    """One scheduled agent cycle at ``minute`` (guard check first, then the playbook)."""
    with time_machine.travel(T0 + dt.timedelta(minutes=minute, seconds=1), tick=True):
        res = run_agent(steward, trigger="schedule", started_by="schedule")
        assert res.status in ("completed", "waiting_approval"), (minute, res.error, res.report)


def _run(steward: Any, minutes: range | list[int], burst: Any) -> None:
    for m in minutes:
        _traffic(steward, m, bad=burst(m))
        _cycle(steward, m)


def _approvals(steward: Any) -> list[Approval]:
    with session_scope(steward.sessions) as s:
        return list(s.scalars(select(Approval).where(Approval.action == "deploy").order_by(Approval.id)))


def _violations(steward: Any, policy: str) -> list[GuardrailViolation]:
    with session_scope(steward.sessions) as s:
        return list(s.scalars(select(GuardrailViolation).where(GuardrailViolation.policy == policy)
                              .order_by(GuardrailViolation.id)))


def _bursts(m: int) -> bool:
    return m % 30 < 10  # 50 % errors for ten minutes, healthy for twenty


@pytest.mark.slow
def test_bursts_keep_one_proposal_whose_evidence_grows_and_one_violation_per_burst(steward) -> None:  # type: ignore[no-untyped-def]
    _world(steward)
    with time_machine.travel(T0 - dt.timedelta(minutes=1), tick=False):
        outbox.init_cursors(steward.sessions)
    _run(steward, range(0, 90, 5), _bursts)  # three bursts, a cycle every five minutes
    (a,) = _approvals(steward)
    assert a.status == "pending" and a.arguments["model_id"] == CAND and a.arguments["strategy"] == "full"
    slo = _violations(steward, "slo_error_rate")
    assert len(slo) == 3, [(v.id, v.created_at, v.cleared_at) for v in slo]  # one per burst, not one per check
    assert all(v.details["checks"] >= 2 for v in slo)  # each one updated while its burst lasted
    assert sorted(a.evidence["violations"]) == [v.id for v in slo]  # every burst joined the one proposal
    assert a.evidence["update_count"] >= 2
    spikes = _violations(steward, "error_rate_spike")
    assert len(spikes) <= 3
    # the outbox announces one approval request, not one per burst
    with time_machine.travel(T0 + dt.timedelta(minutes=95), tick=False):
        outbox.collect(steward.sessions)
    with session_scope(steward.sessions) as s:
        asked = [n for n in s.scalars(select(Notification)) if n.event == "approval_requested"]
    assert len(asked) == 1


@pytest.mark.slow
def test_a_cleared_cause_withdraws_the_proposal_and_the_cooldown_stops_flapping(steward) -> None:  # type: ignore[no-untyped-def]
    _world(steward, cooldown=60)
    _run(steward, [0, 5, 10, 15, 20, 25, 30], lambda m: m < 10)  # one burst; cleared at minute 20
    (a,) = _approvals(steward)
    assert a.status == "pending"  # cleared, but not yet for a whole 15-minute window
    _run(steward, [35, 40], lambda m: False)
    (a,) = _approvals(steward)
    assert a.status == "withdrawn" and "cause cleared" in (a.decision_reason or "")
    with session_scope(steward.sessions) as s:
        assert s.scalar(select(GuardrailViolation.id).where(GuardrailViolation.cleared_at.is_(None),
                                                            GuardrailViolation.policy == "slo_error_rate")) is None
    # a new burst within the cool-down: no new proposal, a declined switch on record
    _run(steward, [60, 65, 70], lambda m: m < 70)
    assert [x.status for x in _approvals(steward)] == ["withdrawn"]
    with session_scope(steward.sessions) as s:
        rules = [d.rule for d in s.scalars(select(AgentDecision).where(AgentDecision.kind == "switch"))]
    assert "slo.switch_cooldown" in rules
    # after the cool-down the switch may be proposed again
    _run(steward, [110, 115], lambda m: True)
    assert [x.status for x in _approvals(steward)] == ["withdrawn", "pending"]


def test_startup_errors_raise_one_violation_that_is_updated_while_it_lasts(steward) -> None:  # type: ignore[no-untyped-def]
    """Three 401s at start-up, four guard checks in 90 s: one error_rate_spike, updated, then closed."""
    setup_use_case(steward)
    ctx = ToolContext(steward=steward, actor="scheduler:guard")
    add_rows(steward, STABLE, "primary", 10, errors=3, ts=T0)
    for sec in (5, 35, 65, 95):
        with time_machine.travel(T0 + dt.timedelta(seconds=sec), tick=False):
            out = call_tool("guard_check", {"use_case": UC}, ctx)
            assert any(v["policy"] == "error_rate_spike" for v in out.violations)
    (v,) = _violations(steward, "error_rate_spike")
    assert v.details["checks"] == 4 and v.cleared_at is None and v.measured == pytest.approx(0.3)
    assert v.last_seen_at == T0 + dt.timedelta(seconds=95)
    add_rows(steward, STABLE, "primary", 40, ts=T0 + dt.timedelta(minutes=20))  # healthy: the window moved on
    with time_machine.travel(T0 + dt.timedelta(minutes=20), tick=False):
        call_tool("guard_check", {"use_case": UC}, ctx)
    (v,) = _violations(steward, "error_rate_spike")
    assert v.cleared_at == T0 + dt.timedelta(minutes=20)
