"""The guardrails monitor: windows of log analytics per use case and model -> violations -> actions.

Checks (thresholds in ``config["guardrails"]``, clamped to the hard bounds in bounds.py):
- ``error_rate_spike``: error rate in the recent window above the model's baseline (the hours
  before it) by more than ``error_rate_abs``;
- ``latency_slo``: p95 latency of successful requests above ``requirements.latency_slo_ms``;
- ``budget_burn``: the use case's spend over the baseline window, projected to a month, divided by
  ``monthly_budget_usd``;
- ``feedback_drop``: mean feedback in the window below the baseline's by more than ``feedback_drop``;
- ``safety_flags``: share of flagged responses above ``safety_flag_rate``;
- absolute SLOs of a live (non-candidate) model, whatever its own baseline: ``slo_error_rate``
  (error rate above ``slo_error_rate``), ``slo_p95_latency`` (p95 above the use case's
  ``latency_slo_ms``; a candidate's p95 over the SLO is ``latency_slo``), ``slo_cost_per_request``
  (mean cost per request above ``slo_cost_per_request_usd``).  They warn, with the evidence; the
  agent proposes a switch to a healthy model.

Budget burn is projected only from at least ``budget_min_span_hours`` of traffic, and never
pauses a rollout whose candidate lowers the expected cost per request.

Severity and action (decision, the issue is silent): a violation by the candidate of an active
rollout pauses it (latency), rolls it back (error spike, latency over SLO x factor, feedback drop)
or disables it (error rate >= ``error_rate_disable`` or safety flags: rolled back and the model
``rejected``).  A violation by the stable model only warns, or pauses an active rollout (its
comparison is meaningless while the stable side misbehaves); the monitor never removes the only
live model.  Budget burn warns, and pauses an active rollout above ``burn_rate_pause``.  One action
per use case per check: the most severe (disable > rollback > pause > warn).

One open violation per (policy, use case, model): while the condition lasts, each check updates
that row (``last_seen_at``, ``details["checks"]``, the latest measured value) instead of raising it
again; the first check that does not find it closes it (``cleared_at``), and a later return of the
condition is a new violation.  Acting (pause, roll back) still happens on every check that finds it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelsteward.bounds import latency_slo_of, section_of
from modelsteward.rollout.manager import RolloutManager
from modelsteward.rollout.metrics import feedback_drop_p_value, window_metrics
from modelsteward.storage import violations
from modelsteward.timeutil import utc_now_naive as utcnow

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
                self._record(name, [])  # what was open and is not found now is cleared
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
        slo = latency_slo_of(uc.requirements)  # zero or negative: InvalidInput naming latency_slo_ms
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
            if is_cand and slo and w.p95_ms is not None and w.p95_ms > slo:
                sev = "rollback" if w.p95_ms > slo * float(cfg["latency_slo_factor_rollback"]) else "pause"
                out.append(Violation("latency_slo", sev, name, mid, w.p95_ms, slo, {"requests": w.requests}))
            if not is_cand:
                out += self._slo(name, mid, w, cfg, slo, win_start, now)
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
            v = self._budget(name, budget, cfg, base_start, now, ro)
            if v is not None:
                out.append(v)
        return out

    def _slo(self, name: str, mid: str, w: Any, cfg: dict[str, Any], slo: float | None, since: dt.datetime,
             now: dt.datetime) -> list[Violation]:
        """Absolute ceilings on a live model (no comparison with its own past: a model that has failed
        for hours has a bad baseline too).  They warn; the agent proposes a switch to a healthy model."""
        out: list[Violation] = []
        ev = {"requests": w.requests, "errors": w.errors, "p95_ms": w.p95_ms, "cost_per_request": w.cost_per_request,
              "window": [since.isoformat(timespec="seconds"), now.isoformat(timespec="seconds")]}
        rate = w.error_rate or 0.0
        if rate > float(cfg["slo_error_rate"]):
            out.append(Violation("slo_error_rate", "warn", name, mid, rate, float(cfg["slo_error_rate"]), dict(ev)))
        if slo and w.p95_ms is not None and w.p95_ms > slo:
            out.append(Violation("slo_p95_latency", "warn", name, mid, w.p95_ms, slo, dict(ev)))
        ceiling = float(cfg["slo_cost_per_request_usd"])
        if w.cost_per_request is not None and w.cost_per_request > ceiling:
            out.append(Violation("slo_cost_per_request", "warn", name, mid, w.cost_per_request, ceiling, dict(ev)))
        return out

    def _budget(self, name: str, budget: float, cfg: dict[str, Any], base_start: dt.datetime, now: dt.datetime,
                ro: Any) -> Violation | None:
        """Spend over the baseline window projected to a month.  Not projected from less than
        ``budget_min_span_hours`` of traffic (a burst says nothing about a month); never pauses a
        rollout whose candidate lowers the expected cost per request (it is what helps the budget)."""
        spend = window_metrics(self.steward, name, base_start, now)
        if not spend.requests:
            return None
        first = self.steward.logs.query(
            "SELECT min(ts) AS first FROM logs WHERE use_case = ? AND ts >= ?", [name, base_start]
        )[0]["first"]
        span_h = (now - first).total_seconds() / 3600 if first else 0.0
        if span_h < float(cfg["budget_min_span_hours"]):
            return None  # uncertain: too short a span to project a month from
        monthly = spend.cost_usd * (30 * 24) / span_h
        burn = monthly / budget
        if burn <= float(cfg["burn_rate_warn"]):
            return None
        details: dict[str, Any] = {"projected_monthly_usd": monthly, "budget_usd": budget, "span_hours": span_h}
        sev = "pause" if (ro and burn > float(cfg["burn_rate_pause"])) else "warn"
        if sev == "pause":
            cheaper, costs = self._rollout_lowers_cost(name, ro)
            details["expected_cost_per_request"] = costs
            if cheaper:
                sev = "warn"
                details["not_paused"] = "the rollout lowers the expected cost per request"
        return Violation("budget_burn", sev, name, None, burn, float(cfg["burn_rate_warn"]), details)

    def _rollout_lowers_cost(self, name: str, ro: Any) -> tuple[bool, dict[str, float | None]]:
        from modelsteward.rollout.metrics import cost_per_request, usage

        use = usage(self.steward, name)
        tokens = (use["input_tokens"], use["output_tokens"])
        reg = self.steward.registry
        cand = cost_per_request(reg.get_model(ro.candidate_model_id), tokens)
        stable = cost_per_request(reg.get_model(ro.stable_model_id), tokens) if ro.stable_model_id else None
        costs = {"candidate": cand, "stable": stable}
        return (cand is not None and stable is not None and cand < stable), costs

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
        """One open row per (policy, use case, model): a check that finds an open violation again updates
        its row (measured value, last seen, checks; the severity only rises); an open row that this
        check does not find is closed (``cleared_at``).  Rows written elsewhere (no ``last_seen_at``,
        e.g. the ledger's) are left alone."""
        now = self.clock()
        found = [{"policy": v.policy, "severity": v.severity, "model_id": v.model_id, "measured": float(v.measured),
                  "threshold": float(v.threshold), "action": v.action[:40],
                  "details": {**v.details, "checks": 1, "first_seen": now.isoformat(timespec="seconds")}} for v in vs]
        of = {id(f): v for f, v in zip(found, vs)}
        ids = violations.record_check(self.steward.sessions, name, found, now,
                                      lambda row, new: _update_open(row, of[id(new)], now))
        for v, vid in zip(vs, ids):
            v.id = vid


def _update_open(row: Any, v: Violation, now: dt.datetime) -> dict[str, Any]:
    """The condition of an open violation still holds: the latest numbers, one more check; a higher
    severity (and its action) replaces a lower one, never the reverse.  Returns the fields to set."""
    old = dict(row.details or {})
    out: dict[str, Any] = {
        "details": {**old, **v.details, "checks": int(old.get("checks") or 1) + 1,
                    "first_seen": old.get("first_seen") or row.created_at.isoformat(timespec="seconds"),
                    "max_measured": max(float(old.get("max_measured") or row.measured or 0.0), float(v.measured))},
        "measured": float(v.measured), "threshold": float(v.threshold), "last_seen_at": now,
    }
    if SEVERITY_ORDER.index(v.severity) > SEVERITY_ORDER.index(row.severity if row.severity in SEVERITY_ORDER
                                                                else "warn"):
        out["severity"], out["action"] = v.severity, v.action[:40]
    return out
