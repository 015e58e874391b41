"""The one rule that says whether a candidate is worth replacing the live model (issue 14).

Used by the evaluation (``metrics["benefit"]`` of every test result), the planners (playbook and the
LLM planner's guard) and the rollout's final promotion.  Pure functions, no I/O.

A candidate brings a benefit when it is

- ``cheaper``: non-inferior on quality (the lower confidence bound of the candidate/baseline
  quality ratio >= the threshold, 0.95) **and** its expected cost per request is lower than the
  baseline's by at least ``cost_margin`` (default 10 %, ``policy.benefit_cost_margin``), or
- ``better``: the lower confidence bound of the quality ratio is above 1, on a signal that is not
  the incumbent's own output (a judge, a golden set, or references from highly rated logs written
  by at least two other models), or online: the canary's mean
  feedback is above the stable model's, significantly (one-sided Welch t-test, ``feedback_alpha``).

Otherwise ``none``.  A safety failure is never a benefit, nor is a candidate that fails a stratum of
the application's traffic by answer kind (``failed_strata``: the gate's ``tools`` / ``structured``
checks, ``evals/kinds.py``): cheaper text is no gain when the function calls or the JSON break; and
neither is a quality check that did not pass (issue 26: ``inconclusive`` when no signal that could fail tells the models apart; the judge-less
pairwise heuristic never shows ``better``, and shows ``cheaper`` only with behaviour similarity).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["Benefit", "judge_benefit", "online_benefit", "benefit_of", "INDEPENDENT_METHODS", "independent_signal"]

Verdict = Literal["cheaper", "better", "none"]

# Quality methods that may show a candidate *better*: they do not lean on the incumbent's own output
# and measure quality, not just "an answer".  "reference_logs" counts only with references written by
# several models (``reference_models`` >= 2).  The judge-less ``pairwise`` heuristic can show a
# candidate no worse (non-inferior, with behaviour similarity: ``evals/gate.py``), never better; nor
# can ``degenerate`` (the live model's non-answers: a heuristic that may misread a terse answer).
INDEPENDENT_METHODS = frozenset({"judge", "golden", "error", "reference_logs"})


@dataclass(frozen=True)
class Benefit:
    verdict: Verdict
    rule: str
    quality_ratio: float | None
    quality_ratio_lcb: float | None
    cost_ratio: float | None
    method: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def worth_it(self) -> bool:
        return self.verdict != "none"


def independent_signal(method: str, reference_models: int = 0) -> bool:
    """True when every part of a quality method is independent of the incumbent's own output."""
    parts = [p for p in (method or "").split("+") if p]
    if not parts or any(p not in INDEPENDENT_METHODS for p in parts):
        return False
    return "reference_logs" not in parts or reference_models >= 2


def judge_benefit(
    *, quality_ratio: float | None, quality_ratio_lcb: float | None, method: str,
    candidate_cost: float | None, baseline_cost: float | None, threshold: float = 0.95,
    cost_margin: float = 0.10, safe: bool = True, reference_models: int = 0, failed_strata: Sequence[str] = (),
    quality_status: str = "",
) -> Benefit:
    """The offline verdict from an evaluation's numbers (see the module docstring).  ``quality_status``:
    the gate's quality check; anything but ``pass`` (when given) is no benefit."""
    cost_ratio = None
    if candidate_cost is not None and baseline_cost is not None and baseline_cost > 0:
        cost_ratio = candidate_cost / baseline_cost

    def mk(verdict: Verdict, rule: str) -> Benefit:
        return Benefit(verdict, rule, quality_ratio, quality_ratio_lcb, cost_ratio, method)

    if not safe:
        return mk("none", "no benefit: the candidate is not as safe as the current model")
    if failed_strata:
        return mk("none", f"no benefit: the candidate fails the {', '.join(failed_strata)} stratum of the traffic")
    if quality_ratio_lcb is None:
        return mk("none", "no benefit: quality could not be measured")
    if quality_status and quality_status != "pass":
        return mk("none", f"no benefit: the quality check is {quality_status} (non-inferiority not shown on a "
                          "signal that could fail)")
    lcb = f"lower bound of quality ratio {quality_ratio_lcb:.3f}"
    if quality_ratio_lcb > 1.0 and independent_signal(method, reference_models):
        return mk("better", f"better: {lcb} > 1 ({method})")
    non_inferior = quality_ratio_lcb >= threshold
    if non_inferior and cost_ratio is not None and cost_ratio <= 1.0 - cost_margin:
        return mk("cheaper", f"cheaper at equal quality: {lcb} >= {threshold:g} and expected cost per request "
                       f"{cost_ratio:.0%} of the current model's (at least {cost_margin:.0%} lower)")
    why = [f"{lcb} {'>=' if non_inferior else '<'} {threshold:g}"]
    if quality_ratio_lcb > 1.0:
        why.append(f"a quality gain scored by {method} is not independent of the current model's own output")
    why.append("cost per request unknown" if cost_ratio is None else
               f"cost per request {cost_ratio:.0%} of the current model's (needs <= {1 - cost_margin:.0%})")
    return mk("none", "no benefit: " + "; ".join(why))


def online_benefit(*, cand_mean: float | None, stable_mean: float | None, cand_n: int, stable_n: int,
                   p_value: float | None, alpha: float, min_count: int) -> Benefit:
    """The canary's verdict: ``better`` on a significant feedback gain, else ``none``."""
    method = "canary_feedback"
    if cand_mean is None or stable_mean is None or cand_n < min_count or stable_n < min_count:
        return Benefit("none", f"no gain shown online: fewer than {min_count} feedback values on one side "
                       f"({cand_n} / {stable_n})", None, None, None, method)
    ratio = cand_mean / stable_mean if stable_mean > 0 else None
    desc = f"mean feedback {cand_mean:.2f} vs {stable_mean:.2f} over {cand_n} / {stable_n} values"
    if cand_mean > stable_mean and p_value is not None and p_value < alpha:
        return Benefit("better", f"better online: {desc}, gain significant (p={p_value:.3f} < {alpha:g})",
                       ratio, None, None, method)
    p = "" if p_value is None else f", p={p_value:.3f}"
    return Benefit("none", f"no gain shown online: {desc}{p} (needs a gain at p < {alpha:g})", ratio, None, None, method)


def benefit_of(metrics: dict[str, Any] | None) -> Benefit | None:
    """The offline benefit recorded in a test result's metrics (None for results from before it)."""
    b = (metrics or {}).get("benefit")
    if not isinstance(b, dict) or b.get("verdict") not in ("cheaper", "better", "none"):
        return None
    return Benefit(b["verdict"], str(b.get("rule") or ""), b.get("quality_ratio"), b.get("quality_ratio_lcb"),
                   b.get("cost_ratio"), str(b.get("method") or ""))
