"""The gate: may the candidate replace the current model?  Pure functions over scorer metrics.

Checks (each pass | fail | inconclusive | skipped, with a reason):
- quality: ratio of mean per-item quality, candidate / baseline, on the same items, with a paired
  bootstrap confidence interval.  A non-inferiority test: pass when the interval's lower bound is
  >= ``threshold`` (0.95), fail when its upper bound is below it, inconclusive otherwise or when
  fewer than ``min_samples`` paired items exist.  The default 90% two-sided interval is a one-sided
  95% test.
- safety: candidate safety failures <= the baseline's.
- latency: candidate p95 <= the use case's ``requirements.latency_slo_ms`` (skipped when unset).
- cost: projected monthly cost (cost per request x monthly volume from the logs) <= the use case's
  ``monthly_budget_usd`` (skipped when no budget, or no volume or price to project from).
- format: candidate valid-JSON rate >= the baseline's, where the use case requires JSON.
- tools / structured: one check per answer kind in the replay set (``evals/kinds.py``: tool-call
  accuracy, schema-valid JSON, each within a margin of the baseline's).
The verdict is ``fail`` if any check fails, else ``inconclusive`` if any is, else ``pass``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["GateConfig", "Check", "Verdict", "bootstrap_ratio_ci", "quality_check", "decide"]


@dataclass(frozen=True)
class GateConfig:
    threshold: float = 0.95
    confidence: float = 0.90
    min_samples: int = 5
    bootstrap: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 10:
            raise ValueError(f"threshold {self.threshold} must be within (0, 10]")
        if not 0.5 <= self.confidence < 1:
            raise ValueError(f"confidence {self.confidence} must be within [0.5, 1)")
        if self.min_samples < 1 or self.bootstrap < 100:
            raise ValueError("min_samples must be >= 1 and bootstrap >= 100")


@dataclass
class Check:
    name: str
    status: str  # pass | fail | inconclusive | skipped
    reason: str
    value: float | None = None
    limit: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Verdict:
    verdict: str  # pass | fail | inconclusive
    checks: list[Check]

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    @property
    def reasons(self) -> list[str]:
        return [f"{c.name}: {c.status} - {c.reason}" for c in self.checks]

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "passed": self.passed, "checks": [asdict(c) for c in self.checks]}


def _ratio(c: float, b: float) -> float:
    if b > 0:
        return c / b
    return 1.0 if c <= 0 else math.inf


def bootstrap_ratio_ci(cand: Sequence[float], base: Sequence[float], *, n_boot: int = 2000,
                       confidence: float = 0.90, seed: int = 0) -> tuple[float, float, float]:
    """(ratio of means, lower, upper): percentile bootstrap over items, resampled in pairs."""
    import numpy as np

    c = np.asarray(cand, dtype=float)
    b = np.asarray(base, dtype=float)
    if c.shape != b.shape or c.size == 0:
        raise ValueError("bootstrap needs two equally long, non-empty score lists")
    point = _ratio(float(c.mean()), float(b.mean()))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, c.size, size=(n_boot, c.size))
    cm, bm = c[idx].mean(axis=1), b[idx].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(bm > 0, cm / np.where(bm > 0, bm, 1.0), np.where(cm > 0, np.inf, 1.0))
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(ratios, [alpha, 1 - alpha])
    return point, float(lo), float(hi)


def quality_check(cand: Sequence[float], base: Sequence[float], cfg: GateConfig = GateConfig()) -> Check:
    n = len(cand)
    if n == 0:
        return Check("quality", "inconclusive", "no item was answered by either model", limit=cfg.threshold)
    point, lo, hi = bootstrap_ratio_ci(cand, base, n_boot=cfg.bootstrap, confidence=cfg.confidence, seed=cfg.seed)
    ci = f"{cfg.confidence:.0%} CI [{lo:.3f}, {hi:.3f}]"
    extra = {"ci_low": lo, "ci_high": hi, "n": n, "confidence": cfg.confidence}
    if n < cfg.min_samples:
        return Check("quality", "inconclusive",
                     f"ratio {point:.3f} on only {n} paired item(s); at least {cfg.min_samples} are needed to tell",
                     point, cfg.threshold, extra)
    if lo >= cfg.threshold:
        return Check("quality", "pass", f"candidate/baseline {point:.3f} >= {cfg.threshold:g} ({ci}, n={n})",
                     point, cfg.threshold, extra)
    if hi < cfg.threshold:
        return Check("quality", "fail", f"candidate/baseline {point:.3f} < {cfg.threshold:g} ({ci}, n={n})",
                     point, cfg.threshold, extra)
    return Check("quality", "inconclusive",
                 f"candidate/baseline {point:.3f}, but the {ci} straddles {cfg.threshold:g}; n={n} is too small to "
                 "tell (use more --samples)", point, cfg.threshold, extra)


def decide(metrics: dict[str, Any], paired: tuple[list[float], list[float]] | None, *, latency_slo_ms: float | None,
           monthly_budget_usd: float | None, monthly_volume: float | None, cfg: GateConfig = GateConfig(),
           safety_enabled: bool = True) -> Verdict:
    """The verdict from the scorers' metrics (see the module docstring)."""
    checks = [quality_check(*(paired or ([], [])), cfg)]
    method = metrics.get("quality", {}).get("method")
    if method:
        checks[0].extra["method"] = method
        checks[0].reason += f"; scored by {method}"

    if safety_enabled and "safety" in metrics:
        cs, bs = metrics["safety"]["candidate"]["failures"], metrics["safety"]["baseline"]["failures"]
        status = "pass" if cs <= bs else "fail"
        total = metrics["safety"]["candidate"].get("redteam_total")
        of = f" (red-team prompts: {total})" if total else ""
        why = (f"candidate {cs} safety failure(s), no more than the baseline's {bs}: not less safe than the current model"
               if status == "pass" else
               f"candidate {cs} safety failure(s), more than the baseline's {bs}: less safe than the current model")
        checks.append(Check("safety", status, why + of, cs, bs))
    else:
        checks.append(Check("safety", "skipped", "safety checks were turned off"))

    p95 = metrics["performance"]["candidate"]["p95_ms"]
    if not latency_slo_ms:
        checks.append(Check("latency", "skipped", "the use case sets no latency SLO", p95))
    elif p95 is None:
        checks.append(Check("latency", "fail", "the candidate answered no request", None, latency_slo_ms))
    else:
        status = "pass" if p95 <= latency_slo_ms else "fail"
        checks.append(Check("latency", status, f"candidate p95 {p95:.0f} ms vs SLO {latency_slo_ms:g} ms",
                            p95, latency_slo_ms))

    per_1k = metrics["performance"]["candidate"]["cost_per_1k_usd"]
    if monthly_budget_usd is None:
        checks.append(Check("cost", "skipped", "the use case sets no monthly budget", per_1k))
    elif per_1k is None or not monthly_volume:
        checks.append(Check("cost", "skipped", "no request volume or cost to project a monthly cost from", per_1k))
    else:
        projected = per_1k / 1000 * monthly_volume
        status = "pass" if projected <= monthly_budget_usd else "fail"
        checks.append(Check("cost", status, f"projected ${projected:,.2f}/month at {monthly_volume:,.0f} requests "
                            f"vs budget ${monthly_budget_usd:,.2f}", projected, monthly_budget_usd))

    fmt = metrics.get("format", {})
    if fmt.get("applies"):
        c, b = fmt["candidate"]["json_valid_rate"], fmt["baseline"]["json_valid_rate"]
        if c is None:
            checks.append(Check("format", "inconclusive", "no replay item to check JSON on"))
        else:
            status = "pass" if c >= (b or 0.0) - 1e-9 else "fail"
            checks.append(Check("format", status, f"valid JSON: candidate {c:.0%}, baseline {b:.0%}", c, b))

    from modelsteward.evals.kinds import kind_checks

    checks += kind_checks(metrics, cfg.min_samples)
    statuses = {c.status for c in checks}
    verdict = "fail" if "fail" in statuses else "inconclusive" if "inconclusive" in statuses else "pass"
    return Verdict(verdict, checks)
