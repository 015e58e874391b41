"""Issue 26, items 1 and 3: intake by expected value and bounded cycles, judged from the registry.

Each scenario runs several scheduled cycles (``steward agent run``, a subprocess like the scheduler's)
against wire-level fakes (``InstantUpstream``) and reads the outcome from the registry: test results
and the persisted decision records.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from agent_helpers import shared_mlflow  # noqa: F401 - fixture
from sqlalchemy import select
from test_agent_intake import LIVE, UC, cli, results_of, run, setup

from modelsteward.agent.intake import LEGACY, plan_intake
from modelsteward.agent.observe import observe_world
from modelsteward.fakes.upstream import InstantUpstream
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import AgentDecision, TestResult, UseCase, utcnow

TWIN = "openai:twin-model"
LOSER = "openai:known-loser"


@pytest.fixture(autouse=True)
def _tracking(shared_mlflow: str) -> str:  # noqa: F811
    return shared_mlflow


@pytest.fixture
def upstreams() -> Iterator[tuple[InstantUpstream, InstantUpstream]]:
    a, b = InstantUpstream().start(), InstantUpstream().start()
    yield a, b
    a.stop()
    b.stop()


def kept(steward: Any, **match: Any) -> list[AgentDecision]:
    """Decision records persisted in the registry (all runs), filtered by column values."""
    with session_scope(steward.sessions) as s:
        rows = list(s.scalars(select(AgentDecision).order_by(AgentDecision.id)))
        s.expunge_all()
    return [r for r in rows if all(getattr(r, k) == v for k, v in match.items())]


def _old_eval(steward: Any, model_id: str, quality: float, baseline: str = "openai:old-live") -> None:
    """An evaluation of ``model_id`` on this use case against an earlier live model (strong evidence)."""
    with session_scope(steward.sessions) as s:
        uc = s.scalars(select(UseCase).where(UseCase.name == UC)).one()
        s.add(TestResult(use_case_id=uc.id, candidate_model_id=model_id, baseline_model_id=baseline, verdict="fail",
                         passed=False, sample_count=120, reasons=["worse"], created_at=utcnow() - dt.timedelta(days=3),
                         metrics={"quality": {"candidate": quality, "baseline": 0.9}}))


def _entry(steward: Any) -> dict[str, Any]:
    return next(u for u in observe_world(steward, UC)["use_cases"])


# ------------------------------------------------------------------------------ 1. exploration
@pytest.mark.slow
def test_a_linked_model_at_the_live_price_is_evaluated_once_and_a_known_loser_never(steward, upstreams) -> None:  # type: ignore[no-untyped-def]
    live_up, twin_up = upstreams
    # a floor a use case may raise: the fakes' fixed answer gives the live model a low measured quality
    # after the first evaluation, so the loser's evidence must stay decisive against that too
    setup(steward, live_up.url, evaluation={"min_benefit_chance": 0.2})
    reg = steward.registry
    # the operator links a model at exactly the live model's price; nothing is known about it here
    reg.register_model("openai", "twin-model", price_in_per_m="10", price_out_per_m="30", base_url=twin_up.url,
                       context_length=32000, use_case=UC)
    # same price, but an evaluation on this use case (against an earlier live model) showed it far worse
    reg.register_model("openai", "known-loser", price_in_per_m="10", price_out_per_m="30", base_url=twin_up.url,
                       context_length=32000)
    _old_eval(steward, LOSER, quality=0.0)
    first = run(steward)
    assert first["status"] in ("completed", "waiting_approval"), first["report"]
    (t,) = results_of(steward, TWIN)  # evaluated for real, over the wire
    assert t.baseline_model_id == LIVE and t.verdict in ("pass", "fail", "inconclusive")
    assert twin_up.requests >= 8
    (ev,) = kept(steward, kind="evaluate", model_id=TWIN, taken=True)
    assert ev.rule == "intake.unexplored", ev.summary
    assert ev.numbers["cost_ratio"] == pytest.approx(1.0) and ev.numbers["linked"] == 1
    assert 0.2 < ev.numbers["benefit_chance"] < 0.8 and ev.numbers["evidence"] == "prior"
    (skip,) = kept(steward, kind="skip", model_id=LOSER)
    assert skip.rule == "intake.cannot_beat_live" and skip.numbers["benefit_chance"] < 0.05, skip.summary
    # two more scheduled cycles: the twin was tried once, the loser never
    run(steward)
    run(steward)
    assert len(results_of(steward, TWIN)) == 1
    assert [r.baseline_model_id for r in results_of(steward, LOSER)] == ["openai:old-live"]
    skips = kept(steward, kind="skip", model_id=LOSER)
    assert len(skips) == 3 and all(d.numbers["benefit_chance"] < 0.2 for d in skips), [d.summary for d in skips]


def test_the_old_rule_never_tries_a_model_at_the_same_price(steward) -> None:  # type: ignore[no-untyped-def]
    """The finding, in-process: the legacy rule skips the twin; the expected-value rule plans it."""
    setup(steward, "http://127.0.0.1:9/v1")
    steward.registry.register_model("openai", "twin-model", price_in_per_m="10", price_out_per_m="30",
                                    context_length=32000, use_case=UC)
    entry = _entry(steward)
    old = plan_intake(steward, UC, entry, rule=LEGACY)
    assert old["evaluate"] == [] and old["skipped"][0]["rule"] == "intake.cannot_beat_live"
    new = plan_intake(steward, UC, entry)
    assert [c["model_id"] for c in new["evaluate"]] == [TWIN]


def test_linked_candidates_first_then_chance_per_evaluation_dollar(steward) -> None:  # type: ignore[no-untyped-def]
    setup(steward, "http://127.0.0.1:9/v1", evaluation={"max_candidates_per_cycle": 1})
    reg = steward.registry
    reg.register_model("openai", "cheap", price_in_per_m="0.1", price_out_per_m="0.3", context_length=32000)
    reg.register_model("openai", "linked", price_in_per_m="8", price_out_per_m="25", context_length=32000,
                       use_case=UC)
    plan = plan_intake(steward, UC, _entry(steward))
    assert [c["model_id"] for c in plan["evaluate"]] == ["openai:linked"]  # the operator's link wins the slot
    (deferred,) = [d for d in plan["decisions"] if d["model_id"] == "openai:cheap"]
    assert deferred["rule"] == "budget.candidates_per_cycle" and deferred["numbers"]["priority"] > 0
    # without the link, the higher chance of a benefit per dollar goes first
    reg.update_use_case(UC, config={"agent": {"evaluate": {"samples": 0}}, "evaluation": {"max_candidates_per_cycle": 2}})
    plan = plan_intake(steward, UC, _entry(steward))
    nums = {d["model_id"]: d["numbers"] for d in plan["decisions"] if d["kind"] == "evaluate"}
    assert set(nums) == {"openai:linked", "openai:cheap"}
    for n in nums.values():
        assert n["priority"] == pytest.approx(n["benefit_chance"] / n["eval_usd_all"], rel=1e-3)


# ------------------------------------------------------------------------------ 3. bounded cycles
@pytest.mark.slow
def test_the_embedded_model_is_not_everybodys_candidate(steward, upstreams) -> None:  # type: ignore[no-untyped-def]
    live_up, _ = upstreams
    setup(steward, live_up.url)
    scan = json.loads(cli(steward.settings.home, "scan", "--provider", "local", "--json").stdout)
    local = "local:smollm2-135m-instruct"
    assert local in json.dumps(scan)
    assert steward.registry.get_model(local).meta.get("embedded") is True
    t0 = time.monotonic()
    for _ in range(2):
        run(steward)
    assert time.monotonic() - t0 < 240  # no CPU evaluation of the local model
    assert results_of(steward, local) == []
    skips = kept(steward, kind="skip", model_id=local)
    assert [d.rule for d in skips] == ["intake.embedded_not_linked"] * 2
    assert "--use-case story" in skips[0].summary
    # registered for the use case by its operator, it is a candidate like any other
    steward.registry.register_model("local", "smollm2-135m-instruct", use_case=UC)
    plan = plan_intake(steward, UC, _entry(steward))
    assert local in plan["candidates"]


@pytest.mark.slow
def test_an_evaluation_that_cannot_fit_is_deferred_and_one_that_overruns_is_incomplete(steward, upstreams) -> None:  # type: ignore[no-untyped-def]
    live_up, twin_up = upstreams
    setup(steward, live_up.url, evaluation={"max_minutes_per_cycle": 0.5, "max_candidates_per_cycle": 3})
    reg = steward.registry
    with InstantUpstream(latency_ms=5000) as slow:  # answers take 5 s; the estimate (a prior p50) says 0.8 s
        reg.register_model("openai", "slow-model", price_in_per_m="0.1", price_out_per_m="0.3", base_url=slow.url,
                           context_length=32000)
        # a self-hosted model measured at half a token per second: 8 answers cannot fit 30 s
        reg.register_model("vllm", "crawler", kind="self_hosted", base_url=twin_up.url, context_length=32000,
                           metadata={"hosting": {"cost_per_hour_usd": "0.1", "measured_tokens_per_s": 0.5}})
        t0 = time.monotonic()
        first = run(steward)
        took = time.monotonic() - t0
        assert first["status"] in ("completed", "waiting_approval"), first["report"]
        (t,) = results_of(steward, "openai:slow-model")
        assert t.verdict == "incomplete" and not t.passed and t.sample_count == 0, t.reasons
        inc = t.metrics["incomplete"]
        assert inc["limit_s"] <= 30 and inc["elapsed_s"] <= inc["limit_s"] + 3
        # the cycle: its 30 s of evaluation plus CLI start-up, scan and guard (generous: a shared 2-core machine)
        assert took < 30 + 120, took
        assert results_of(steward, "vllm:crawler") == [] and twin_up.requests == 0
        (d,) = kept(steward, kind="skip", model_id="vllm:crawler")
        assert d.rule == "budget.minutes_per_cycle" and d.numbers["est_minutes"] > 0.5, d.summary
        # next cycle: the overrun showed it needs more than the whole budget; deferred, not run again
        seen = slow.requests
        run(steward)
        assert len(results_of(steward, "openai:slow-model")) == 1 and slow.requests == seen
        last = kept(steward, kind="skip", model_id="openai:slow-model")[-1]
        # est_minutes is stored rounded to 3 decimals
    assert last.rule == "budget.minutes_per_cycle" and last.numbers["est_minutes"] >= 2 * inc["limit_s"] / 60 - 0.001


def test_a_cycle_budget_above_its_hard_bound_is_refused(steward) -> None:  # type: ignore[no-untyped-def]
    from modelsteward.errors import InvalidInput
    from modelsteward.tools.base import ToolContext, call_tool

    setup(steward, "http://127.0.0.1:9/v1")
    with pytest.raises(InvalidInput, match="max_minutes_per_cycle=60.*loosest allowed is 15"):
        call_tool("set_policy", {"use_case": UC, "evaluation": {"max_minutes_per_cycle": 60}},
                  ToolContext(steward=steward, actor="cli:alice"))


def _burst(steward: Any, per_minute: int, out_tokens: int = 100) -> None:
    ts = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)).replace(second=0, microsecond=0)
    steward.logs.append_many([{
        "ts": (ts + dt.timedelta(seconds=i * 60 / per_minute)).isoformat(), "request_id": f"b-{i}", "use_case": UC,
        "model_id": LIVE, "role": "primary", "messages": [{"role": "user", "content": "hi"}], "response": "x",
        "input_tokens": 50, "output_tokens": out_tokens, "latency_ms": 100.0, "cost_usd": 0.001, "status": "ok",
    } for i in range(per_minute)])
    steward.logs.flush()


def test_a_self_hosted_candidate_must_carry_the_observed_peak(steward) -> None:  # type: ignore[no-untyped-def]
    setup(steward, "http://127.0.0.1:9/v1")
    _burst(steward, per_minute=120)  # 2 requests/s of 100 output tokens at the peak
    reg = steward.registry
    reg.register_model("vllm", "on-cpu", kind="self_hosted", context_length=32000,
                       metadata={"hosting": {"hardware": "cpu"}})  # 20 tokens/s: 0.2 requests/s
    reg.register_model("vllm", "on-h100", kind="self_hosted", context_length=32000,
                       metadata={"hosting": {"hardware": "gpu-large"}})  # 300 tokens/s: 3 requests/s
    plan = plan_intake(steward, UC, _entry(steward))
    (cap,) = [d for d in plan["decisions"] if d["rule"] == "intake.capacity"]
    assert cap["model_id"] == "vllm:on-cpu" and cap["numbers"]["peak_rps"] == pytest.approx(2.0)
    assert cap["numbers"]["capacity_rps"] == pytest.approx(0.2) and "120/min" in cap["summary"]
    assert "vllm:on-h100" in [c["model_id"] for c in plan["evaluate"]]
    assert "vllm:on-cpu" in [c["model_id"] for c in plan_intake(steward, UC, _entry(steward), rule=LEGACY)["evaluate"]]


@pytest.mark.slow
def test_a_use_case_served_by_the_local_model_completes_a_cycle_within_its_budget(steward, upstreams) -> None:  # type: ignore[no-untyped-def]
    """The real SmolLM2 on this machine's CPU is the live model; the cycle evaluates a paid candidate."""
    from test_agent_intake import EVAL_CFG, QA

    _, twin_up = upstreams
    cli(steward.settings.home, "scan", "--provider", "local")
    local = "local:smollm2-135m-instruct"
    reg = steward.registry
    reg.add_use_case(UC, description="short factual answers", model=local)
    golden = steward.settings.workspace / "golden.jsonl"
    golden.write_text("".join(json.dumps({"prompt": q, "reference": a}) + "\n" for q, a in QA))
    budget_min = 2.0
    reg.update_use_case(UC, golden_set_path=str(golden), config={
        "agent": {"evaluate": {**EVAL_CFG, "max_tokens": 32}}, "evaluation": {"max_minutes_per_cycle": budget_min}})
    reg.register_model("openai", "twin-model", price_in_per_m="0.01", price_out_per_m="0.03", base_url=twin_up.url,
                       context_length=32000, use_case=UC)
    t0 = time.monotonic()
    out = run(steward)
    took = time.monotonic() - t0
    assert out["status"] in ("completed", "waiting_approval"), out["report"]
    (t,) = results_of(steward, TWIN)
    assert t.baseline_model_id == local and t.verdict in ("pass", "fail", "inconclusive", "incomplete")
    (ev,) = kept(steward, kind="evaluate", model_id=TWIN, taken=True)
    assert ev.numbers["est_minutes"] <= budget_min
    if t.verdict == "incomplete":  # the CPU was slower than its profile: stopped at the cycle's deadline
        assert t.metrics["incomplete"]["limit_s"] <= budget_min * 60
    assert took < budget_min * 60 + 120, took  # the evaluations' budget, plus start-up, scan and guard
