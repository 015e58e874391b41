"""Two ``steward serve`` replicas on one registry (SQLite file; PostgreSQL when configured), a
webhook receiver behind ``STEWARD_NOTIFY=json://...`` that fails its first two posts, and no
command after the start: the leader alone records the violation and rolls the failing canary
back, runs one scheduled agent cycle per period, and every event reaches the webhook once, naming
the use case; ``kill -9`` of the leader hands the loop to the other replica within the lease."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from ops_helpers import Replica, Webhook, wait_for
from rollout_helpers import CAND, STABLE, UC, add_rows, ctx, pass_eval, setup_use_case
from sqlalchemy import select

from modelsteward.storage import lease
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import AgentRun, DeploymentHistory, GuardrailViolation, Notification
from modelsteward.tools.base import call_tool

GUARD_S, LEASE_S, AGENT_S = 5.0, 3.0, 15.0


def _prepare(st: Any) -> None:
    # the candidate fails 25 of its 30 canary calls; the rollout's own analysis needs far more
    # requests than that, so it is the guard check that must catch it
    # (no candidate evaluations in the scheduled cycles: this test is about when runs happen, and an
    # evaluation against the test's unreachable model endpoints would outlast the agent period)
    setup_use_case(st, config={"rollout": {"min_requests": 1000}, "evaluation": {"max_candidates_per_cycle": 0}})
    pass_eval(st)
    # no_check: CAND's endpoint is unreachable on purpose (its canary calls are logged rows, not calls);
    # this test is about the control loop, tests/test_check_before_traffic.py about the check
    call_tool("deploy", {"use_case": UC, "model_id": CAND, "strategy": "canary", "no_check": True}, ctx(st))
    add_rows(st, STABLE, "primary", 60)
    add_rows(st, CAND, "canary", 30, errors=25)
    st.logs.flush()


def _rows(st: Any, model: Any, *where: Any) -> list[Any]:
    with session_scope(st.sessions) as s:
        return list(s.scalars(select(model).where(*where)))


def _pid(holder: str | None) -> int:
    return int((holder or "::").split(":")[1] or 0)


@pytest.mark.slow
def test_two_replicas_one_loop_notifications_and_failover(any_steward: Any, tmp_path: Path) -> None:
    from gateway_helpers import free_port

    st = any_steward
    _prepare(st)
    hook = Webhook(fail_first=2)
    env = {**os.environ, "STEWARD_GUARD_EVERY": f"{GUARD_S:g}s", "STEWARD_ROLLOUT_EVERY": "2s",
           "STEWARD_AGENT_EVERY": f"{AGENT_S:g}s", "STEWARD_LEADER_LEASE": f"{LEASE_S:g}s",
           "STEWARD_NOTIFY": hook.url, "STEWARD_PUBLIC_URL": "http://steward.example"}
    reps = [Replica(env, free_port(), tmp_path, name) for name in ("a", "b")]
    t_start = time.monotonic()
    try:
        for r in reps:
            r.wait_up()
        # without any command: a violation is recorded and the canary rolled back
        viol = wait_for(lambda: _rows(st, GuardrailViolation, GuardrailViolation.severity.in_(("rollback", "disable"))),
                        60, "a guardrail violation")
        assert viol[0].model_id == CAND
        wait_for(lambda: _rows(st, DeploymentHistory, DeploymentHistory.action.in_(("rollback", "rollout_abort"))),
                 30, "the rollback")
        # two scheduled agent periods pass
        wait_for(lambda: len(_rows(st, AgentRun, AgentRun.trigger == "schedule", AgentRun.finished_at.is_not(None))) >= 2,
                 3 * AGENT_S + 60, "two scheduled agent runs")
        # every event reached the webhook once, despite its first two answers being 500
        notable = _rows(st, GuardrailViolation, GuardrailViolation.severity.in_(("pause", "rollback", "disable")))
        expected = {" violated (": len({(v.policy, v.model_id, v.severity) for v in notable}),
                    "rolled back": len(_rows(st, DeploymentHistory,
                                             DeploymentHistory.action.in_(("rollback", "rollout_abort")))),
                    "leader is now": 1}

        def all_delivered() -> bool:
            titles = hook.titles()
            return all(sum(k in t for t in titles) == n for k, n in expected.items())

        wait_for(all_delivered, 40, f"one message per event {expected}; got {hook.titles()}")
        assert sum(p["failed"] for p in hook.posts) == 2
        for title in hook.titles():
            assert "leader is now" in title or f"[{UC}]" in title, title
        retried = _rows(st, Notification, Notification.attempts > 1)
        assert retried and all(n.status == "sent" for n in retried)

        # only the leader acted: one holder, and the other replica serves API and gateway all along
        holder = lease.current(st.sessions, "control_loop").holder
        leader = next(r for r in reps if r.proc.pid == _pid(holder))
        follower = next(r for r in reps if r is not leader)
        for r in reps:
            assert httpx.get(r.base + "/readyz", timeout=10).status_code == 200
            assert httpx.get(r.base + "/v1/models", timeout=10).status_code == 200
        assert "no longer leads" not in leader.output()

        # kill -9 the leader: the other takes the lease within one lease period (+ one try)
        leader.kill9()
        t_kill = time.monotonic()
        wait_for(lambda: _pid(lease.current(st.sessions, "control_loop").holder) == follower.proc.pid,
                 LEASE_S * 4, "the hand-over", every=0.05)
        handover = time.monotonic() - t_kill
        print(f"hand-over after kill -9: {handover:.2f} s (lease {LEASE_S:g} s)")
        assert handover <= LEASE_S + LEASE_S / 5 + 1.0
        wait_for(lambda: sum("leader is now" in t and "term 2" in t for t in hook.titles()) == 1, 20,
                 "the leader change message")
        # the new leader keeps the schedule: one scheduled run per period, never two at once
        n_before = len(_rows(st, AgentRun, AgentRun.trigger == "schedule"))
        wait_for(lambda: len(_rows(st, AgentRun, AgentRun.trigger == "schedule", AgentRun.finished_at.is_not(None)))
                 > n_before, 2 * AGENT_S + 60, "a scheduled run by the new leader")
        runs = sorted(_rows(st, AgentRun, AgentRun.trigger == "schedule"), key=lambda r: r.started_at)
        elapsed = time.monotonic() - t_start
        assert len(runs) <= elapsed / AGENT_S + 1
        for prev, nxt in zip(runs, runs[1:]):
            assert nxt.started_at - prev.started_at >= dt.timedelta(seconds=AGENT_S * 0.8), (prev.id, nxt.id)
            assert prev.finished_at is not None and nxt.started_at >= prev.finished_at
        assert sum("leader is now" in t and "term 2" in t for t in hook.titles()) == 1
        assert httpx.get(follower.base + "/healthz", timeout=10).status_code == 200
    finally:
        for r in reps:
            r.stop()
        hook.close()
