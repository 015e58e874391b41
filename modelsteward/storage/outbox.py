"""The notification outbox: events read from the registry past cursors kept in the registry.

The control loop's leader calls ``collect`` on a schedule: it reads what happened since its
cursors (``control_state``) and writes one ``notifications`` row per event, keyed so that an event
is written once whoever collects it and however often (the key is unique; cursors and rows move in
one transaction).  No other module needs a hook:

| event | source |
| --- | --- |
| ``approval_requested`` | new ``approvals`` rows (id cursor) |
| ``approval_decided`` | ``approvals`` decided since the time cursor (approved / rejected) |
| ``guardrail_violation`` | new ``guardrail_violations`` rows of severity pause, rollback or disable (a repeat of the same one within the hour is not announced again) |
| ``rollback`` | new ``deployment_history`` rows ``rollback`` / ``rollout_abort`` |
| ``promotion`` | new ``deployment_history`` rows ``promote`` |
| ``agent_run_failed`` | ``agent_runs`` failed since the time cursor |
| ``leader_changed`` | written by the replica that takes the lease (``enqueue``) |

Cursors start at the registry's state when the loop first runs (``init_cursors``): history from
before is not announced.  Time cursors re-read a minute of overlap (a transaction that committed
late with an earlier timestamp is still seen); the unique key drops what was already written.
Delivery state (attempts, back-off, targets reached) lives on the row; see server/notify.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from modelsteward.storage.db import session_scope
from modelsteward.storage.models import (
    AgentRun,
    Approval,
    ControlState,
    DeploymentHistory,
    GuardrailViolation,
    Notification,
    Rollout,
    TestResult,
    UseCase,
    utcnow,
)

__all__ = ["EVENTS", "init_cursors", "collect", "enqueue", "due", "record_attempt", "list_notifications",
           "get_state", "set_state"]

EVENTS = ("approval_requested", "approval_decided", "guardrail_violation", "rollback", "promotion",
          "agent_run_failed", "leader_changed")
NOTIFY_SEVERITIES = ("pause", "rollback", "disable")
ROLLBACK_ACTIONS = ("rollback", "rollout_abort")
_ID_SOURCES: dict[str, Any] = {"approvals": Approval, "violations": GuardrailViolation, "history": DeploymentHistory}
_OVERLAP = dt.timedelta(minutes=1)
_CURSOR = "notify_cursors"


def get_state(sessions: sessionmaker[Session], key: str) -> dict[str, Any] | None:
    with session_scope(sessions) as s:
        row = s.get(ControlState, key)
        return dict(row.value) if row is not None else None


def set_state(sessions: sessionmaker[Session], key: str, value: dict[str, Any], *, only_if_absent: bool = False) -> bool:
    """Store ``value`` under ``key``; with ``only_if_absent`` a racing writer keeps its value."""
    try:
        with session_scope(sessions) as s:
            row = s.get(ControlState, key)
            if row is None:
                s.add(ControlState(key=key, value=value, updated_at=utcnow()))
            elif only_if_absent:
                return False
            else:
                row.value = value
        return True
    except IntegrityError:
        return False


def init_cursors(sessions: sessionmaker[Session], now: dt.datetime | None = None) -> dict[str, Any]:
    """Set the cursors to the registry's present state, unless they exist already."""
    now = now or utcnow()
    with session_scope(sessions) as s:
        cur: dict[str, Any] = {name: int(s.scalar(select(func.max(m.id))) or 0) for name, m in _ID_SOURCES.items()}
    cur.update(decided_at=now.isoformat(), failed_at=now.isoformat())
    set_state(sessions, _CURSOR, cur, only_if_absent=True)
    return get_state(sessions, _CURSOR) or cur


def _uc_names(s: Session) -> dict[int, str]:
    return dict(s.execute(select(UseCase.id, UseCase.name)).all())


def _evidence(s: Session, a: Approval, uc: str | None) -> dict[str, Any]:
    """What a person deciding ``a`` wants to see: the last analysis of the use case's rollout, or
    the latest evaluation of the model the action names."""
    out: dict[str, Any] = {}
    if a.use_case_id is not None:
        ro = s.scalars(select(Rollout).where(Rollout.use_case_id == a.use_case_id).order_by(Rollout.id.desc())).first()
        if ro is not None:
            last = next((e for e in reversed(ro.analyses or []) if e.get("event") == "analysis"), None)
            out["rollout"] = {"id": ro.id, "candidate": ro.candidate_model_id, "stable": ro.stable_model_id,
                              "state": ro.state, "step_index": ro.step_index, "steps": list(ro.steps or [])}
            if last:
                out["analysis"] = {k: last.get(k) for k in ("outcome", "reasons", "candidate", "stable", "weight")}
        model = (a.arguments or {}).get("model_id") or (ro.candidate_model_id if ro is not None else None)
        if model:
            tr = s.scalars(select(TestResult).where(TestResult.use_case_id == a.use_case_id,
                                                    TestResult.candidate_model_id == model)
                           .order_by(TestResult.id.desc())).first()
            if tr is not None:
                out["evaluation"] = {"test_result_id": tr.id, "model": model, "verdict": tr.verdict,
                                     "sample_count": tr.sample_count, "reasons": list(tr.reasons or [])[:5]}
    return out


def _add(s: Session, key: str, event: str, use_case: str | None, payload: dict[str, Any], now: dt.datetime) -> int:
    """Insert unless ``key`` exists (in a savepoint, so a duplicate never undoes the batch)."""
    if s.scalar(select(Notification.id).where(Notification.key == key)) is not None:
        return 0
    try:
        with s.begin_nested():
            s.add(Notification(key=key, event=event, use_case=use_case, payload=payload, status="pending",
                               attempts=0, next_attempt_at=now, delivered=[], created_at=now))
        return 1
    except IntegrityError:
        return 0


def enqueue(sessions: sessionmaker[Session], key: str, event: str, use_case: str | None, payload: dict[str, Any]) -> bool:
    """Write one event directly (``leader_changed``); False when ``key`` was already written."""
    with session_scope(sessions) as s:
        return _add(s, key, event, use_case, payload, utcnow()) == 1


def _collect_ids(s: Session, cur: dict[str, Any], names: dict[int, str], now: dt.datetime) -> int:
    n = 0
    for a in s.scalars(select(Approval).where(Approval.id > cur["approvals"]).order_by(Approval.id)):
        uc = names.get(a.use_case_id) if a.use_case_id else (a.arguments or {}).get("use_case")
        n += _add(s, f"approval_requested:{a.id}", "approval_requested", uc, {
            "approval_id": a.id, "action": a.action, "arguments": dict(a.arguments or {}), "reason": a.reason,
            "requester": a.requester, "evidence": _evidence(s, a, uc)}, now)
        cur["approvals"] = a.id
    for v in s.scalars(select(GuardrailViolation).where(GuardrailViolation.id > cur["violations"])
                       .order_by(GuardrailViolation.id)):
        if v.severity in NOTIFY_SEVERITIES:
            # one ongoing violation (same use case, policy, model, severity) is announced once an hour,
            # not at every guard check that records it again
            hour = v.created_at.strftime("%Y%m%d%H")
            key = f"guardrail_violation:{v.use_case_id}:{v.policy}:{v.model_id}:{v.severity}:{hour}"
            n += _add(s, key[:200], "guardrail_violation", names.get(v.use_case_id or -1), {
                "violation_id": v.id, "policy": v.policy, "severity": v.severity, "model_id": v.model_id,
                "measured": v.measured, "threshold": v.threshold, "action": v.action}, now)
        cur["violations"] = v.id
    for h in s.scalars(select(DeploymentHistory).where(DeploymentHistory.id > cur["history"])
                       .order_by(DeploymentHistory.id)):
        event = "rollback" if h.action in ROLLBACK_ACTIONS else "promotion" if h.action == "promote" else None
        if event:
            n += _add(s, f"{event}:{h.id}", event, names.get(h.use_case_id), {
                "history_id": h.id, "action": h.action, "actor": h.actor, "reason": h.reason,
                "rollout_id": h.rollout_id, "to_version": h.to_version}, now)
        cur["history"] = h.id
    return n


def _later(stored: str, seen: dt.datetime) -> str:
    return max(dt.datetime.fromisoformat(stored), seen).isoformat()


def _collect_times(s: Session, cur: dict[str, Any], names: dict[int, str], now: dt.datetime) -> int:
    n = 0
    since = dt.datetime.fromisoformat(cur["decided_at"]) - _OVERLAP
    for a in s.scalars(select(Approval).where(Approval.decided_at >= since,
                                              Approval.status.in_(("approved", "rejected", "executed")))):
        uc = names.get(a.use_case_id) if a.use_case_id else (a.arguments or {}).get("use_case")
        n += _add(s, f"approval_decided:{a.id}", "approval_decided", uc, {
            "approval_id": a.id, "action": a.action, "decision": "rejected" if a.status == "rejected" else "approved",
            "decided_by": a.decided_by, "decision_reason": a.decision_reason}, now)
        if a.decided_at is not None:
            cur["decided_at"] = _later(cur["decided_at"], a.decided_at)
    since = dt.datetime.fromisoformat(cur["failed_at"]) - _OVERLAP
    for r in s.scalars(select(AgentRun).where(AgentRun.status == "failed", AgentRun.finished_at >= since)):
        n += _add(s, f"agent_run_failed:{r.id}", "agent_run_failed", r.use_case, {
            "run_id": r.id, "trigger": r.trigger, "goal": r.goal, "error": (r.error or "")[:2000]}, now)
        assert r.finished_at is not None
        cur["failed_at"] = _later(cur["failed_at"], r.finished_at)
    return n


def collect(sessions: sessionmaker[Session], now: dt.datetime | None = None) -> int:
    """Write the events since the cursors as notifications; returns how many rows were new."""
    now = now or utcnow()
    init_cursors(sessions, now)
    with session_scope(sessions) as s:
        row = s.get(ControlState, _CURSOR, with_for_update=True)
        assert row is not None
        cur = dict(row.value)
        names = _uc_names(s)
        n = _collect_ids(s, cur, names, now) + _collect_times(s, cur, names, now)
        row.value = cur
        row.updated_at = now
    return n


def due(sessions: sessionmaker[Session], now: dt.datetime | None = None, limit: int = 50) -> list[Notification]:
    """Pending notifications whose next attempt is due, oldest first."""
    now = now or utcnow()
    with session_scope(sessions) as s:
        return list(s.scalars(select(Notification).where(Notification.status == "pending",
                                                         Notification.next_attempt_at <= now)
                              .order_by(Notification.id).limit(limit)))


def record_attempt(sessions: sessionmaker[Session], notification_id: int, *, delivered: list[str], error: str | None,
                   retry_in_s: float | None, now: dt.datetime | None = None) -> None:
    """After one delivery attempt: ``delivered`` targets so far; ``retry_in_s`` None means done
    (sent when no error, failed otherwise)."""
    now = now or utcnow()
    values: dict[str, Any] = {"delivered": delivered, "last_error": error, "attempts": Notification.attempts + 1}
    if retry_in_s is not None:
        values["next_attempt_at"] = now + dt.timedelta(seconds=retry_in_s)
    else:
        values["status"] = "failed" if error else "sent"
        values["sent_at"] = None if error else now
    with session_scope(sessions) as s:
        s.execute(update(Notification).where(Notification.id == notification_id).values(**values)
                  .execution_options(synchronize_session=False))


def list_notifications(sessions: sessionmaker[Session], limit: int = 100) -> list[dict[str, Any]]:
    with session_scope(sessions) as s:
        return [{"id": n.id, "key": n.key, "event": n.event, "use_case": n.use_case, "status": n.status,
                 "attempts": n.attempts, "delivered": list(n.delivered or []), "last_error": n.last_error,
                 "payload": dict(n.payload or {}), "created_at": n.created_at.isoformat(),
                 "sent_at": n.sent_at.isoformat() if n.sent_at else None}
                for n in s.scalars(select(Notification).order_by(Notification.id.desc()).limit(limit))]

