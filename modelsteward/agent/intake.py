"""Candidate intake: which registered models to evaluate for a use case this cycle, within its budget.

A model is a *candidate* when it passes the use case's compatibility filter (``catalog/compat.py``,
linked to the use case or not) and could beat the live model on the use case's weights: ranked
above it by ``catalog/rank.py``, or clearly cheaper per request (by ``evaluation.cheaper_margin``)
so that it would win if its quality matched; a price-tier quality prior is a guess, and only an
evaluation says a cheap model is worse.  A fine-tune of the live model's line trained for this use
case is always a candidate (its rank can only be a prior until it is evaluated).

Which candidates are evaluated this cycle is bounded by the use case's *evaluation budget*
(``config["evaluation"]``, hard bounds in ``bounds.py``): at most
``max_candidates_per_cycle``, and estimated paid calls within ``max_usd_per_cycle`` and, with what
evaluations already cost this month, ``max_usd_per_month``.  Cheapest to test go first, then the
highest ranked.  A candidate whose latest evaluation against the live model failed is not tested
again until its price, its version or the live model changes (the fingerprint recorded with the
decision to evaluate it, else a catalog scan that re-priced it since).

Every candidate considered ends as one decision record: ``evaluate`` or ``skip`` with the reason.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from modelsteward.agent.decisions import DecisionRecord
from modelsteward.bounds import section_of
from modelsteward.catalog.fingerprint import FINGERPRINT_KEYS, has_fingerprint, model_fingerprint
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import AgentDecision, CatalogScan, Model, TestResult, UseCase, utcnow

if TYPE_CHECKING:
    from modelsteward.context import Steward

__all__ = ["plan_intake", "fingerprint", "eval_cost_usd", "DEFAULT_SAMPLES", "MAX_EVAL_SAMPLES"]

DEFAULT_SAMPLES = 20  # the evaluate tool's default sample of logged prompts
MAX_EVAL_SAMPLES = 200  # re-evaluating an inconclusive candidate doubles its sample up to this
_PAID = ("paid",)
MAX_SKIP_RECORDS = 20  # "cannot beat the live model" records per cycle; more are counted in one record


def fingerprint(model: Model, live: str | None) -> dict[str, Any]:
    """What a re-test depends on: price, version and the model it is compared with."""
    return model_fingerprint(model, live)


def eval_cost_usd(metrics: dict[str, Any]) -> float:
    """What an evaluation cost in model calls, from its performance metrics (both sides)."""
    perf = (metrics or {}).get("performance") or {}
    total = 0.0
    for side in ("candidate", "baseline"):
        p = perf.get(side) or {}
        per_1k, n = p.get("cost_per_1k_usd"), p.get("requests")
        if isinstance(per_1k, (int, float)) and isinstance(n, (int, float)):
            total += float(per_1k) / 1000.0 * float(n)
    return total


def _golden_size(path: str | None) -> int:
    if not path:
        return 0
    try:
        with Path(path).open("rb") as f:
            return sum(1 for line in f if line.strip())
    except OSError:
        return 0


def _month_start(now: dt.datetime) -> dt.datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _last_fingerprints(s: Any, uc_id: int) -> dict[str, tuple[dt.datetime, dict[str, Any]]]:
    rows = s.scalars(select(AgentDecision).where(AgentDecision.use_case_id == uc_id, AgentDecision.kind == "evaluate",
                                                 AgentDecision.taken.is_(True)).order_by(AgentDecision.id))
    return {r.model_id: (r.created_at, dict(r.fingerprint or {})) for r in rows if r.model_id}


def _repriced_since(s: Any, model_id: str, since: dt.datetime) -> bool:
    for scan in s.scalars(select(CatalogScan).where(CatalogScan.created_at > since, CatalogScan.status == "ok")):
        if any(isinstance(r, dict) and r.get("id") == model_id for r in scan.repriced or []):
            return True
    return False


def _changed_since_test(s: Any, m: Model, test: TestResult, live: str,
                        fps: dict[str, tuple[dt.datetime, dict[str, Any]]]) -> str | None:
    """Why a failed candidate may be tested again (None: nothing changed).  Compared with the fingerprint
    the evaluation stored, else the one recorded with the decision to evaluate it; an empty one (a
    decision that recorded none) says nothing, and only a key it recorded can have changed."""
    now_fp = fingerprint(m, live)
    old: Any = (test.metrics or {}).get("fingerprint")
    if not has_fingerprint(old):
        at, old = fps.get(m.id, (None, None))
        if at is None or at < test.created_at - dt.timedelta(minutes=5):
            old = None
    if has_fingerprint(old):
        for key, what in FINGERPRINT_KEYS:
            if key in old and old.get(key) != now_fp.get(key):
                return f"{what} changed ({old.get(key)} -> {now_fp.get(key)}) since test #{test.id}"
        return None
    if _repriced_since(s, m.id, test.created_at):
        return f"re-priced by a catalog scan since test #{test.id}"
    return None


def _budget(config: dict[str, Any] | None) -> dict[str, float]:
    return section_of(config, "evaluation")


def _apply_budget(out: dict[str, Any], eligible: list[dict[str, Any]], budget: dict[str, float], month_usd: float,
                  name: str, live: str) -> None:
    """Order the eligible candidates (cheapest to test, then highest ranked) and fit them to the budget."""
    margin = float(budget["cheaper_margin"])
    # cheapest to test first, then highest ranked
    eligible.sort(key=lambda c: (c["est_usd"] if c["est_usd"] is not None else float("inf"), c["rank"]))
    max_n = int(budget["max_candidates_per_cycle"])
    cycle_cap, month_cap = float(budget["max_usd_per_cycle"]), float(budget["max_usd_per_month"])
    planned = 0.0
    for c in eligible:
        m = c["model"]
        out["candidates"].append(m.id)
        reason = None
        if c["est_usd"] is None:
            reason = "intake.price_unknown", "price unknown: the cost of evaluating it cannot be bounded"
        elif len(out["evaluate"]) >= max_n:
            reason = ("budget.candidates_per_cycle",
                      f"evaluation budget: {max_n} candidate(s) per cycle already planned")
        elif planned + c["est_usd"] > cycle_cap + 1e-12:
            reason = ("budget.usd_per_cycle", f"evaluation budget: ${c['est_usd']:.4f} more would pass "
                      f"${cycle_cap:g} per cycle (${planned:.4f} planned)")
        elif month_usd + planned + c["est_usd"] > month_cap + 1e-12:
            reason = ("budget.usd_per_month", f"evaluation budget: ${c['est_usd']:.4f} more would pass "
                      f"${month_cap:g} this month (${month_usd:.4f} spent, ${planned:.4f} planned)")
        if reason is not None:
            out["skipped"].append({"model_id": m.id, "rule": reason[0], "reason": reason[1]})
            out["decisions"].append(DecisionRecord(
                kind="skip", taken=False, use_case=name, model_id=m.id, rule=reason[0], summary=reason[1],
                numbers=c["numbers"], evidence=c["evidence"]).model_dump(mode="json"))
            continue
        planned += c["est_usd"]
        why = {"intake.ranked_above_live": f"ranked #{c['rank']}, above the live model",
               "intake.clearly_cheaper": f"cheaper per request by more than {margin:.0%} (ratio "
                                         f"{c['numbers']['cost_ratio']}); only an evaluation can say it is worse",
               "intake.own_fine_tune": "a fine-tune of the live model on this use case's traffic",
               "intake.inconclusive_retry": f"inconclusive before: again on {c['samples']} samples",
               "intake.changed_since_failure": c["evidence"][-1]}[c["rule"]]
        out["evaluate"].append({"model_id": m.id, "rank": c["rank"], "samples": c["samples"],
                                "est_usd": c["est_usd"], "rule": c["rule"], "why": why})
        out["decisions"].append(DecisionRecord(
            kind="evaluate", use_case=name, model_id=m.id, rule=c["rule"],
            summary=f"evaluate {m.id} against {live}: {why} (estimated ${c['est_usd']:.4f})",
            numbers=c["numbers"], evidence=c["evidence"], fingerprint=c["fingerprint"]).model_dump(mode="json"))
    out["budget"] = {"max_candidates_per_cycle": max_n, "max_usd_per_cycle": cycle_cap,
                     "max_usd_per_month": month_cap, "spent_this_month_usd": round(month_usd, 6),
                     "planned_usd": round(planned, 6), "cheaper_margin": margin}


@dataclass
class _Against:
    """What each candidate of one use case is weighed against: the live model and the plan's settings."""

    name: str
    live: str
    live_m: Any
    live_cpr: float | None
    live_rank: int
    live_ranked: bool
    uc_id: int
    tokens: tuple[Any, Any]
    margin: float
    configured: int
    golden: int
    tests: dict[str, TestResult]
    fps: Any


def _consider(s: Any, k: _Against, r: Any, m: Model, out: dict[str, Any]) -> dict[str, Any] | None:
    """One ranked model: an eligible evaluation (returned), or a recorded skip (None)."""
    from modelsteward.rollout.metrics import cost_per_request

    live, live_m, live_cpr, live_rank, margin = k.live, k.live_m, k.live_cpr, k.live_rank, k.margin
    cpr = cost_per_request(m, k.tokens)
    ratio = (cpr / live_cpr) if cpr is not None and live_cpr else None
    above = r.rank < live_rank
    cheaper = ratio is not None and ratio <= 1.0 - margin
    # a fine-tune of the live model's line on this use case's traffic: its ranking can only be a
    # prior (no eval, no feedback yet), and only an evaluation can tell whether it is better
    own = (m.kind == "fine_tuned" and m.use_case_id == k.uc_id and live_m is not None
           and m.parent_model_id in {live, live_m.parent_model_id} - {None})
    nums: dict[str, Any] = {"rank": r.rank, "live_rank": live_rank if k.live_ranked else None,
                            "score": r.score, "cost_per_request_usd": cpr,
                            "live_cost_per_request_usd": live_cpr,
                            "cost_ratio": None if ratio is None else round(ratio, 6)}
    ev = [f"rank #{r.rank}: {r.reason}"]
    if not (above or cheaper or own):
        why = (f"cannot beat {live}: ranked #{r.rank} (live #{live_rank}) and not cheaper by "
               f"{margin:.0%} per request" + (f" (cost ratio {ratio:.3g})" if ratio is not None else
                                              " (cost unknown)"))
        out["skipped"].append({"model_id": m.id, "rule": "intake.cannot_beat_live", "reason": why})
        if len(out["skipped"]) <= MAX_SKIP_RECORDS:  # the nearest ones; the rest are counted below
            out["decisions"].append(DecisionRecord(kind="skip", taken=False, use_case=k.name, model_id=m.id,
                                                   rule="intake.cannot_beat_live", summary=why, numbers=nums,
                                                   evidence=ev).model_dump(mode="json"))
        return None
    rule = "intake.ranked_above_live" if above else "intake.clearly_cheaper" if cheaper else "intake.own_fine_tune"
    samples = k.configured
    t: TestResult | None = k.tests.get(m.id)
    if t is not None and t.baseline_model_id == live:
        if t.verdict == "inconclusive" and t.sample_count < min(2 * k.configured, MAX_EVAL_SAMPLES):
            samples = min(MAX_EVAL_SAMPLES, max(k.configured, t.sample_count) * 2)
            rule = "intake.inconclusive_retry"
            ev.append(f"test #{t.id} inconclusive on {t.sample_count} samples")
        elif t.passed:
            return None  # evaluated and passed against the live model: the deploy rule decides
        else:
            change = _changed_since_test(s, m, t, live, k.fps) if t.verdict != "inconclusive" else None
            if change is None:
                why = (f"failed its evaluation against {live} (test #{t.id}, {t.verdict}); not tested again "
                       "until its price, version or the live model changes")
                out["skipped"].append({"model_id": m.id, "rule": "intake.failed_unchanged", "reason": why})
                out["decisions"].append(DecisionRecord(
                    kind="skip", taken=False, use_case=k.name, model_id=m.id, rule="intake.failed_unchanged",
                    summary=why, numbers=nums, evidence=[*ev, f"test #{t.id}"]).model_dump(mode="json"))
                return None
            rule = "intake.changed_since_failure"
            ev.append(change)
    n = samples + k.golden
    paid_cpr = sum(c for c, mm in ((cpr, m), (live_cpr, live_m))
                   if c is not None and mm is not None and mm.kind in _PAID)
    est = round(n * paid_cpr, 6) if not (m.kind in _PAID and cpr is None) else None
    return {"model": m, "rank": r.rank, "rule": rule, "samples": samples, "est_usd": est,
            "numbers": {**nums, "est_eval_usd": est, "eval_requests": n}, "evidence": ev,
            "fingerprint": fingerprint(m, live)}


def _count_hidden_skips(out: dict[str, Any], name: str, live: str, margin: float) -> None:
    """Past ``MAX_SKIP_RECORDS`` 'cannot beat live' skips, one counting record (the observation stays small)."""
    beyond = sum(1 for x in out["skipped"] if x["rule"] == "intake.cannot_beat_live") - MAX_SKIP_RECORDS
    if beyond > 0:
        out["decisions"].append(DecisionRecord(
            kind="skip", taken=False, use_case=name, rule="intake.cannot_beat_live",
            summary=f"{beyond} more compatible models ranked below {live} and not cheaper by {margin:.0%}",
            numbers={"count": beyond}).model_dump(mode="json"))
        out["skipped"] = out["skipped"][:MAX_SKIP_RECORDS]  # the observation stays small for a planner


def plan_intake(steward: Steward, name: str, entry: dict[str, Any], *, rank: Any = None) -> dict[str, Any]:
    """The intake plan for one use case (see the module docstring); JSON-able."""
    from modelsteward.catalog.rank import rank_use_case
    from modelsteward.rollout.metrics import cost_per_request, usage

    live = entry.get("current_model")
    out: dict[str, Any] = {"evaluate": [], "skipped": [], "decisions": [], "candidates": [], "budget": {},
                           "notes": []}
    if not live:
        out["notes"].append("no live model: nothing to compare candidates with")
        return out
    now = utcnow()
    with session_scope(steward.sessions) as s:
        uc = s.scalar(select(UseCase).where(UseCase.name == name))
        if uc is None:
            return out
        budget = _budget(uc.config)
        agent_cfg = dict((uc.config or {}).get("agent") or {})
        configured = int(((agent_cfg.get("evaluate") or {}).get("samples")) or DEFAULT_SAMPLES)
        golden = _golden_size(uc.golden_set_path)
        models = {m.id: m for m in s.scalars(select(Model))}
        ranking = (rank or rank_use_case)(steward, name, models=list(models.values()))
        tests: dict[str, TestResult] = {}
        month_usd = 0.0
        for row in s.scalars(select(TestResult).where(TestResult.use_case_id == uc.id).order_by(TestResult.id.desc())):
            tests.setdefault(row.candidate_model_id, row)
            if row.created_at >= _month_start(now):
                month_usd += eval_cost_usd(row.metrics or {})
        fps = _last_fingerprints(s, uc.id)
        use = usage(steward, name)
        tokens = (use["input_tokens"], use["output_tokens"])
        live_m = models.get(live)
        ranks = {r.model_id: r for r in ranking.ranked}
        against = _Against(
            name=name, live=live, live_m=live_m,
            live_cpr=cost_per_request(live_m, tokens) if live_m is not None else None,
            live_rank=ranks[live].rank if live in ranks else len(ranking.ranked) + 1, live_ranked=live in ranks,
            uc_id=uc.id, tokens=tokens, margin=float(budget["cheaper_margin"]), configured=configured,
            golden=golden, tests=tests, fps=fps)
        in_rollout = {r.get("candidate") for r in entry.get("rollouts") or []}
        eligible: list[dict[str, Any]] = []
        for r in ranking.ranked:
            m = models[r.model_id]
            if m.id == live or m.id in in_rollout or m.status in ("shadow", "canary", "current"):
                continue
            c = _consider(s, against, r, m, out)
            if c is not None:
                eligible.append(c)
        _count_hidden_skips(out, name, live, against.margin)
        _apply_budget(out, eligible, budget, month_usd, name, live)
        out["notes"] += list(ranking.notes)
    return out
