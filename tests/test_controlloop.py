"""The control loop's parts on each registry backend: settings (bad input), the leader lease, the
notification outbox (each event once) and delivery through Apprise to a local webhook (retried
with back-off when it answers 500)."""

from __future__ import annotations

import datetime as dt
import subprocess
import threading
from typing import Any

import pytest
from sqlalchemy import select, update

from modelsteward.errors import ConfigError
from modelsteward.policies import approvals
from modelsteward.server.loopconfig import LoopConfig
from modelsteward.server.notify import Notifier, backoff_s
from modelsteward.storage import lease, outbox
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import (
    AgentRun,
    DeploymentHistory,
    GuardrailViolation,
    Notification,
    UseCase,
    utcnow,
)
from ops_helpers import STEWARD, Webhook

# ---------------------------------------------------------------- settings


def test_defaults_and_durations() -> None:
    cfg = LoopConfig.from_env({})
    assert (cfg.guard_every_s, cfg.agent_every_s, cfg.agent_cron, cfg.lease_s) == (60.0, 3600.0, None, 15.0)
    cfg = LoopConfig.from_env({"STEWARD_GUARD_EVERY": "30s", "STEWARD_AGENT_EVERY": "5m", "STEWARD_LEADER_LEASE": "1m"})
    assert (cfg.guard_every_s, cfg.agent_every_s, cfg.lease_s) == (30.0, 300.0, 60.0)
    assert LoopConfig.from_env({"STEWARD_AGENT_EVERY": "off"}).agent_enabled is False
    cron = LoopConfig.from_env({"STEWARD_AGENT_CRON": "0 * * * *"})
    assert cron.agent_cron == "0 * * * *" and cron.agent_every_s is None and cron.agent_enabled


@pytest.mark.parametrize(("env", "var"), [
    ({"STEWARD_GUARD_EVERY": "2s"}, "STEWARD_GUARD_EVERY"),
    ({"STEWARD_GUARD_EVERY": "often"}, "STEWARD_GUARD_EVERY"),
    ({"STEWARD_AGENT_EVERY": "1 hour"}, "STEWARD_AGENT_EVERY"),
    ({"STEWARD_AGENT_CRON": "0 25 * * *"}, "STEWARD_AGENT_CRON"),
    ({"STEWARD_AGENT_CRON": "every hour"}, "STEWARD_AGENT_CRON"),
    ({"STEWARD_NOTIFY": "json://127.0.0.1:9/x,nosuchservice://token@host"}, "STEWARD_NOTIFY"),
    ({"STEWARD_LEADER_LEASE": "1s"}, "STEWARD_LEADER_LEASE"),
])
def test_bad_settings_name_the_variable(env: dict[str, str], var: str) -> None:
    with pytest.raises(ConfigError) as err:
        LoopConfig.from_env(env)
    assert err.value.message.startswith(var) and err.value.details["variable"] == var
    assert "token@host" not in err.value.message  # a notification URL's secret is never echoed


def test_serve_refuses_bad_settings_with_one_line(settings: Any) -> None:
    import os

    env = {**os.environ, "STEWARD_HOME": str(settings.home), "STEWARD_GUARD_EVERY": "1s"}
    r = subprocess.run([*STEWARD, "serve", "--port", "1"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "STEWARD_GUARD_EVERY" in lines[0] and "5 s" in lines[0], r.stderr
    # --no-control-loop does not read the loop's settings at all
    env["STEWARD_NOTIFY"] = "nosuchservice://x"
    r = subprocess.run([*STEWARD, "serve", "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert "--no-control-loop" in r.stdout


# ---------------------------------------------------------------- lease


def test_lease_one_holder_renewal_and_takeover(any_steward: Any) -> None:
    sessions = any_steward.sessions
    t0 = utcnow()
    a = lease.acquire(sessions, "loop", "a", 10, now=t0)
    assert a.leader and a.gained and a.term == 1
    b = lease.acquire(sessions, "loop", "b", 10, now=t0 + dt.timedelta(seconds=5))
    assert not b.leader and b.holder == "a"
    a2 = lease.acquire(sessions, "loop", "a", 10, now=t0 + dt.timedelta(seconds=8))  # renewal: same term
    assert a2.leader and not a2.gained and a2.term == 1
    # a stops renewing: b takes over once the lease ran out, not before
    assert not lease.acquire(sessions, "loop", "b", 10, now=t0 + dt.timedelta(seconds=17)).leader
    b2 = lease.acquire(sessions, "loop", "b", 10, now=t0 + dt.timedelta(seconds=19))
    assert b2.leader and b2.gained and b2.term == 2 and b2.previous == "a"
    assert not lease.acquire(sessions, "loop", "a", 10, now=t0 + dt.timedelta(seconds=20)).leader
    # a graceful stop hands over at once
    assert lease.release(sessions, "loop", "b")
    assert lease.acquire(sessions, "loop", "a", 10).term == 3


def test_lease_race_has_one_winner(any_steward: Any) -> None:
    sessions = any_steward.sessions
    lease.acquire(sessions, "loop", "old", 1, now=utcnow() - dt.timedelta(seconds=30))  # an expired holder
    results: list[lease.LeaseResult] = []
    barrier = threading.Barrier(6)

    def race(name: str) -> None:
        barrier.wait()
        results.append(lease.acquire(sessions, "loop", name, 30))

    threads = [threading.Thread(target=race, args=(f"r{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if r.leader]
    assert len(winners) == 1 and winners[0].term == 2
    assert lease.current(sessions, "loop").holder == winners[0].holder


# ---------------------------------------------------------------- outbox


def _uc(steward: Any) -> int:
    steward.registry.register_model("openai", "m", price_in_per_m="1", price_out_per_m="1")
    steward.registry.add_use_case("chat", description="t", model="openai:m")
    with session_scope(steward.sessions) as s:
        return int(s.scalar(select(UseCase.id).where(UseCase.name == "chat")))


def test_outbox_writes_each_event_once(any_steward: Any) -> None:
    st = any_steward
    uc_id = _uc(st)
    old = approvals.create(st.sessions, action="deploy", arguments={"use_case": "chat"}, reason="before",
                           requester="cli:bob", use_case_id=uc_id)
    outbox.init_cursors(st.sessions)  # history from before the loop first ran is not announced
    a = approvals.create(st.sessions, action="rollout_advance", arguments={"use_case": "chat"},
                         reason="promotion to 100% needs a human approval", requester="system:control-loop",
                         use_case_id=uc_id)
    with session_scope(st.sessions) as s:
        s.add(GuardrailViolation(policy="error_rate_spike", severity="rollback", use_case_id=uc_id, model_id="openai:m",
                                 measured=0.6, threshold=0.05, action="rollback"))
        s.add(GuardrailViolation(policy="error_rate_spike", severity="rollback", use_case_id=uc_id, model_id="openai:m",
                                 measured=0.7, threshold=0.05, action="rollback"))  # the same one again: once
        s.add(GuardrailViolation(policy="latency_slo", severity="warn", use_case_id=uc_id, model_id="openai:m",
                                 measured=900, threshold=800, action="warn"))
        s.add(DeploymentHistory(use_case_id=uc_id, action="rollout_abort", actor="guardrails", reason="spike"))
        s.add(DeploymentHistory(use_case_id=uc_id, action="rollout_step", actor="x", reason="step"))
        s.add(DeploymentHistory(use_case_id=uc_id, action="promote", actor="x", reason="done"))
        s.add(AgentRun(trigger="schedule", goal="", use_case="chat", status="failed", thread_id="t1",
                       error="boom", finished_at=utcnow()))
    approvals.approve(st.sessions, a.id, decider="cli:alice", reason="fine")
    assert outbox.collect(st.sessions) == 6
    assert outbox.collect(st.sessions) == 0  # a second pass (another leader) writes nothing again
    rows = outbox.list_notifications(st.sessions)
    events = sorted(r["event"] for r in rows)
    assert events == sorted(["approval_requested", "approval_decided", "guardrail_violation", "rollback",
                             "promotion", "agent_run_failed"])
    assert all(r["use_case"] == "chat" for r in rows)
    assert not any(r["payload"].get("approval_id") == old.id for r in rows)
    # events written after a pass are picked up by the next one
    approvals.reject(st.sessions, old.id, decider="cli:alice", reason="no")
    assert outbox.collect(st.sessions) == 1


def _approval_row(st: Any) -> None:
    uc_id = _uc(st)
    outbox.init_cursors(st.sessions)
    approvals.create(st.sessions, action="rollout_advance", arguments={"use_case": "chat"},
                     reason="[promotion_to_100] needs a human", requester="system:control-loop", use_case_id=uc_id)
    outbox.collect(st.sessions)


def _make_due(st: Any) -> None:
    with session_scope(st.sessions) as s:
        s.execute(update(Notification).values(next_attempt_at=utcnow() - dt.timedelta(seconds=1)))


def test_delivery_retries_a_failing_webhook_with_backoff(steward: Any) -> None:
    hook = Webhook(fail_first=2)
    try:
        _approval_row(steward)
        n = Notifier([hook.url], "http://console.example:8080")
        assert n.deliver_due(steward.sessions) == {"sent": 0, "retrying": 1, "failed": 0}
        assert n.deliver_due(steward.sessions) == {"sent": 0, "retrying": 0, "failed": 0}  # backing off
        with session_scope(steward.sessions) as s:
            row = s.scalars(select(Notification)).one()
            wait = (row.next_attempt_at - utcnow()).total_seconds()
            assert row.attempts == 1 and 1.0 < wait <= backoff_s(1) and "json://" in (row.last_error or "")
        _make_due(steward)
        assert n.deliver_due(steward.sessions)["retrying"] == 1
        _make_due(steward)
        assert n.deliver_due(steward.sessions)["sent"] == 1
        assert len(hook.posts) == 3 and len(hook.delivered()) == 1
        body = hook.delivered()[0]
        assert "[chat]" in body["title"] and "approval" in body["title"]
        assert "promotion_to_100" in body["message"] and "http://console.example:8080/approvals" in body["message"]
        with session_scope(steward.sessions) as s:
            row = s.scalars(select(Notification)).one()
            assert (row.status, row.attempts) == ("sent", 3)
    finally:
        hook.close()


def test_delivery_reaches_each_target_once(steward: Any) -> None:
    good, bad = Webhook(), Webhook(fail_first=1)
    try:
        _approval_row(steward)
        n = Notifier([good.url, bad.url], "http://c")
        n.deliver_due(steward.sessions)
        _make_due(steward)
        n.deliver_due(steward.sessions)
        # the retry went only to the target that failed
        assert len(good.posts) == 1 and len(bad.posts) == 2 and len(bad.delivered()) == 1
    finally:
        good.close()
        bad.close()


# ---------------------------------------------------------------- the loop's jobs, in process


def test_loop_steps_a_rollout_asks_once_and_carries_out_the_approval(any_steward: Any, hosted_upstream: Any) -> None:
    from rollout_helpers import CAND, UC, ctx, healthy_window, pass_eval, setup_use_case

    from modelsteward.server.controlloop import ACTOR, ControlLoop
    from modelsteward.storage.models import PolicyDecision

    st = any_steward
    setup_use_case(st)
    pass_eval(st)
    from modelsteward.tools.base import call_tool

    call_tool("deploy", {"use_case": UC, "model_id": CAND, "strategy": "canary", "steps": [25, 100]}, ctx(st))
    hook = Webhook()
    loop = ControlLoop(st, LoopConfig(notify_urls=(hook.url,), public_url="http://console.test"), holder="test-a")
    try:
        loop._lease_tick()
        assert loop.leading() and loop.term == 1
        other = ControlLoop(st, LoopConfig(), holder="test-b")
        other._lease_tick()
        assert not other.leading()
        other._rollout_tick()  # a follower does nothing
        assert not _rows_of(st, PolicyDecision)
        loop._rollout_tick()  # no requests in the window yet: not judged, nothing recorded
        events = call_tool("rollout_status", {"use_case": UC}, ctx(st)).model_dump()["rollout"]["events"]
        assert not [e for e in events if e.get("event") == "analysis"]
        healthy_window(st, 25)
        loop._rollout_tick()  # step 0 passes; raising to 100% needs a person
        pending = approvals.list_approvals(st.sessions, "pending", 10)
        assert [(a.action, a.requester) for a in pending] == [("rollout_advance", ACTOR)]
        n_decisions = len(_rows_of(st, PolicyDecision))
        loop._rollout_tick()
        loop._rollout_tick()  # waiting for the person: not asked again
        assert len(_rows_of(st, PolicyDecision)) == n_decisions
        assert len(approvals.list_approvals(st.sessions, None, 10)) == 1
        approvals.approve(st.sessions, pending[0].id, decider="cli:alice", reason="looks good")
        loop._rollout_tick()  # the approved promotion is carried out with the approval's id
        ro = call_tool("rollout_status", {"use_case": UC}, ctx(st)).model_dump()["rollout"]
        assert ro["state"] == "completed"
        assert approvals.get(st.sessions, pending[0].id).status == "executed"
        loop._notify_tick()
        titles = hook.titles()
        assert sum("leader is now test-a" in t for t in titles) == 1
        assert sum(f"[{UC}] approval {pending[0].id} requested" in t for t in titles) == 1
        assert sum(f"[{UC}] approval {pending[0].id} approved by cli:alice" in t for t in titles) == 1
        assert sum(f"[{UC}] candidate promoted" in t for t in titles) == 1
        asked = next(b for b in hook.delivered() if "requested" in b["title"])
        assert "http://console.test/approvals" in asked["message"] and "Evidence: last analysis successful" in asked["message"]
        loop._notify_tick()
        assert len(hook.delivered()) == len(titles)  # nothing twice
    finally:
        hook.close()


def _rows_of(st: Any, model: Any) -> list[Any]:
    with session_scope(st.sessions) as s:
        return list(s.scalars(select(model)))


def test_agent_schedule_runs_a_missed_tick_once(steward: Any) -> None:
    from modelsteward.server.controlloop import ControlLoop

    now = dt.datetime.now(dt.timezone.utc)
    loop = ControlLoop(steward, LoopConfig(agent_every_s=600.0))
    _, first = loop._agent_trigger(now)
    assert first == now + dt.timedelta(seconds=600)  # a fresh workspace: one period after the loop first ran
    with session_scope(steward.sessions) as s:
        s.add(AgentRun(trigger="schedule", goal="", status="completed", thread_id="t",
                       started_at=now.replace(tzinfo=None) - dt.timedelta(seconds=3 * 600 + 30)))
    trigger, first = loop._agent_trigger(now)
    assert first == now  # three periods missed while no leader ran: one run, now
    assert trigger.get_next_fire_time(None, now) is not None
    with session_scope(steward.sessions) as s:
        s.add(AgentRun(trigger="schedule", goal="", status="completed", thread_id="t2",
                       started_at=now.replace(tzinfo=None) - dt.timedelta(seconds=100)))
        s.add(AgentRun(trigger="api", goal="", status="completed", thread_id="t3", started_at=now.replace(tzinfo=None)))
    _, first = loop._agent_trigger(now)
    assert abs((first - now).total_seconds() - 500) < 1  # one period after the last scheduled run
    cron = ControlLoop(steward, LoopConfig(agent_every_s=None, agent_cron="0 * * * *"))
    _, first = cron._agent_trigger(now)
    expected = (now - dt.timedelta(seconds=100)).replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    assert first == max(expected, now)  # the first top of the hour after the last scheduled run


def test_a_leader_paused_past_its_lease_writes_nothing_when_it_resumes(any_steward: Any, hosted_upstream: Any) -> None:
    """Issue 25: the lease had no fencing.  Leader A is paused (its lease runs out), B takes over;
    when A resumes and steps the rollout it still believes it leads, the write must fail and
    leave the rollout as it was."""
    from rollout_helpers import CAND, UC, ctx, healthy_window, pass_eval, setup_use_case

    from modelsteward.server.controlloop import LEASE_NAME, ControlLoop
    from modelsteward.storage.models import ControlLease, Rollout
    from modelsteward.tools.base import call_tool

    st = any_steward
    setup_use_case(st)
    pass_eval(st)
    call_tool("deploy", {"use_case": UC, "model_id": CAND, "strategy": "canary", "steps": [25, 50, 100]}, ctx(st))
    healthy_window(st, 25)
    a = ControlLoop(st, LoopConfig(), holder="replica-a")
    a._lease_tick()
    assert a.leading() and a.term == 1

    def snapshot() -> list[tuple[Any, ...]]:
        with session_scope(st.sessions) as s:
            return [(r.step_index, r.state, len(r.analyses or [])) for r in s.scalars(select(Rollout))]

    before = snapshot()
    # A freezes; its lease expires and B takes over (term 2)
    with session_scope(st.sessions) as s:
        s.execute(update(ControlLease).where(ControlLease.name == LEASE_NAME)
                  .values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    assert lease.acquire(st.sessions, LEASE_NAME, "replica-b", 30).term == 2
    # A resumes its rollout job, still believing it leads (term 1)
    a._fenced(a._rollout_tick)()
    assert snapshot() == before
    with pytest.raises(lease.LeaseLost, match="replica-b"):
        with lease.fenced(LEASE_NAME, "replica-a", 1):
            call_tool("rollout_advance", {"use_case": UC}, ctx(st))
    assert snapshot() == before
    # the holder of the current term may write
    with lease.fenced(LEASE_NAME, "replica-b", 2):
        call_tool("rollout_advance", {"use_case": UC}, ctx(st))
    assert snapshot() != before
