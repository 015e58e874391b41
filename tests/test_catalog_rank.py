"""Compatibility filter and ranker: properties (hypothesis), evidence from evals and logs, bad input."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelsteward.catalog.compat import Requirements, check_compatibility
from modelsteward.catalog.rank import (
    FEEDBACK_PRIOR_VOTES,
    DEFAULT_INPUT_SHARE,
    naive_rank,
    pareto_mask,
    prior_quality,
    rank_use_case,
    score_matrix,
)
from modelsteward.errors import InvalidInput
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import TestResult

finite = st.floats(min_value=0, max_value=50, allow_nan=False)
unit = st.floats(min_value=0, max_value=1, allow_nan=False)


def _brute_front(cost: list[float], quality: list[float]) -> list[bool]:
    out = []
    for i, (ci, qi) in enumerate(zip(cost, quality)):
        if math.isnan(ci):
            out.append(False)
            continue
        dominated = any(
            j != i and not math.isnan(cj) and cj <= ci and qj >= qi and (cj < ci or qj > qi)
            for j, (cj, qj) in enumerate(zip(cost, quality))
        )
        out.append(not dominated)
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.one_of(finite, st.just(float("nan")), st.sampled_from([0.0, 1.0, 2.0])),
                          st.one_of(unit, st.sampled_from([0.5, 0.7]))), min_size=1, max_size=40))
def test_pareto_front_equals_brute_force_and_excludes_dominated(points: list[tuple[float, float]]) -> None:
    cost = [p[0] for p in points]
    quality = [p[1] for p in points]
    front = pareto_mask(np.array([cost]), np.array([quality]))[0].tolist()
    assert front == _brute_front(cost, quality)
    for i in range(len(points)):
        for j in range(len(points)):
            if (not math.isnan(cost[j]) and not math.isnan(cost[i]) and cost[j] <= cost[i]
                    and quality[j] >= quality[i] and (cost[j] < cost[i] or quality[j] > quality[i])):
                assert not front[i], "a dominated model is on the front"
    known = [i for i in range(len(points)) if not math.isnan(cost[i])]
    if known:
        assert any(front[i] for i in known)


@settings(max_examples=150, deadline=None)
@given(qa=unit, qb=unit, ca=finite, cb=finite, la=st.floats(10, 5000), lb=st.floats(10, 5000),
       w=st.tuples(unit, unit, unit).filter(lambda t: sum(t) > 0.05), shift=st.floats(0.01, 1.0))
def test_moving_weight_to_cost_favours_the_cheaper_model(qa: float, qb: float, ca: float, cb: float, la: float,
                                                          lb: float, w: tuple[float, float, float],
                                                          shift: float) -> None:
    """A cheaper model that is no better in quality (the trade-off): moving weight from quality to
    cost can only grow its lead; it never drops below a model it was ranked above."""
    ca, cb = sorted([ca, cb])
    qa, qb = sorted([qa, qb])  # a: cheaper, not better
    wq, wc, wl = (x / sum(w) for x in w)
    moved = shift * wq
    weights = np.array([[wq, wc, wl], [wq - moved, wc + moved, wl]])
    arr = score_matrix(np.array([ca, cb]), np.array([ca, cb]), np.array([0.75, 0.75]),
                       np.array([[qa, qb]] * 2), np.ones((2, 2)), np.array([[la, lb]] * 2), np.ones((2, 2)), weights)
    lead_before = arr.score[0, 0] - arr.score[0, 1]
    lead_after = arr.score[1, 0] - arr.score[1, 1]
    assert lead_after >= lead_before - 1e-12
    if lead_before > 1e-9:
        assert arr.order[1].tolist() == [0, 1]
    # and the other way: moving weight from cost to quality favours the better, dearer model
    back = np.array([[wq, wc, wl], [wq + shift * wc, wc - shift * wc, wl]])
    arr2 = score_matrix(np.array([ca, cb]), np.array([ca, cb]), np.array([0.75, 0.75]),
                        np.array([[qa, qb]] * 2), np.ones((2, 2)), np.array([[la, lb]] * 2), np.ones((2, 2)), back)
    assert arr2.score[1, 1] - arr2.score[1, 0] >= arr2.score[0, 1] - arr2.score[0, 0] - 1e-12


def test_weight_change_reorders_quality_vs_cost() -> None:
    # model 0: good and dear; model 1: weak and cheap
    args = (np.array([10.0, 0.1]), np.array([30.0, 0.2]), np.array([0.75, 0.75]),
            np.array([[0.9, 0.4], [0.9, 0.4]]), np.ones((2, 2)), np.full((2, 2), 500.0), np.ones((2, 2)))
    arr = score_matrix(*args, np.array([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0]]))
    assert arr.order[0].tolist() == [0, 1] and arr.order[1].tolist() == [1, 0]


def test_vectorised_matches_naive_baseline() -> None:
    rng = np.random.default_rng(7)
    n, u = 300, 5
    pin = rng.gamma(1.0, 2.0, n)
    pout = pin * rng.uniform(1, 5, n)
    pin[::17] = np.nan
    pout[::17] = np.nan
    share = rng.uniform(0.3, 0.95, u)
    q = rng.uniform(0, 1, (u, n)).round(2)
    lat = rng.uniform(50, 4000, (u, n))
    w = rng.dirichlet([1, 1, 1], u)
    arr = score_matrix(pin, pout, share, q, np.ones((u, n)), lat, np.ones((u, n)), w)
    naive = naive_rank(pin.tolist(), pout.tolist(), share.tolist(), q.tolist(), lat.tolist(),
                       [tuple(x) for x in w])
    for i, (order, front) in enumerate(naive):
        assert arr.order[i].tolist() == order
        assert arr.pareto[i].tolist() == front


# ------------------------------------------------------------------------------------ compatibility
def _models(steward) -> None:  # type: ignore[no-untyped-def]
    reg = steward.registry
    reg.register_model("openrouter", "a/cheap-tools", price_in_per_m="0.1", price_out_per_m="0.4",
                       context_length=128000, capabilities=["text", "tools", "json"],
                       metadata={"modalities": {"input": ["text"], "output": ["text"]}})
    reg.register_model("openrouter", "a/dear", price_in_per_m="15", price_out_per_m="75", context_length=200000,
                       capabilities=["text", "tools", "json"])
    reg.register_model("openrouter", "a/small-ctx", price_in_per_m="0.05", price_out_per_m="0.1",
                       context_length=4096, capabilities=["text", "tools", "json"])
    reg.register_model("openrouter", "a/image-out", price_in_per_m="1", price_out_per_m="1", context_length=32000,
                       capabilities=["tools", "json"], metadata={"modalities": {"input": ["text"], "output": ["image"]}})
    reg.register_model("openrouter", "openrouter/auto", context_length=2000000, capabilities=["text", "tools", "json"],
                       metadata={"price_unknown": True})
    reg.register_model("ollama", "big", price_in_per_m=0, price_out_per_m=0, context_length=131072,
                       capabilities=["text", "tools", "json"], metadata={"params_b": 70.0, "licence": "llama3.3"})
    reg.register_model("ollama", "small", price_in_per_m=0, price_out_per_m=0, context_length=32768,
                       capabilities=["text", "tools", "json"], metadata={"params_b": 0.5, "licence": "apache-2.0"})
    reg.register_model("huggingface", "x/unknown-licence", price_in_per_m=0, price_out_per_m=0,
                       context_length=32768, capabilities=["text", "tools", "json"], metadata={"params_b": 1.0})
    reg.register_model("openrouter", "a/no-tools", price_in_per_m="0.1", price_out_per_m="0.1", context_length=64000,
                       capabilities=["text"])


def test_compatibility_filter_gives_a_reason_per_rejection(steward) -> None:
    _models(steward)
    req = {"min_context": 8000, "requires": "tools,json", "max_price_per_m": 5, "max_params_b": 8,
           "licenses": ["apache-2.0", "mit"]}
    res = check_compatibility(steward.registry.list_models(), req)
    assert sorted(res.compatible) == ["ollama:small", "openrouter:a/cheap-tools"]
    why = {r.model_id: r.reason for r in res.rejected}
    assert why["openrouter:a/dear"].startswith("blended price $")
    assert "context 4,096 < required 8,000" in why["openrouter:a/small-ctx"]
    assert why["openrouter:a/image-out"] == "no text output (outputs: image)"
    assert why["openrouter:openrouter/auto"].startswith("price unknown")
    assert why["ollama:big"] == "70B parameters > max 8B"
    assert why["huggingface:x/unknown-licence"].startswith("licence unknown")
    assert why["openrouter:a/no-tools"] == "tools not listed among its capabilities"
    assert len(res.compatible) + len(res.rejected) == 9


def test_requirements_bad_values_are_refused() -> None:
    with pytest.raises(InvalidInput):
        Requirements.from_use_case({"min_context": -5})
    with pytest.raises(InvalidInput):
        Requirements.from_use_case({"max_price_per_m": "cheap"})
    assert Requirements.from_use_case({"min_context_length": 10, "licences": "MIT"}).licenses == ["mit"]


# ------------------------------------------------------------------------------------ rank_use_case
def test_rank_use_case_defaults_priors_and_pareto(steward) -> None:
    _models(steward)
    steward.registry.add_use_case("chat", description="support chat", requirements={"requires": ["tools"]},
                                  weights={"quality": 0.5, "cost": 0.3, "latency": 0.2})
    r = rank_use_case(steward, "chat")
    assert r.input_share == DEFAULT_INPUT_SHARE and "no logged traffic" in r.mix_source
    ids = [m.model_id for m in r.ranked]
    assert "openrouter:a/no-tools" not in ids and "openrouter:a/image-out" not in ids
    assert all(m.quality_source == "prior" and m.confidence < 0.7 for m in r.ranked)
    assert any("prior" in n for n in r.notes)
    assert [m.rank for m in r.ranked] == list(range(1, len(ids) + 1))
    assert all(a.score >= b.score for a, b in zip(r.ranked, r.ranked[1:]))
    front = set(r.pareto_front)
    assert front == {m.model_id for m in r.ranked if m.pareto}
    assert "openrouter:openrouter/auto" not in front  # unknown price is never on the front
    for m in r.ranked:
        assert m.reason.startswith(f"#{m.rank}: ") and "quality" in m.reason
    cheap = next(m for m in r.ranked if m.model_id == "openrouter:a/cheap-tools")
    assert cheap.cost_per_m == pytest.approx(0.75 * 0.1 + 0.25 * 0.4)


def test_rank_uses_eval_results_and_logged_token_mix(steward) -> None:
    _models(steward)
    uc = steward.registry.add_use_case("story", description="stories", weights={"quality": 1, "cost": 0, "latency": 0})
    with session_scope(steward.sessions) as s:
        s.add(TestResult(use_case_id=uc.id, candidate_model_id="openrouter:a/no-tools",
                         baseline_model_id="ollama:small", verdict="pass", passed=True, sample_count=120,
                         metrics={"quality": {"candidate": 0.97, "baseline": 0.2},
                                  "latency": {"candidate_p50_ms": 420.0}}))
    now = dt.datetime.now(dt.timezone.utc)
    rows = [{"ts": now.isoformat(), "request_id": f"r{i}", "use_case": "story", "model_id": "ollama:big",
             "role": "primary", "messages": [{"role": "user", "content": "hi"}], "response": "ok",
             "input_tokens": 100, "output_tokens": 300, "latency_ms": 250.0, "cost_usd": 0.0, "status": "ok",
             "feedback": 0.8 if i % 2 else None} for i in range(40)]
    steward.logs.append_many(rows)
    steward.logs.flush()
    r = rank_use_case(steward, "story")
    assert r.input_share == pytest.approx(0.25) and r.mix_source.startswith("logs: 40 requests")
    top = r.ranked[0]
    assert top.model_id == "openrouter:a/no-tools" and top.quality == pytest.approx(0.97)
    assert top.quality_source.startswith("eval") and top.latency_source == "eval" and top.latency_ms == 420
    small = next(m for m in r.ranked if m.model_id == "ollama:small")
    assert small.quality == pytest.approx(0.2) and small.quality_source.startswith("eval")
    big = next(m for m in r.ranked if m.model_id == "ollama:big")
    # 20 votes of 0.8 (0.9 on [0, 1]) shrunk toward the size prior by FEEDBACK_PRIOR_VOTES pseudo-votes (issue 29)
    prior = prior_quality(steward.registry.get_model("ollama:big"), None)
    assert big.quality == pytest.approx((20 * 0.9 + FEEDBACK_PRIOR_VOTES * prior) / (20 + FEEDBACK_PRIOR_VOTES), abs=1e-4)
    assert big.quality_source.startswith("feedback, n=20, mean 0.90 shrunk toward prior")
    assert big.latency_ms == pytest.approx(250.0) and big.latency_source.startswith("logs")
    assert top.confidence > next(m for m in r.ranked if m.quality_source == "prior").confidence
    # weight override: all on cost -> the cheapest model first; self-hosted ones cost their hosting (issue 14)
    by_cost = rank_use_case(steward, "story", weights={"quality": 0, "cost": 1, "latency": 0})
    assert by_cost.ranked[0].cost_per_m == min(m.cost_per_m for m in by_cost.ranked if m.cost_per_m is not None)
    assert all((m.cost_per_m or 0) > 0 for m in by_cost.ranked if m.model_id.startswith("ollama:"))


def test_rank_weights_normalised_with_warning_and_negatives_refused(steward) -> None:
    _models(steward)
    steward.registry.add_use_case("w", description="")
    r = rank_use_case(steward, "w", weights={"quality": 2, "cost": 1, "latency": 1})
    assert r.weights == {"quality": 0.5, "cost": 0.25, "latency": 0.25}
    assert r.warnings and "normalised" in r.warnings[0]
    with pytest.raises(InvalidInput, match="negative"):
        rank_use_case(steward, "w", weights={"quality": 1.2, "cost": -0.2})


def test_rank_with_nothing_compatible_says_so(steward) -> None:
    steward.registry.add_use_case("empty", description="", requirements={"min_context": 10_000_000})
    _models(steward)
    r = rank_use_case(steward, "empty")
    assert r.ranked == [] and r.rejected and "no compatible model" in r.notes[0]
