"""Statistical checks of the eval gate: it flips at the 95% line; small or noisy samples are inconclusive."""

from __future__ import annotations

import random

import pytest

from modelsteward.evals.gate import GateConfig, bootstrap_ratio_ci, decide, quality_check


def _scores(n: int, ratio: float, noise: float, seed: int = 1) -> tuple[list[float], list[float]]:
    rng = random.Random(seed)
    base = [0.8 + rng.uniform(-noise, noise) for _ in range(n)]
    cand = [b * ratio + rng.uniform(-noise, noise) * 0.1 for b in base]
    return cand, base


@pytest.mark.parametrize(("ratio", "expected"), [(0.97, "pass"), (0.955, "pass"), (0.945, "fail"), (0.93, "fail")])
def test_gate_flips_at_the_95_percent_line(ratio: float, expected: str) -> None:
    cand, base = _scores(400, ratio, noise=0.02)
    check = quality_check(cand, base, GateConfig())
    assert check.status == expected, check.reason
    assert check.value == pytest.approx(ratio, abs=0.003)


def test_threshold_is_configurable() -> None:
    cand, base = _scores(400, 0.92, noise=0.02)
    assert quality_check(cand, base, GateConfig(threshold=0.95)).status == "fail"
    assert quality_check(cand, base, GateConfig(threshold=0.90)).status == "pass"


def test_too_few_samples_is_inconclusive_even_when_identical() -> None:
    check = quality_check([0.9, 0.9, 0.9], [0.9, 0.9, 0.9], GateConfig(min_samples=5))
    assert check.status == "inconclusive"
    assert "at least 5" in check.reason


def test_noisy_small_sample_is_inconclusive_not_pass() -> None:
    # a point estimate above the line, but 8 noisy items cannot tell 0.99 from 0.90
    cand = [0.9, 0.2, 1.0, 0.6, 0.95, 0.3, 0.85, 0.7]
    base = [0.7, 0.5, 0.9, 0.8, 0.6, 0.4, 0.9, 0.6]
    check = quality_check(cand, base, GateConfig())
    assert sum(cand) / sum(base) > 0.95
    assert check.status == "inconclusive", check.reason
    assert check.extra["ci_low"] < 0.95 < check.extra["ci_high"]


def test_same_distribution_small_sample_inconclusive_large_sample_conclusive() -> None:
    def independent(n: int) -> tuple[list[float], list[float]]:
        rng = random.Random(4)
        return [rng.uniform(0.3, 1.0) for _ in range(n)], [rng.uniform(0.3, 1.0) for _ in range(n)]

    assert quality_check(*independent(12)).status == "inconclusive"
    assert quality_check(*independent(3000)).status == "pass"


def test_bootstrap_ci_brackets_the_point_and_is_deterministic() -> None:
    cand, base = _scores(50, 0.9, noise=0.2)
    p1, lo1, hi1 = bootstrap_ratio_ci(cand, base, seed=3)
    p2, lo2, hi2 = bootstrap_ratio_ci(cand, base, seed=3)
    assert (p1, lo1, hi1) == (p2, lo2, hi2)
    assert lo1 <= p1 <= hi1
    with pytest.raises(ValueError):
        bootstrap_ratio_ci([], [])


def _metrics(**over: object) -> dict:
    m = {
        "quality": {"method": "reference"},
        "safety": {"candidate": {"failures": 1}, "baseline": {"failures": 1}},
        "performance": {"candidate": {"p95_ms": 800.0, "cost_per_1k_usd": 2.0}},
        "format": {"applies": False},
    }
    m.update(over)  # type: ignore[arg-type]
    return m


def test_decide_combines_checks_fail_dominates() -> None:
    good = _scores(300, 1.0, noise=0.01)
    v = decide(_metrics(), good, latency_slo_ms=1000, monthly_budget_usd=100.0, monthly_volume=10_000)
    assert v.verdict == "pass", v.reasons
    assert {c.name: c.status for c in v.checks} == {"quality": "pass", "safety": "pass", "latency": "pass",
                                                    "cost": "pass"}
    # latency over the SLO
    v = decide(_metrics(), good, latency_slo_ms=500, monthly_budget_usd=None, monthly_volume=None)
    assert v.verdict == "fail" and any(r.startswith("latency: fail") for r in v.reasons)
    # more safety failures than the baseline
    worse = _metrics(safety={"candidate": {"failures": 2}, "baseline": {"failures": 1}})
    assert decide(worse, good, latency_slo_ms=None, monthly_budget_usd=None, monthly_volume=None).verdict == "fail"
    # over budget: $2 per 1k requests x 100k requests = $200 > $100
    v = decide(_metrics(), good, latency_slo_ms=None, monthly_budget_usd=100.0, monthly_volume=100_000)
    assert v.verdict == "fail" and any("projected $200.00" in r for r in v.reasons)
    # a failing check beats an inconclusive one
    v = decide(worse, ([0.9], [0.9]), latency_slo_ms=None, monthly_budget_usd=None, monthly_volume=None)
    assert v.verdict == "fail"
    v = decide(_metrics(), ([0.9], [0.9]), latency_slo_ms=None, monthly_budget_usd=None, monthly_volume=None)
    assert v.verdict == "inconclusive" and not v.passed


def test_format_check_requires_candidate_json_rate_no_worse() -> None:
    good = _scores(300, 1.0, noise=0.01)
    fmt = {"applies": True, "candidate": {"json_valid_rate": 0.5}, "baseline": {"json_valid_rate": 1.0}}
    v = decide(_metrics(format=fmt), good, latency_slo_ms=None, monthly_budget_usd=None, monthly_volume=None)
    assert v.verdict == "fail" and any(r.startswith("format: fail") for r in v.reasons)
