"""The guardrails monitor: windows of log analytics per use case and model -> violations -> actions.

Checks (thresholds in ``config["guardrails"]``, clamped to the hard bounds in policies/bounds.py):
- ``error_rate_spike``: error rate in the recent window above the model's baseline (the hours
  before it) by more than ``error_rate_abs``;
- ``latency_slo``: p95 latency of successful requests above ``requirements.latency_slo_ms``;
- ``budget_burn``: the use case's spend over the baseline window, projected to a month, divided by
  ``monthly_budget_usd``;
- ``feedback_drop``: mean feedback in the window below the baseline's by more than ``feedback_drop``;
- ``safety_flags``: share of flagged responses above ``safety_flag_rate``.

Severity and action (decision, the issue is silent): a violation by the candidate of an active
rollout pauses it (latency), rolls it back (error spike, latency over SLO x factor, feedback drop)
or disables it (error rate >= ``error_rate_disable`` or safety flags: rolled back and the model
``rejected``).  A violation by the stable model only warns, or pauses an active rollout (its
comparison is meaningless while the stable side misbehaves); the monitor never removes the only
live model.  Budget burn warns, and pauses an active rollout above ``burn_rate_pause``.  One action
per use case per check: the most severe (disable > rollback > pause > warn).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from modelsteward.policies.bounds import section_of
from modelsteward.rollout.manager import RolloutManager
from modelsteward.rollout.metrics import feedback_drop_p_value, window_metrics
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import GuardrailViolation, UseCase, utcnow

if TYPE_CHECKING:
    from modelsteward.context import Steward

__all__ = ["GuardrailsMonitor", "Violation", "SEVERITY_ORDER"]

SEVERITY_ORDER = ("warn", "pause", "rollback", "disable")


@dataclass
class Violation:
    policy: str
    severity: str
    use_case: str
    model_id: str | None
    measured: float
    threshold: float
    details: dict[str, Any] = field(default_factory=dict)
    action: str = "warn"
    id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "policy": self.policy, "severity": self.severity, "use_case": self.use_case,
            "model_id": self.model_id, "measured": self.measured, "threshold": self.threshold,
            "action": self.action, "details": self.details,
        }


class GuardrailsMonitor:
    def __init__(self, steward: Steward, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.steward = steward
        self.clock = clock or utcnow
        self.rollouts = RolloutManager(steward, clock=self.clock)

    def check(self, use_case: str | None = None, *, actor: str = "guardrails", act: bool = True) -> dict[str, Any]:
        """Check one use case (or all), record violations, act on them; returns violations and actions."""
        names = [use_case] if use_case else [u.name for u in self.steward.registry.list_use_cases()]
        if use_case:
            self.steward.registry.get_use_case(use_case)  # NotFound with suggestions
        found: list[Violation] = []
        actions: list[dict[str, Any]] = []
        for name in names:
            vs = self.measure(name)
            if not vs:
                continue
            taken = self._act(name, vs, actor) if act else {"action": "none", "detail": "dry run"}
            for v in vs:
                v.action = taken["action"] if v.severity == taken.get("severity") else (
                    "warn" if v.severity == "warn" else f"covered by {taken['action']}"
                )
            self._record(name, vs)
            found.extend(vs)
            actions.append({"use_case": name, **taken})
        return {"checked": names, "violations": [v.as_dict() for v in found], "actions": actions}

    # ------------------------------------------------------------------ measuring
    def measure(self, name: str) -> list[Violation]:
        """Compute the violations of one use case now (no writes)."""
        reg = self.steward.registry
        uc = reg.get_use_case(name)
        cfg = section_of(uc.config, "guardrails")
        now = self.clock()
        win_start = now - dt.timedelta(minutes=float(cfg["window_minutes"]))
        base_start = win_start - dt.timedelta(hours=float(cfg["baseline_hours"]))
        dep = reg.deployment(name)
        ro = self.rollouts.active(name)
        cand = ro.candidate_model_id if ro else None
        models = {a.model_id: a.role for a in dep.allocations}
        if cand:
            models.setdefault(cand, "canary")
        out: list[Violation] = []
        min_req = int(cfg["min_requests"])
        slo = (uc.requirements or {}).get("latency_slo_ms")
        for mid in sorted(models):
            is_cand = mid == cand
            w = window_metrics(self.steward, name, win_start, now, model_id=mid)
            if w.requests < min_req:
                continue
            b = window_metrics(self.steward, name, base_start, win_start, model_id=mid)
            base_rate = (b.error_rate or 0.0) if b.requests >= min_req else 0.0
            lim = base_rate + float(cfg["error_rate_abs"])
            rate = w.error_rate or 0.0
            if rate > lim:
                sev = ("disable" if rate >= float(cfg["error_rate_disable"]) else "rollback") if is_cand else (
                    "pause" if ro else "warn")
                out.append(Violation("error_rate_spike", sev, name, mid, rate, lim,
                                     {"requests": w.requests, "errors": w.errors, "baseline_rate": base_rate}))
            if slo and w.p95_ms is not None and w.p95_ms > float(slo):
                sev = "warn"
                if is_cand:
                    sev = "rollback" if w.p95_ms > float(slo) * float(cfg["latency_slo_factor_rollback"]) else "pause"
                out.append(Violation("latency_slo", sev, name, mid, w.p95_ms, float(slo), {"requests": w.requests}))
            min_fb = int(cfg["min_feedback_count"])
            if w.feedback_count >= min_fb and b.feedback_count >= min_fb:
                assert w.mean_feedback is not None and b.mean_feedback is not None
                p = feedback_drop_p_value(w, b) if b.mean_feedback - w.mean_feedback > float(cfg["feedback_drop"]) else 1.0
                if p < float(cfg["feedback_alpha"]):  # a drop over the threshold that is not noise
                    out.append(Violation(
                        "feedback_drop", "rollback" if is_cand else "warn", name, mid, w.mean_feedback,
                        b.mean_feedback - float(cfg["feedback_drop"]), {"baseline": b.mean_feedback, "p_value": p},
                    ))
            fr = w.flag_rate or 0.0
            if w.flagged and fr > float(cfg["safety_flag_rate"]):
                out.append(Violation("safety_flags", "disable" if is_cand else ("pause" if ro else "warn"), name, mid,
                                     fr, float(cfg["safety_flag_rate"]), {"flagged": w.flagged}))
        budget = float(uc.monthly_budget_usd) if uc.monthly_budget_usd else None
        if budget:
            spend = window_metrics(self.steward, name, base_start, now)
            if spend.requests:
                first = self.steward.logs.query(
                    "SELECT min(ts) AS first FROM logs WHERE use_case = ? AND ts >= ?", [name, base_start]
                )[0]["first"]
                span_h = max((now - first).total_seconds() / 3600, float(cfg["window_minutes"]) / 60) if first else 1.0
                monthly = spend.cost_usd * (30 * 24) / span_h
                burn = monthly / budget
                if burn > float(cfg["burn_rate_warn"]):
                    sev = "pause" if (ro and burn > float(cfg["burn_rate_pause"])) else "warn"
                    out.append(Violation("budget_burn", sev, name, None, burn, float(cfg["burn_rate_warn"]),
                                         {"projected_monthly_usd": monthly, "budget_usd": budget}))
        return out

    # ------------------------------------------------------------------ acting
    def _act(self, name: str, vs: list[Violation], actor: str) -> dict[str, Any]:
        worst = max(vs, key=lambda v: SEVERITY_ORDER.index(v.severity))
        why = f"guardrail {worst.policy}: measured {worst.measured:.4g} vs threshold {worst.threshold:.4g}"
        if worst.severity == "warn":
            return {"action": "warn", "severity": "warn", "reason": why}
        if worst.severity == "pause":
            ro = self.rollouts.pause(name, actor=actor, reason=why)
            return {"action": "pause" if ro else "warn", "severity": "pause", "reason": why,
                    "rollout_id": ro.id if ro else None}
        ro = self.rollouts.active(name)
        if ro is None:
            return {"action": "warn", "severity": worst.severity, "reason": why + " (no active rollout to roll back)"}
        rb = self.rollouts.abort(name, actor=actor, reason=why, reject=worst.severity == "disable")
        if worst.severity == "disable":
            self.steward.registry.update_metadata(
                ro.candidate_model_id, disabled={"by": actor, "reason": why, "at": self.clock().isoformat()}
            )
        return {"action": worst.severity, "severity": worst.severity, "reason": why, "rollout_id": ro.id,
                "snapshot_id": rb["snapshot_id"]}

    def _record(self, name: str, vs: list[Violation]) -> None:
        with session_scope(self.steward.sessions) as s:
            uc_id = s.scalar(select(UseCase.id).where(UseCase.name == name))
            for v in vs:
                row = GuardrailViolation(
                    policy=v.policy, severity=v.severity, use_case_id=uc_id, model_id=v.model_id,
                    measured=float(v.measured), threshold=float(v.threshold), action=v.action[:40], details=v.details,
                )
                s.add(row)
                s.flush()
                v.id = row.id
