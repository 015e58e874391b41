"""Hard bounds and per-use-case thresholds for policies, rollout analysis and guardrails.

Each threshold has a default and a hard bound written here as constants.  A use case's
``config["policy"]``, ``config["rollout"]``, ``config["guardrails"]`` and ``config["evaluation"]`` may *tighten* a threshold
but never loosen it past its bound: :func:`clamp_section` clamps every value into range and says
which ones it clamped.  "Tighter" is lower for a ceiling (``"max"``) and higher for a floor
(``"min"``).

A base module (it imports only ``errors``): the policies, the rollout analysis, the guardrails and
the evaluation all read these thresholds, so they live below all of them (layers: README,
Architecture).  ``modelsteward.policies.bounds`` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from modelsteward.errors import InvalidInput

__all__ = [
    "Bound",
    "POLICY_BOUNDS",
    "ROLLOUT_BOUNDS",
    "GUARDRAIL_BOUNDS",
    "EVALUATION_BOUNDS",
    "SECTIONS",
    "DEFAULT_STEPS",
    "MAX_STEP_POINTS",
    "clamp_section",
    "section_of",
    "validate_steps",
    "latency_slo_of",
]


@dataclass(frozen=True)
class Bound:
    """``default`` used when unset; ``hard`` is the loosest value configuration may reach.

    ``kind="max"``: a ceiling (config may lower it, never raise it above ``hard``);
    ``kind="min"``: a floor (config may raise it, never lower it below ``hard``).
    """

    default: float
    hard: float
    kind: Literal["max", "min"]
    doc: str

    def clamp(self, value: float) -> float:
        return min(value, self.hard) if self.kind == "max" else max(value, self.hard)


# The largest traffic increase of one canary step (the final promotion to 100% is governed by
# "every step passed" plus a human approval instead).
MAX_STEP_POINTS = 25.0
DEFAULT_STEPS: tuple[float, ...] = (5.0, 25.0, 50.0, 100.0)

POLICY_BOUNDS: dict[str, Bound] = {
    "eval_max_age_days": Bound(14, 30, "max", "a passing evaluation counts for canary/full traffic this many days"),
    "max_step_points": Bound(MAX_STEP_POINTS, MAX_STEP_POINTS, "max", "largest traffic raise of one canary step"),
    "cost_increase_approval": Bound(0.10, 0.10, "max", "cost-per-request rise (fraction) above which a human approves"),
    "budget_fraction": Bound(1.0, 1.0, "max", "projected monthly cost may use this fraction of the budget"),
    "rollback_cooldown_minutes": Bound(60, 30, "min", "no deploy or advance this long after a rollback"),
    "max_deploys_per_hour": Bound(4, 10, "max", "deploy actions per use case per hour"),
    "unevaluated_shadow_percent": Bound(
        10, 25, "max", "percent of requests mirrored to a shadow model with no passing evaluation (after an approval)"),
    "benefit_cost_margin": Bound(0.10, 0.05, "min", "a 'cheaper' candidate costs at least this fraction less per "
                                 "request than the current model (at non-inferior quality)"),
}

ROLLOUT_BOUNDS: dict[str, Bound] = {
    "min_requests": Bound(50, 10, "min", "candidate requests an analysis window needs"),
    "min_duration_s": Bound(300, 30, "min", "seconds an analysis window lasts at least"),
    "max_error_rate_increase": Bound(0.05, 0.10, "max", "candidate error rate above stable's, absolute"),
    "max_latency_increase": Bound(0.5, 1.0, "max", "candidate p95 latency above stable's, relative"),
    "latency_noise_ms": Bound(50, 250, "max", "a p95 rise smaller than this many ms is noise, never a failure"),
    "max_cost_increase": Bound(0.25, 0.5, "max", "candidate cost per request above stable's, relative"),
    "max_feedback_drop": Bound(0.2, 0.5, "max", "candidate mean feedback below stable's, absolute (-1..1)"),
    "min_feedback_count": Bound(5, 3, "min", "feedback values needed before feedback is judged"),
    "feedback_alpha": Bound(0.05, 0.01, "min", "a feedback drop fails a step only at this significance (one-sided Welch t-test)"),
    "min_similarity": Bound(0.2, 0.1, "min", "mean lexical similarity of shadow outputs to stable's"),
    "max_safety_flag_increase": Bound(0.01, 0.05, "max", "candidate safety-flag rate above stable's"),
    "inconclusive_timeout_s": Bound(86400, 7 * 86400, "max", "an inconclusive window older than this pauses"),
    "shadow_percent": Bound(100, 100, "max", "percent of requests mirrored to a shadow model"),
}

GUARDRAIL_BOUNDS: dict[str, Bound] = {
    "window_minutes": Bound(15, 60, "max", "the recent window each check reads"),
    "baseline_hours": Bound(24, 24 * 7, "max", "the baseline window before it"),
    "min_requests": Bound(10, 50, "max", "requests a model needs in the window to be judged"),
    "error_rate_abs": Bound(0.05, 0.20, "max", "error rate above baseline (absolute) that counts as a spike"),
    "error_rate_disable": Bound(0.5, 0.9, "max", "error rate of a rollout candidate that disables it"),
    "latency_slo_factor_rollback": Bound(2.0, 4.0, "max", "candidate p95 over SLO x this -> roll back"),
    "burn_rate_warn": Bound(1.0, 1.5, "max", "projected monthly cost / budget that warns"),
    "burn_rate_pause": Bound(1.5, 3.0, "max", "projected monthly cost / budget that pauses a rollout"),
    "feedback_drop": Bound(0.3, 0.6, "max", "mean feedback drop vs baseline that counts"),
    "min_feedback_count": Bound(5, 3, "min", "feedback values needed to judge feedback"),
    "feedback_alpha": Bound(0.05, 0.01, "min", "a feedback drop counts only at this significance (one-sided Welch t-test)"),
    "safety_flag_rate": Bound(0.01, 0.05, "max", "share of flagged responses that counts"),
    "budget_min_span_hours": Bound(1.0, 0.5, "min", "spend is projected to a month only once it covers this many "
                                   "hours (a shorter burst is an uncertain projection, not a breach)"),
    "slo_error_rate": Bound(0.10, 0.50, "max", "absolute error-rate ceiling of a live model in the window"),
    "slo_cost_per_request_usd": Bound(0.05, 1.0, "max", "absolute ceiling of a live model's mean cost per request"),
}

# The agent's evaluation budget per use case (candidate intake): evaluating costs paid calls and time.
EVALUATION_BOUNDS: dict[str, Bound] = {
    "max_candidates_per_cycle": Bound(2, 5, "max", "candidates the agent evaluates per use case in one cycle"),
    "max_usd_per_cycle": Bound(1.0, 10.0, "max", "estimated USD of paid model calls for evaluations per cycle"),
    "max_usd_per_month": Bound(10.0, 100.0, "max", "estimated USD of paid model calls for evaluations per month"),
    "cheaper_margin": Bound(0.10, 0.05, "min", "a candidate this much cheaper per request than the live model "
                            "is a candidate even when ranked below it"),
    "max_minutes_per_cycle": Bound(10.0, 15.0, "max", "wall-clock minutes the evaluations of one agent cycle may "
                                   "take (estimated from each model's measured tokens/s; an overrun is stopped)"),
    "min_benefit_chance": Bound(0.05, 0.01, "min", "a candidate whose chance of a benefit (from the ranker's "
                                "uncertainty) is below this is a known loser: not evaluated"),
    "peak_headroom": Bound(1.0, 1.0, "min", "a self-hosted candidate must carry the observed peak request rate "
                           "times this before it is evaluated for primary traffic"),
}

SECTIONS: dict[str, dict[str, Bound]] = {
    "policy": POLICY_BOUNDS,
    "rollout": ROLLOUT_BOUNDS,
    "guardrails": GUARDRAIL_BOUNDS,
    "evaluation": EVALUATION_BOUNDS,
}


def clamp_section(section: str, raw: dict[str, Any] | None, *, strict: bool = False) -> tuple[dict[str, Any], list[str]]:
    """Defaults overlaid with ``raw``, each clamped to its hard bound.  Returns (values, notes).

    ``strict=True`` (used when a person sets policy) refuses unknown keys and non-numbers; the
    lenient mode (reading stored config) ignores them and notes it.
    """
    bounds = SECTIONS[section]
    out: dict[str, Any] = {k: b.default for k, b in bounds.items()}
    notes: list[str] = []
    for key, val in (raw or {}).items():
        if section == "rollout" and key == "steps":
            out["steps"] = val
            continue
        if key not in bounds:
            msg = f"unknown {section} setting {key!r} (known: {', '.join(sorted(bounds))})"
            if strict:
                raise InvalidInput(msg.capitalize() + ".")
            notes.append(msg + "; ignored")
            continue
        try:
            num = float(val)
        except (TypeError, ValueError):
            if strict:
                raise InvalidInput(f"{section}.{key} must be a number, got {val!r}.") from None
            notes.append(f"{section}.{key}={val!r} is not a number; default used")
            continue
        if num != num or num < 0:
            if strict:
                raise InvalidInput(f"{section}.{key} must be a non-negative number, got {val!r}.")
            notes.append(f"{section}.{key}={val!r} invalid; default used")
            continue
        b = bounds[key]
        clamped = b.clamp(num)
        if clamped != num and strict:  # a person asked for it: refuse, nothing is silently changed
            raise InvalidInput(f"{section}.{key}={num:g} is looser than its hard bound; the loosest allowed "
                               f"is {clamped:g} (modelsteward/bounds.py).")
        if clamped != num:
            notes.append(f"{section}.{key}={num:g} is looser than the hard bound; clamped to {clamped:g}")
        out[key] = clamped
    return out, notes


def section_of(config: dict[str, Any] | None, section: str) -> dict[str, Any]:
    """The clamped values of one section of a use case's ``config``."""
    return clamp_section(section, (config or {}).get(section) or {})[0]


def validate_steps(steps: Any, max_step_points: float = MAX_STEP_POINTS) -> list[float]:
    """Canary steps: strictly increasing percents in (0, 100], ending at 100; each step before the
    final promotion raises traffic by at most ``max_step_points`` (the first step counts from 0)."""
    if steps is None:
        steps = list(DEFAULT_STEPS)
    if not isinstance(steps, (list, tuple)) or not steps:
        raise InvalidInput(f"Canary steps must be a non-empty list of percents ending at 100, got {steps!r}.")
    try:
        vals = [float(s) for s in steps]
    except (TypeError, ValueError):
        raise InvalidInput(f"Canary steps must be numbers, got {steps!r}.") from None
    if vals[-1] != 100.0:
        vals.append(100.0)
    prev = 0.0
    for i, v in enumerate(vals):
        if not 0 < v <= 100:
            raise InvalidInput(f"Canary step {v:g}% is outside (0, 100].")
        if v <= prev:
            raise InvalidInput(f"Canary steps must increase: {v:g}% follows {prev:g}%.")
        final = i == len(vals) - 1
        if not final and v - prev > max_step_points:
            raise InvalidInput(
                f"Canary step {prev:g}% -> {v:g}% raises traffic by {v - prev:g} points; at most "
                f"{max_step_points:g} are allowed per step."
            )
        prev = v
    if len(vals) < 2:
        raise InvalidInput("A canary needs at least one step below 100% before promotion; use strategy full instead.")
    return vals


def latency_slo_of(requirements: dict[str, Any] | None) -> float | None:
    """The use case's ``latency_slo_ms`` (None when unset); zero, negative or not a number -> InvalidInput."""
    raw = (requirements or {}).get("latency_slo_ms")
    if raw is None:
        return None
    try:
        val = float(raw)
    except (TypeError, ValueError):
        val = float("nan")
    if not val > 0:
        raise InvalidInput(f"latency_slo_ms must be a positive number of milliseconds, got {raw!r}; set it with "
                           "`steward usecase update NAME --latency-slo-ms N` (N > 0).", field="latency_slo_ms")
    return val
