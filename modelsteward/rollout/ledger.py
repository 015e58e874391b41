"""The realised-gain ledger: what a promotion actually changed, measured from the request logs.

For each completed rollout that changed the live model (a canary or full rollout: the candidate
reached 100 %; a completed *shadow* only mirrored traffic and is no promotion), a window of logged traffic before the
rollout started is compared with a window after the promotion (``window_hours`` each, the after
window ending now while it is still filling):

- cost per request, error rate and mean feedback: difference of means (after - before) with a
  95 % Welch t interval (``scipy.stats.ttest_ind(equal_var=False).confidence_interval``);
- p95 latency: difference of p95s with a 95 % percentile bootstrap (``scipy.stats.bootstrap``,
  fixed seed, at most ``BOOTSTRAP_CAP`` requests per window).

A metric moved when its interval excludes 0; the entry's verdict is ``gain`` (only better moves),
``loss`` (only worse), ``mixed``, ``no_change`` or ``pending`` (fewer than ``MIN_REQUESTS`` after).
The gain *stated* at promotion is the candidate's evaluation benefit (cheaper / better); a realised
move against it (stated cheaper, cost per request up; stated better, feedback down or errors up;
any stated gain, verdict loss) contradicts it, and :func:`measure` records one guardrail
violation ``realised_gain_contradicted`` per entry for a person to review.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats  # type: ignore[import-untyped]

from modelsteward.storage import evaluations, violations
from modelsteward.timeutil import utc_now_naive as utcnow

if TYPE_CHECKING:
    from modelsteward.context import Steward

__all__ = ["measure", "entry_dict", "compare", "METRICS", "MIN_REQUESTS", "DEFAULT_WINDOW_HOURS", "VIOLATION_POLICY"]

METRICS = ("cost_per_request", "error_rate", "p95_latency_ms", "feedback")
LOWER_IS_BETTER = {"cost_per_request": True, "error_rate": True, "p95_latency_ms": True, "feedback": False}
MIN_REQUESTS = 30
DEFAULT_WINDOW_HOURS = 168.0
BOOTSTRAP_CAP = 4000
ROW_CAP = 50000
VIOLATION_POLICY = "realised_gain_contradicted"
# strategies whose completion puts the candidate at 100 % (a completed shadow only mirrored traffic)
PROMOTING_STRATEGIES = ("canary", "full")


def _welch(before: np.ndarray, after: np.ndarray) -> tuple[float | None, float | None]:
    if len(before) < 2 or len(after) < 2:
        return None, None
    if np.std(before) == 0 and np.std(after) == 0:  # no spread: the difference is exact
        d = float(np.mean(after) - np.mean(before))
        return d, d
    ci = stats.ttest_ind(after, before, equal_var=False).confidence_interval(0.95)
    lo, hi = float(ci.low), float(ci.high)
    return (None, None) if math.isnan(lo) or math.isnan(hi) else (lo, hi)


def _p95_diff(before: np.ndarray, after: np.ndarray) -> tuple[float | None, float | None]:
    if len(before) < 2 or len(after) < 2:
        return None, None
    rng = np.random.default_rng(0)
    b = rng.choice(before, BOOTSTRAP_CAP, replace=False) if len(before) > BOOTSTRAP_CAP else before
    a = rng.choice(after, BOOTSTRAP_CAP, replace=False) if len(after) > BOOTSTRAP_CAP else after
    res = stats.bootstrap((b, a), lambda x, y, axis=-1: np.percentile(y, 95, axis=axis) - np.percentile(x, 95, axis=axis),
                          vectorized=True, n_resamples=999, method="percentile", random_state=rng)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def compare(name: str, before: np.ndarray, after: np.ndarray) -> dict[str, Any]:
    """One metric: before, after, difference and its 95 % interval, and which way it moved."""
    p95 = name == "p95_latency_ms"
    stat = (lambda x: float(np.percentile(x, 95))) if p95 else (lambda x: float(np.mean(x)))
    b = stat(before) if len(before) else None
    a = stat(after) if len(after) else None
    lo, hi = (_p95_diff if p95 else _welch)(before, after)
    moved = "unchanged"
    if lo is not None and hi is not None and (lo > 0 or hi < 0):
        up = lo > 0
        moved = "worse" if up == LOWER_IS_BETTER[name] else "better"
    return {"before": b, "after": a, "delta": None if a is None or b is None else a - b,
            "relative": None if a is None or not b else a / b - 1.0, "ci_low": lo, "ci_high": hi,
            "n_before": int(len(before)), "n_after": int(len(after)),
            "method": "bootstrap_percentile_95" if p95 else "welch_t_95", "moved": moved}


def _window(steward: Steward, use_case: str, start: dt.datetime, end: dt.datetime) -> dict[str, np.ndarray]:
    rows = steward.logs.query(
        "SELECT cost_usd, status, latency_ms, feedback FROM logs WHERE use_case = ? AND role <> 'shadow' "
        "AND CAST(ts AS TIMESTAMP) >= CAST(? AS TIMESTAMP) AND CAST(ts AS TIMESTAMP) < CAST(? AS TIMESTAMP) "
        f"LIMIT {ROW_CAP}", [use_case, start.isoformat(), end.isoformat()])
    ok = [r for r in rows if r["status"] != "error"]
    return {
        "cost_per_request": np.array([float(r["cost_usd"] or 0.0) for r in rows]),
        "error_rate": np.array([1.0 if r["status"] == "error" else 0.0 for r in rows]),
        "p95_latency_ms": np.array([float(r["latency_ms"]) for r in ok if r["latency_ms"] is not None]),
        "feedback": np.array([float(r["feedback"]) for r in rows if r["feedback"] is not None]),
    }


def _stated(steward: Steward, uc_id: int, model_id: str, previous: str | None) -> dict[str, Any]:
    t = evaluations.latest_passing(steward.sessions, uc_id, model_id, previous, any_baseline=not previous)
    if t is None:
        return {"verdict": "none", "rule": "no passing evaluation found", "test_result_id": None}
    b = (t.metrics or {}).get("benefit")
    b = b if isinstance(b, dict) else {"verdict": "none", "rule": "the evaluation stated no benefit"}
    return {**{k: v for k, v in b.items() if isinstance(v, (int, float, str, bool)) or v is None}, "test_result_id": t.id}


def _judge(metrics: dict[str, dict[str, Any]], stated: dict[str, Any], after_n: int) -> tuple[str, bool, str]:
    if after_n < MIN_REQUESTS:
        return "pending", False, f"{after_n} requests after the promotion; {MIN_REQUESTS} needed to judge"
    better = [k for k, m in metrics.items() if m["moved"] == "better"]
    worse = [k for k, m in metrics.items() if m["moved"] == "worse"]
    verdict = "mixed" if better and worse else "gain" if better else "loss" if worse else "no_change"
    claim = stated.get("verdict")
    against = []
    if claim == "cheaper" and metrics["cost_per_request"]["moved"] == "worse":
        against.append("stated cheaper, but cost per request rose")
    if claim == "better" and metrics["feedback"]["moved"] == "worse":
        against.append("stated better, but feedback fell")
    if claim == "better" and metrics["error_rate"]["moved"] == "worse":
        against.append("stated better, but the error rate rose")
    if claim in ("cheaper", "better") and verdict == "loss" and not against:
        against.append(f"stated {claim}, but every significant change is a loss ({', '.join(worse)})")
    parts = [f"better: {', '.join(better)}" if better else "", f"worse: {', '.join(worse)}" if worse else ""]
    note = "; ".join(p for p in parts if p) or "no significant change"
    if against:
        note = "CONTRADICTS the stated gain: " + "; ".join(against) + f" ({note})"
    return verdict, bool(against), note


def _promoted_at(ro: Any) -> dt.datetime:
    for e in reversed(ro.analyses or []):
        if e.get("event") == "completed" and e.get("at"):
            try:
                return dt.datetime.fromisoformat(str(e["at"])).replace(tzinfo=None)
            except ValueError:
                break
    return ro.updated_at


def measure(steward: Steward, use_case: str, *, since_days: float = 90.0,
            window_hours: float = DEFAULT_WINDOW_HOURS, actor: str = "system") -> list[dict[str, Any]]:
    """Measure (or re-measure, while its after-window fills) every promotion of ``use_case`` since
    ``since_days``; upsert the ledger and raise one violation per contradicted entry."""
    now = utcnow()
    uc = steward.registry.get_use_case(use_case)
    ros = violations.promotions(steward.sessions, uc.id, PROMOTING_STRATEGIES, now - dt.timedelta(days=since_days))
    todo = [(ro.id, ro.candidate_model_id, ro.stable_model_id, ro.created_at, _promoted_at(ro)) for ro in ros]
    final = {rid for rid, g in violations.gains(steward.sessions, uc.id).items() if g.verdict != "pending"
             and g.promoted_at + dt.timedelta(hours=g.window_hours) <= g.updated_at}
    w = dt.timedelta(hours=window_hours)
    for rid, model_id, previous, started, promoted in todo:
        if rid in final:
            continue
        before = _window(steward, use_case, started - w, started)
        after = _window(steward, use_case, promoted, min(promoted + w, now))
        metrics = {k: compare(k, before[k], after[k]) for k in METRICS}
        stated = _stated(steward, uc.id, model_id, previous)
        verdict, contradicts, note = _judge(metrics, stated, len(after["cost_per_request"]))
        cost = metrics["cost_per_request"]
        violations.upsert_gain(
            steward.sessions, use_case_id=uc.id, rollout_id=rid, model_id=model_id, previous_model_id=previous,
            promoted_at=promoted, window_hours=window_hours, now=now,
            fields={"metrics": metrics, "stated": stated, "verdict": verdict, "contradicts": contradicts, "note": note},
            violation={"policy": VIOLATION_POLICY, "severity": "warn", "measured": cost["relative"],
                       "threshold": stated.get("cost_ratio"), "action": "review",
                       "details": {"rollout_id": rid, "note": note[:500], "actor": actor}})
    return ledger(steward, use_case, since_days=since_days)


def entry_dict(g: Any) -> dict[str, Any]:
    return {"id": g.id, "rollout_id": g.rollout_id, "model_id": g.model_id, "previous_model_id": g.previous_model_id,
            "promoted_at": g.promoted_at.isoformat(), "window_hours": g.window_hours, "verdict": g.verdict,
            "contradicts": g.contradicts, "note": g.note, "stated": g.stated, "metrics": g.metrics,
            "measured_at": g.updated_at.isoformat()}


def ledger(steward: Steward, use_case: str, *, since_days: float = 90.0) -> list[dict[str, Any]]:
    since = utcnow() - dt.timedelta(days=since_days)
    # only changes of the live model: an entry of a shadow rollout (measured before this rule) is left out
    return [entry_dict(g) for g in violations.gain_entries(steward.sessions, use_case, since, PROMOTING_STRATEGIES)]
