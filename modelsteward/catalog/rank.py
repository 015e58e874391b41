"""The ranker: a weighted score of quality, cost and latency per use case, and the Pareto front.

Components, each in [0, 1], higher is better:
- quality: this project's eval results (``test_results.metrics``) for the use case (not a
  judge-less pairwise score, which ties by default: ``quality_measured``), else mean logged
  feedback mapped from [-1, 1] to [0, 1] and shrunk toward the prior by ``FEEDBACK_PRIOR_VOTES``
  pseudo-votes (``feedback_quality``), else a prior (stated as such, low confidence): from
  parameter count for self-hosted models, from price tier for paid ones.
- cost: ``1 / (1 + blended / COST_REF)`` where ``blended`` is USD per million tokens at the use
  case's real input/output token mix from the logs (default mix ``DEFAULT_INPUT_SHARE`` when there
  are no logs, stated), ``COST_REF`` = $1/M.  Unknown price scores 0 (the worst) and lowers confidence.
  Self-hosted and fine-tuned models are priced by their hosting cost (``catalog/hosting.py``: cost
  per hour over throughput, a hardware profile's default when unset), never as free.
- latency: ``1 / (1 + p50_ms / ref)``, ``ref`` = the use case's latency SLO or 2,000 ms; p50 from
  evals, else logs, else a prior.
score = w_quality*quality + w_cost*cost + w_latency*latency (weights normalised to 1, negatives refused).
confidence = the weighted mean of each component's evidence confidence.
Quality uncertainty: ``quality_sd = QUALITY_SD_SCALE x (1 - quality_confidence)`` (a prior, confidence
0.2, is +-0.2; an evaluation on 80+ samples +-0.025), read as a normal belief about the true
quality.  :func:`benefit_chance` turns two such beliefs and the cost ratio into the chance that an
evaluation shows the benefit of ``evals/benefit.py`` (the candidate intake's exploration rule).
Pareto front: models with a known price that no other model beats on both blended cost (lower) and
quality (higher), ties on both kept.

:func:`score_matrix` does the arithmetic for many use cases at once (numpy); :func:`naive_rank` is
the same in pure Python, kept as the benchmark baseline and as a cross-check in tests.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, Field

from modelsteward.catalog.compat import Rejection, Requirements, check_model, infer_requirements
from modelsteward.catalog.hosting import effective_prices
from modelsteward.storage import read
from modelsteward.storage.registry import normalise_weights
from modelsteward.timeutil import parse_duration

if TYPE_CHECKING:
    from modelsteward.context import Steward

__all__ = [
    "RankedModel", "Ranking", "RankArrays", "score_matrix", "pareto_mask", "naive_rank", "rank_use_case",
    "DEFAULT_INPUT_SHARE", "COST_REF", "LATENCY_REF_MS", "feedback_quality", "quality_measured",
    "QUALITY_SD_SCALE", "quality_sd", "benefit_chance",
]

DEFAULT_INPUT_SHARE = 0.75  # 3 input tokens per output token when a use case has no logs yet
COST_REF = 1.0  # USD per million tokens at which the cost score is 0.5
LATENCY_REF_MS = 2000.0
CONF = {"eval": 0.9, "logs": 0.7, "prior": 0.2, "price": 1.0, "no_price": 0.1}
FEEDBACK_PRIOR_VOTES = 10  # feedback quality: the prior counts as this many votes (few votes stay near it)
NO_MEASUREMENT_METHODS = frozenset({"pairwise", "none", ""})  # quality methods that measured nothing
QUALITY_SD_SCALE = 0.25  # sd of the quality belief at zero confidence


def quality_sd(confidence: float) -> float:
    """The standard deviation of a quality belief held with ``confidence`` (0..1)."""
    return QUALITY_SD_SCALE * (1.0 - min(max(float(confidence), 0.0), 1.0))


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def benefit_chance(q_cand: float, sd_cand: float, q_live: float, sd_live: float, cost_ratio: float | None,
                   *, threshold: float = 0.95, cost_margin: float = 0.10, need: float = 0.0) -> tuple[float, str]:
    """The chance that an evaluation shows a benefit, and which one ("cheaper" or "better").

    Beliefs are independent normals ``N(q, sd^2)``.  A candidate cheaper per request by at least
    ``cost_margin`` needs only non-inferiority: ``P(q_c - threshold * q_l >= 0)``; any other needs
    to be better by ``need`` more (the quality it must gain to outscore the live model on the use
    case's weights; infinite when quality has no weight): ``P(q_c - q_l - need > 0)``.  This is the
    expectation of a Thompson draw from both beliefs, computed exactly, so the same registry always
    gives the same plan.
    """
    cheaper = cost_ratio is not None and cost_ratio <= 1.0 - cost_margin
    if not cheaper and not math.isfinite(need):
        return 0.0, "better"
    t = threshold if cheaper else 1.0
    var = sd_cand ** 2 + (t * sd_live) ** 2
    diff = q_cand - t * q_live - (0.0 if cheaper else max(need, 0.0))
    if var <= 1e-18:
        return (1.0 if diff >= 0 else 0.0), ("cheaper" if cheaper else "better")
    return _phi(diff / math.sqrt(var)), ("cheaper" if cheaper else "better")


class RankedModel(BaseModel):
    model_id: str
    rank: int
    score: float
    quality: float
    quality_source: str = Field(description="eval | logs | prior")
    quality_confidence: float = Field(0.0, description="confidence of the quality evidence (0..1)")
    quality_sd: float = Field(QUALITY_SD_SCALE, description="sd of the quality belief: QUALITY_SD_SCALE x (1 - "
                              "quality_confidence)")
    cost_per_m: float | None = Field(description="USD per million tokens blended at the use case's mix")
    cost_score: float
    latency_ms: float
    latency_source: str
    latency_score: float
    confidence: float
    pareto: bool
    reason: str


class Ranking(BaseModel):
    use_case: str
    weights: dict[str, float]
    warnings: list[str] = Field(default_factory=list)
    input_share: float
    mix_source: str
    ranked: list[RankedModel] = Field(default_factory=list)
    pareto_front: list[str] = Field(default_factory=list)
    rejected: list[Rejection] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


@dataclass
class RankArrays:
    """Per use case (rows) x model (columns); ``order[u]`` lists model indexes best first."""

    blended: np.ndarray
    cost_score: np.ndarray
    latency_score: np.ndarray
    score: np.ndarray
    confidence: np.ndarray
    order: np.ndarray
    pareto: np.ndarray


def pareto_mask(cost: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Rows of (cost, quality) -> True where no other column has cost <= and quality >= with one strict.

    NaN cost never lies on the front.  O(n log n) per row: sort by cost, then by quality descending.
    """
    cost = np.atleast_2d(np.asarray(cost, dtype=float))
    quality = np.atleast_2d(np.asarray(quality, dtype=float))
    u, n = cost.shape
    out = np.zeros((u, n), dtype=bool)
    if n == 0:
        return out
    known = ~np.isnan(cost)
    c = np.where(known, cost, np.inf)
    q = np.where(known, quality, -np.inf)
    order = np.lexsort((-q, c), axis=-1)  # by cost, then quality high first
    cs = np.take_along_axis(c, order, axis=1)
    qs = np.take_along_axis(q, order, axis=1)
    prefmax = np.maximum.accumulate(qs, axis=1)
    before = np.concatenate([np.full((u, 1), -np.inf), prefmax[:, :-1]], axis=1)  # max q of earlier columns
    # max q among strictly cheaper columns: prefix max at the start of each equal-cost group
    group_start = np.concatenate([np.ones((u, 1), dtype=bool), cs[:, 1:] != cs[:, :-1]], axis=1)
    idx = np.where(group_start, np.arange(n)[None, :], 0)
    idx = np.maximum.accumulate(idx, axis=1)
    strict_before = np.take_along_axis(before, idx, axis=1)
    dominated = (before > qs) | (strict_before >= qs)
    front_sorted = ~dominated & np.isfinite(cs)
    np.put_along_axis(out, order, front_sorted, axis=1)
    return out


def score_matrix(
    price_in: np.ndarray, price_out: np.ndarray, input_share: np.ndarray, quality: np.ndarray,
    quality_conf: np.ndarray, latency_ms: np.ndarray, latency_conf: np.ndarray, weights: np.ndarray,
    latency_ref_ms: np.ndarray | None = None,
) -> RankArrays:
    """Score ``U`` use cases x ``N`` models at once.

    Shapes: prices (N,) USD/M (NaN = unknown); ``input_share`` (U,); quality, latency and their
    confidences (U, N); ``weights`` (U, 3) as quality, cost, latency, already normalised.
    """
    pin = np.asarray(price_in, dtype=float)[None, :]
    pout = np.asarray(price_out, dtype=float)[None, :]
    share = np.asarray(input_share, dtype=float)[:, None]
    blended = pin * share + pout * (1.0 - share)
    known = ~np.isnan(blended)
    cost_score = np.where(known, 1.0 / (1.0 + np.where(known, blended, 0.0) / COST_REF), 0.0)
    ref = (np.full(share.shape, LATENCY_REF_MS) if latency_ref_ms is None
           else np.asarray(latency_ref_ms, dtype=float)[:, None])
    latency_score = 1.0 / (1.0 + np.asarray(latency_ms, dtype=float) / ref)
    w = np.asarray(weights, dtype=float)
    wq, wc, wl = w[:, 0:1], w[:, 1:2], w[:, 2:3]
    score = wq * quality + wc * cost_score + wl * latency_score
    cost_conf = np.where(known, CONF["price"], CONF["no_price"])
    confidence = wq * quality_conf + wc * cost_conf + wl * latency_conf
    order = np.argsort(-score, axis=1, kind="stable")
    pareto = pareto_mask(blended, quality)
    return RankArrays(blended, cost_score, latency_score, score, confidence, order, pareto)


def naive_rank(
    price_in: list[float], price_out: list[float], input_share: list[float], quality: list[list[float]],
    latency_ms: list[list[float]], weights: list[tuple[float, float, float]],
    latency_ref_ms: list[float] | None = None,
) -> list[tuple[list[int], list[bool]]]:
    """The same ranking in pure Python, one use case and one model at a time (benchmark baseline)."""
    out = []
    for u, share in enumerate(input_share):
        wq, wc, wl = weights[u]
        ref = latency_ref_ms[u] if latency_ref_ms else LATENCY_REF_MS
        scores, costs = [], []
        for i, (pi, po) in enumerate(zip(price_in, price_out)):
            blended = pi * share + po * (1 - share)
            c = 0.0 if math.isnan(blended) else 1.0 / (1.0 + blended / COST_REF)
            lat = 1.0 / (1.0 + latency_ms[u][i] / ref)
            scores.append(wq * quality[u][i] + wc * c + wl * lat)
            costs.append(blended)
        order = sorted(range(len(scores)), key=lambda i: -scores[i])
        by_cost = sorted((i for i in range(len(costs)) if not math.isnan(costs[i])),
                         key=lambda i: (costs[i], -quality[u][i]))
        front = [False] * len(costs)
        best_q, best_cheaper, prev_c = -math.inf, -math.inf, None
        for i in by_cost:
            if costs[i] != prev_c:
                best_cheaper, prev_c = best_q, costs[i]
            q = quality[u][i]
            front[i] = not (best_q > q or best_cheaper >= q)
            best_q = max(best_q, q)
        out.append((order, front))
    return out


# ------------------------------------------------------------------------------- evidence
def _num(d: Any, *paths: str) -> float | None:
    """The first numeric value found under dotted ``paths`` in a metrics dict."""
    for path in paths:
        cur = d
        for part in path.split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
        if isinstance(cur, (int, float)) and not isinstance(cur, bool) and math.isfinite(cur):
            return float(cur)
    return None


def eval_evidence(steward: Steward, use_case_id: int) -> dict[str, dict[str, Any]]:
    """Latest eval per model (as candidate, or as baseline) -> quality, p50 latency, sample count.

    Reads ``test_results.metrics`` tolerantly: quality under ``quality``, ``quality.candidate``,
    ``candidate_quality`` (baseline: ``quality.baseline``, ``baseline_quality``); latency under
    ``p50_ms``, ``latency_p50_ms``, ``latency.candidate_p50_ms`` (baseline likewise).
    """
    out: dict[str, dict[str, Any]] = {}
    for r in read.evaluations(steward, use_case_id=use_case_id, limit=None):
        m = r.metrics or {}
        measured = quality_measured(m)
        cand = {"quality": _num(m, "quality.candidate", "candidate_quality", "quality", "quality.mean")
                if measured else None,
                "latency": _num(m, "latency.candidate_p50_ms", "candidate_p50_ms", "p50_ms", "latency_p50_ms",
                                "performance.candidate.p50_ms"),
                "n": r.sample_count, "test_result_id": r.id}
        base = {"quality": _num(m, "quality.baseline", "baseline_quality") if measured else None,
                "latency": _num(m, "latency.baseline_p50_ms", "baseline_p50_ms",
                                "performance.baseline.p50_ms"),
                "n": r.sample_count, "test_result_id": r.id}
        for mid, ev in ((r.candidate_model_id, cand), (r.baseline_model_id, base)):
            if mid and mid not in out and (ev["quality"] is not None or ev["latency"] is not None):
                out[mid] = ev
    return out


def log_evidence(steward: Steward, use_case: str, since: str = "30d") -> tuple[dict[str, dict[str, Any]], float | None, int]:
    """Per model: requests, mean feedback, p50; and the use case's input token share and request count."""
    rows = steward.logs.stats(use_case=use_case, since=since)
    per: dict[str, dict[str, Any]] = {}
    tin = tout = 0.0
    total = 0
    for r in rows:
        mid = r.get("model_id")
        count = int(r.get("count") or 0)
        total += count
        tin += float(r.get("input_tokens") or 0)
        tout += float(r.get("output_tokens") or 0)
        if not mid:
            continue
        cur = per.setdefault(mid, {"count": 0, "fb_sum": 0.0, "fb_n": 0, "p50": [], "errors": 0})
        cur["count"] += count
        cur["errors"] += int(r.get("errors") or 0)
        if r.get("p50_ms") is not None:
            cur["p50"].append((float(r["p50_ms"]), count))
    if per:  # feedback counts are not in stats(): ask the view how many rows carry feedback
        cutoff = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - parse_duration(since, what="Window")
        for r in steward.logs.query(
            "SELECT model_id, count(feedback) AS n, avg(feedback) AS mean FROM logs "
            "WHERE use_case = ? AND ts >= ? AND feedback IS NOT NULL GROUP BY model_id", [use_case, cutoff],
        ):
            if r["model_id"] in per and r["n"]:
                per[r["model_id"]]["fb_n"] = int(r["n"])
                per[r["model_id"]]["fb_sum"] = float(r["mean"]) * int(r["n"])
    share = tin / (tin + tout) if tin + tout > 0 else None
    return per, share, total


def feedback_quality(fb_sum: float, n: int, prior: float) -> tuple[float, str]:
    """Quality from ``n`` feedback votes in [-1, 1] (mapped to [0, 1]), shrunk toward the prior: the
    mean of the votes and ``FEEDBACK_PRIOR_VOTES`` pseudo-votes at the prior, so one vote of +1 is not
    "quality 1.00"; the source names ``n`` and the shrinkage."""
    k = FEEDBACK_PRIOR_VOTES
    raw = (fb_sum / n + 1) / 2
    q = (n * raw + k * prior) / (n + k)
    return q, f"feedback, n={n}, mean {raw:.2f} shrunk toward prior {prior:.2f} ({k} pseudo-votes)"


def quality_measured(metrics: dict[str, Any]) -> bool:
    """Whether an evaluation's quality score measured anything.  The judge-less ``pairwise`` heuristic
    ties by default (0.50 when nothing tells the answers apart): a score from pairwise items only (or
    none) is no measurement and is never ranked or charted as quality.  Rows without a method (older
    shapes) count as measured."""
    q = (metrics or {}).get("quality")
    method = q.get("method") if isinstance(q, dict) else None
    if not isinstance(method, str):
        return True
    return not set(method.split("+")) <= NO_MEASUREMENT_METHODS


def prior_quality(model: Any, blended: float | None) -> float:
    """Prior quality: log-scale in parameter count (self-hosted), else in blended price (paid)."""
    params = (model.meta or {}).get("params_b")
    if params:
        return float(np.clip(0.3 + 0.15 * math.log10(max(float(params), 1e-3) * 10), 0.05, 0.95))
    if blended is not None and blended > 0:
        return float(np.clip(0.5 + 0.1 * math.log10(blended), 0.05, 0.95))
    return 0.5


def prior_latency(model: Any) -> float:
    params = (model.meta or {}).get("params_b")
    if model.kind in ("self_hosted", "fine_tuned") and params:
        return 300.0 + 100.0 * float(params)
    return 800.0


# ------------------------------------------------------------------------------- per use case
def _reason(rank: int, q: float, qsrc: str, blended: float, lat: float, lsrc: str, pareto: bool,
            contrib: dict[str, float]) -> str:
    lead = max(contrib, key=lambda k: contrib[k])
    cost = "price unknown" if math.isnan(blended) else f"${blended:.3g}/M blended"
    tail = "; on the cost/quality Pareto front" if pareto else ""
    return (f"#{rank}: {lead} leads; quality {q:.2f} ({qsrc}), {cost}, p50 {lat:.0f} ms ({lsrc}){tail}")


def _traffic_mix(steward: Steward, use_case: str, since: str) -> tuple[dict[str, Any], float, str]:
    """Per-model log evidence, the input-token share and where that share came from."""
    per_log, share_logged, requests = log_evidence(steward, use_case, since)
    if share_logged is not None:
        return per_log, share_logged, f"logs: {requests} requests over {since}, {share_logged:.0%} input tokens"
    return per_log, DEFAULT_INPUT_SHARE, (
        f"default mix {DEFAULT_INPUT_SHARE:.0%} input / {1 - DEFAULT_INPUT_SHARE:.0%} output tokens "
        "(no logged traffic for this use case)")


def _evidence(compatible: list[Any], evals: dict[str, Any], per_log: dict[str, Any], share: float,
              pin: np.ndarray, pout: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                          list[str], list[str]]:
    """Quality and latency of each model with their confidence and source: eval, then logs, then a prior."""
    n = len(compatible)
    quality, qconf, latency, lconf = (np.zeros((1, n)) for _ in range(4))
    qsrc: list[str] = []
    lsrc: list[str] = []
    for i, m in enumerate(compatible):
        ev, lg = evals.get(m.id, {}), per_log.get(m.id)
        blended = share * pin[i] + (1 - share) * pout[i]
        if ev.get("quality") is not None:
            quality[0, i] = float(np.clip(ev["quality"], 0, 1))
            qconf[0, i] = min(CONF["eval"], 0.5 + (ev.get("n") or 0) / 200)
            qsrc.append(f"eval #{ev['test_result_id']}, n={ev.get('n')}")
        elif lg and lg["fb_n"]:
            quality[0, i], source = feedback_quality(lg["fb_sum"], lg["fb_n"],
                                                     prior_quality(m, None if math.isnan(blended) else float(blended)))
            qconf[0, i] = min(CONF["logs"], lg["fb_n"] / 200)
            qsrc.append(source)
        else:
            quality[0, i] = prior_quality(m, None if math.isnan(blended) else float(blended))
            qconf[0, i] = CONF["prior"]
            qsrc.append("prior")
        if ev.get("latency") is not None:
            latency[0, i], lconf[0, i] = ev["latency"], CONF["eval"]
            lsrc.append("eval")
        elif lg and lg["p50"]:
            total = sum(c for _, c in lg["p50"]) or 1
            latency[0, i] = sum(p * c for p, c in lg["p50"]) / total
            lconf[0, i] = min(CONF["logs"] + 0.2, lg["count"] / 100)
            lsrc.append(f"logs, n={lg['count']}")
        else:
            latency[0, i], lconf[0, i] = prior_latency(m), CONF["prior"]
            lsrc.append("prior")
    return quality, qconf, latency, lconf, qsrc, lsrc


def rank_use_case(
    steward: Steward,
    use_case: str,
    *,
    weights: dict[str, float] | None = None,
    since: str = "30d",
    models: list[Any] | None = None,
    top: int | None = None,
) -> Ranking:
    """Rank the registry's models compatible with ``use_case`` (see the module docstring).

    ``weights`` overrides the use case's (normalised with a warning; negatives refused).
    """
    parse_duration(since, what="Window")  # a bad window fails before any work
    uc = steward.registry.get_use_case(use_case)
    warnings: list[str] = []
    w, warn = normalise_weights(dict(weights if weights is not None else (uc.weights or {})))
    if warn:
        warnings.append(warn)
    req = Requirements.from_use_case(uc.requirements).with_traffic(infer_requirements(steward, use_case), use_case)
    per_log, share, mix_source = _traffic_mix(steward, use_case, since)
    pool = models if models is not None else steward.registry.list_models()
    here = steward.registry.statuses_on(use_case, [m for m in pool if hasattr(m, "status")])
    compatible, rejected = [], []
    for m in pool:
        reasons = check_model(m, req, share, here.get(getattr(m, "id", None)))
        if reasons:
            rejected.append(Rejection(model_id=m.id, reason=reasons[0], reasons=reasons))
        else:
            compatible.append(m)
    ranking = Ranking(use_case=use_case, weights=w, warnings=warnings, input_share=round(share, 4),
                      mix_source=mix_source, rejected=rejected)
    if not compatible:
        ranking.notes.append("no compatible model; scan catalogs (`steward scan`) or relax the requirements")
        return ranking
    prices = [effective_prices(m) for m in compatible]  # self-hosted: hosting cost, never free
    pin = np.array([p[0] if p is not None else np.nan for p in prices])
    pout = np.array([p[1] if p is not None else np.nan for p in prices])
    quality, qconf, latency, lconf, qsrc, lsrc = _evidence(compatible, eval_evidence(steward, uc.id), per_log,
                                                           share, pin, pout)
    ref = np.array([req.latency_slo_ms or LATENCY_REF_MS])
    arr = score_matrix(pin, pout, np.array([share]), quality, qconf, latency, lconf,
                       np.array([[w["quality"], w["cost"], w["latency"]]]), ref)
    order = arr.order[0][: top] if top else arr.order[0]
    for rank, i in enumerate(order, start=1):
        m = compatible[int(i)]
        q, c, lat_s = float(quality[0, i]), float(arr.cost_score[0, i]), float(arr.latency_score[0, i])
        blended = float(arr.blended[0, i])
        contrib = {"quality": w["quality"] * q, "cost": w["cost"] * c, "latency": w["latency"] * lat_s}
        ranking.ranked.append(RankedModel(
            model_id=m.id, rank=rank, score=round(float(arr.score[0, i]), 6), quality=round(q, 4),
            quality_source=qsrc[i], quality_confidence=round(float(qconf[0, i]), 4),
            quality_sd=round(quality_sd(float(qconf[0, i])), 4), cost_per_m=None if math.isnan(blended) else round(blended, 6),
            cost_score=round(c, 4), latency_ms=round(float(latency[0, i]), 1), latency_source=lsrc[i],
            latency_score=round(lat_s, 4), confidence=round(float(arr.confidence[0, i]), 3),
            pareto=bool(arr.pareto[0, i]),
            reason=_reason(rank, q, qsrc[i], blended, float(latency[0, i]), lsrc[i], bool(arr.pareto[0, i]), contrib),
        ))
    ranking.pareto_front = [compatible[int(i)].id for i in arr.order[0] if arr.pareto[0, i]]
    if any(s == "prior" for s in qsrc):
        ranking.notes.append("quality 'prior' = no eval or feedback yet: a guess from size or price tier, "
                             "confidence 0.2; run `steward eval` to replace it")
    return ranking
