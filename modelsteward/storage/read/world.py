"""The agent's observation, as stored (issue 27: the agent reads through the read model): per use
case its routing, models, tests, rollouts, violations, approvals and gains; the catalog's last scan;
the pending approvals.  ``agent/observe.py`` adds what other stores hold (log feedback, intake).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from modelsteward.storage.db import session_scope
from modelsteward.storage.models import (
    AgentDecision,
    Approval,
    CatalogScan,
    FineTuningJob,
    GuardrailViolation,
    Model,
    ModelUseCaseStatus,
    RealisedGain,
    Rollout,
    TestResult,
    UseCase,
)
from modelsteward.storage.read.shapes import ApprovalOut
from modelsteward.storage.registry import ModelRegistry
from modelsteward.storage.states import ACTIVE_ROLLOUT_STATES
from modelsteward.storage.status import status_for

__all__ = ["world", "extra_models", "intake_rows", "IntakeRows", "SCAN_STALE_AFTER", "VIOLATION_WINDOW", "GAINS_WINDOW"]

SCAN_STALE_AFTER = dt.timedelta(hours=24)
VIOLATION_WINDOW = dt.timedelta(hours=24)
GAINS_WINDOW = dt.timedelta(days=90)
_PENDING = {"id", "action", "arguments", "use_case_id", "reason", "thread_id"}  # of an approval, what the agent sees
_HANDLED = ("pause", "paused", "rollback", "rolled_back", "disable", "disabled", "aborted")


def _final(g: RealisedGain | None) -> bool:
    return g is not None and g.verdict != "pending" and g.promoted_at + dt.timedelta(hours=g.window_hours) <= g.updated_at


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


def _model_row(m: Model) -> dict[str, Any]:
    return {
        "id": m.id, "status": m.status, "kind": m.kind, "price_in_per_m": _f(m.price_in_per_m),
        "price_out_per_m": _f(m.price_out_per_m), "context_length": m.context_length,
        "parent_model_id": m.parent_model_id, "description": str((m.meta or {}).get("description", ""))[:500],
    }


def _status_here(s: Any, m: Model, uc_id: int) -> str:
    """The model's status on this use case (``storage/status.py``); a model with no per-use-case
    status anywhere (routing written outside the status events) keeps its global one."""
    has_rows = s.scalar(select(ModelUseCaseStatus.id).where(ModelUseCaseStatus.model_id == m.id).limit(1))
    return status_for(s, m, uc_id) if has_rows is not None else m.status


def _result_row(r: TestResult) -> dict[str, Any]:
    keep: dict[str, Any] = {k: v for k, v in (r.metrics or {}).items()
                            if isinstance(v, (int, float, str, bool)) or v is None}
    gate_q = (((r.metrics or {}).get("gate") or {}).get("quality") or {}).get("value")
    if isinstance(gate_q, (int, float)) and "quality_ratio" not in keep:
        keep["quality_ratio"] = float(gate_q)  # candidate / baseline quality on the same items
    benefit = (r.metrics or {}).get("benefit")
    if isinstance(benefit, dict):
        keep["benefit"] = {k: v for k, v in benefit.items() if isinstance(v, (int, float, str, bool)) or v is None}
    return {
        "id": r.id, "candidate": r.candidate_model_id, "baseline": r.baseline_model_id, "verdict": r.verdict,
        "passed": bool(r.passed), "samples": r.sample_count, "metrics": keep, "at": r.created_at.isoformat(),
    }


def _use_case_entry(s: Any, reg: Any, uc: UseCase, now: dt.datetime, pending: list[dict[str, Any]]) -> dict[str, Any]:
    """One use case's part of the observation: routing, models, tests, rollouts, violations, approvals."""
    dep = reg.deployment(uc.name)
    live = reg.routing_table(dep)
    current = max((a for a in live if a["role"] == "primary"), key=lambda a: a["weight"], default=None)
    results = list(s.scalars(
        select(TestResult).where(TestResult.use_case_id == uc.id).order_by(TestResult.id.desc()).limit(200)))
    latest: dict[str, dict[str, Any]] = {}
    for r in results:
        latest.setdefault(r.candidate_model_id, _result_row(r))
    fallback = [str(x) for x in (uc.fallback or [])]
    # linked, live, fallback, or evaluated on this use case (an unlinked candidate the intake found)
    models = [m for m in s.scalars(select(Model).order_by(Model.id))
              if m.use_case_id == uc.id or any(a["model_id"] == m.id for a in live)
              or m.id in latest or m.id in fallback]
    rollouts = list(s.scalars(
        select(Rollout).where(Rollout.use_case_id == uc.id).order_by(Rollout.id.desc()).limit(10)))
    active = [r for r in rollouts if r.state in ACTIVE_ROLLOUT_STATES]
    gains = {g.rollout_id: g for g in s.scalars(select(RealisedGain).where(RealisedGain.use_case_id == uc.id))}
    viols = list(s.scalars(
        select(GuardrailViolation).where(
            GuardrailViolation.use_case_id == uc.id,
            func.coalesce(GuardrailViolation.last_seen_at, GuardrailViolation.created_at) > now - VIOLATION_WINDOW)
        .order_by(GuardrailViolation.id.desc()).limit(20)))
    job = s.scalar(select(FineTuningJob).where(FineTuningJob.use_case_id == uc.id)
                   .order_by(FineTuningJob.id.desc()).limit(1))
    entry: dict[str, Any] = {
        "name": uc.name,
        "description": uc.description[:500],
        "current_model": current["model_id"] if current else None,
        "allocations": live,
        "deployment_version": dep.version,
        "agent_config": dict((uc.config or {}).get("agent") or {}),
        "fallback": fallback,
        "models": [{**_model_row(m), "status": _status_here(s, m, uc.id), "latest_test": latest.get(m.id),
                    "shadow_passed": ((m.meta or {}).get("shadow_passed") or {}).get("use_case") == uc.name}
                   for m in models],
        "rollouts": [
            {"id": r.id, "candidate": r.candidate_model_id, "stable": r.stable_model_id,
             "strategy": r.strategy, "state": r.state, "step_index": r.step_index, "steps": r.steps,
             "last_analysis": (r.analyses or [None])[-1]}
            for r in active
        ],
        "recent_rollouts": [{"id": r.id, "candidate": r.candidate_model_id, "state": r.state,
                             "updated_at": r.updated_at.isoformat() if r.updated_at else None}
                            for r in rollouts],
        "violations": [
            {"id": v.id, "policy": v.policy, "severity": v.severity, "model_id": v.model_id,
             "measured": v.measured, "threshold": v.threshold, "action": v.action,
             "details": {k: x for k, x in (v.details or {}).items() if isinstance(x, (int, float, str, bool))},
             "handled": bool((v.details or {}).get("handled")) or v.action in _HANDLED or v.action.startswith("covered"), "at": v.created_at.isoformat(),
             # closed by the guard check that no longer found it (rows from before had no close: open)
             "open": v.cleared_at is None,
             "cleared_at": v.cleared_at.isoformat() if v.cleared_at else None}
            for v in viols
        ],
        "last_fine_tune": None if job is None else {
            "id": job.id, "status": job.status, "base": job.base_model_id,
            "result_model_id": job.result_model_id, "at": job.created_at.isoformat(),
        },
        "pending_approvals": [a["id"] for a in pending if a["use_case_id"] == uc.id],
        # what a person turned down lately (a switch is not proposed again for the same violation)
        "declined_approvals": [
            {"id": a.id, "action": a.action, "model_id": (a.arguments or {}).get("model_id"), "status": a.status,
             "at": (a.decided_at or a.created_at).isoformat()}
            for a in s.scalars(select(Approval).where(Approval.use_case_id == uc.id,
                                                      Approval.status.in_(("rejected", "expired", "withdrawn")),
                                                      Approval.created_at > now - VIOLATION_WINDOW))],
        # promotions whose realised gain is not measured for good yet (the ledger, rollout/ledger.py)
        # (a shadow that completed changed nothing live: it has no realised gain)
        "gains_due": [r.id for r in rollouts if r.state == "completed" and r.strategy != "shadow"
                      and r.updated_at > now - GAINS_WINDOW
                      and not _final(gains.get(r.id))],
    }
    return entry


def extra_models(reg: ModelRegistry, use_case: str, ids: list[str]) -> list[dict[str, Any]]:
    """Models ``ids`` (by id) as the observation lists them on ``use_case`` (an unlinked candidate the
    intake found): no latest test, no shadow passed."""
    with session_scope(reg.sessions) as s:
        out = []
        for m in s.scalars(select(Model).where(Model.id.in_(ids)).order_by(Model.id)):
            uc_id = s.scalar(select(UseCase.id).where(UseCase.name == use_case))
            status = _status_here(s, m, uc_id) if uc_id is not None else m.status
            out.append({**_model_row(m), "status": status, "latest_test": None, "shadow_passed": False})
        return out


def world(reg: ModelRegistry, now: dt.datetime, use_case: str | None = None) -> dict[str, Any]:
    """``{"catalog", "pending_approvals", "use_cases"}`` as of ``now`` (naive UTC): every use case, or just
    ``use_case`` (``NotFound`` naming close matches when there is none)."""
    out: dict[str, Any] = {}
    with session_scope(reg.sessions) as s:
        ucs = list(s.scalars(select(UseCase).order_by(UseCase.name)))
        if use_case is not None:
            ucs = [u for u in ucs if u.name == use_case]
            if not ucs:
                reg.get_use_case(use_case)  # raises NotFound naming close matches
        scans = list(s.scalars(select(CatalogScan).order_by(CatalogScan.id.desc()).limit(50)))
        last_ok = max((sc.created_at for sc in scans if sc.status == "ok"), default=None)
        out["catalog"] = {
            "last_scan_at": last_ok.isoformat() if last_ok else None,
            "stale": last_ok is None or now - last_ok > SCAN_STALE_AFTER,
        }
        pending = list(s.scalars(select(Approval).where(Approval.status == "pending").order_by(Approval.id)))
        out["pending_approvals"] = [ApprovalOut.model_validate(a).model_dump(include=_PENDING) for a in pending]
        out["use_cases"] = [_use_case_entry(s, reg, uc, now, out["pending_approvals"]) for uc in ucs]
    return out


@dataclass(frozen=True)
class IntakeRows:
    """What the candidate intake (``agent/intake.py``) weighs for one use case, read in one session:
    the use case, every model by id, its tests newest first, the fingerprint recorded with each
    model's last decision to evaluate it, and the catalog scans that re-priced models since its
    oldest test (``(created_at, repriced model ids)``).  The rows are detached, loaded, read-only."""

    use_case: Any
    models: dict[str, Any]
    tests: list[Any]
    fingerprints: dict[str, tuple[dt.datetime, dict[str, Any]]]
    repricings: list[tuple[dt.datetime, frozenset[str]]]


def intake_rows(reg: ModelRegistry, name: str) -> IntakeRows | None:
    """The intake's rows for use case ``name`` (None when there is no such use case)."""
    with session_scope(reg.sessions) as s:
        uc = s.scalar(select(UseCase).where(UseCase.name == name))
        if uc is None:
            return None
        models = {m.id: m for m in s.scalars(select(Model))}
        tests = list(s.scalars(select(TestResult).where(TestResult.use_case_id == uc.id).order_by(TestResult.id.desc())))
        decided = s.scalars(select(AgentDecision).where(AgentDecision.use_case_id == uc.id,
                                                        AgentDecision.kind == "evaluate",
                                                        AgentDecision.taken.is_(True)).order_by(AgentDecision.id))
        fps = {r.model_id: (r.created_at, dict(r.fingerprint or {})) for r in decided if r.model_id}
        repricings: list[tuple[dt.datetime, frozenset[str]]] = []
        if tests:
            since = min(t.created_at for t in tests)
            for scan in s.scalars(select(CatalogScan).where(CatalogScan.created_at > since, CatalogScan.status == "ok")):
                ids = frozenset(str(r["id"]) for r in scan.repriced or [] if isinstance(r, dict) and r.get("id"))
                repricings.append((scan.created_at, ids))
        return IntakeRows(use_case=uc, models=models, tests=tests, fingerprints=fps, repricings=repricings)
