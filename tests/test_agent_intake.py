"""Candidate intake through the real CLI, the real evaluator and wire-level upstreams.

Two ``InstantUpstream`` servers answer every chat request with the same completion, so a model
behind one and a model behind the other behave as identical twins: only their prices differ.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_helpers import shared_mlflow  # noqa: F401 - fixture
from sqlalchemy import select

from modelsteward.errors import InvalidInput
from modelsteward.fakes.upstream import InstantUpstream
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import AgentDecision, Approval, CatalogScan, GuardrailViolation, Rollout, TestResult, UseCase, utcnow
from modelsteward.tools.base import ToolContext, call_tool

UC = "story"
LIVE = "openai:live-model"
TWIN = "openai:twin-model"
QA = [("What is the capital of France?", "Paris."), ("What do bees make?", "Honey."),
      ("What is 2 + 2?", "4."), ("Which planet is red?", "Mars."), ("How many legs has a spider?", "Eight."),
      ("Who wrote Hamlet?", "Shakespeare."), ("What colour is the sky?", "Blue."), ("Ice is frozen what?", "Water.")]
EVAL_CFG = {"samples": 0, "max_tokens": 16, "safety": False, "concurrency": 1}


@pytest.fixture(autouse=True)
def _tracking(shared_mlflow: str) -> str:  # noqa: F811
    return shared_mlflow


@pytest.fixture
def upstreams() -> Iterator[tuple[InstantUpstream, InstantUpstream]]:
    a, b = InstantUpstream().start(), InstantUpstream().start()
    yield a, b
    a.stop()
    b.stop()


def cli(ws: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STEWARD_HOME": str(ws), "OPENAI_API_KEY": "sk-test"}
    env.pop("STEWARD_DATABASE_URL", None)
    proc = subprocess.run([sys.executable, "-m", "modelsteward", *args], capture_output=True, text=True, env=env,
                          timeout=600)
    if ok:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def setup(steward: Any, live_url: str, *, evaluation: dict[str, Any] | None = None) -> None:
    """Use case ``story`` live on an expensive model; a golden set; catalogs freshly scanned."""
    reg = steward.registry
    reg.register_model("openai", "live-model", price_in_per_m="10", price_out_per_m="30", base_url=live_url,
                       context_length=32000)
    reg.add_use_case(UC, description="short factual answers", model=LIVE)
    golden = steward.settings.workspace / "golden.jsonl"
    golden.write_text("".join(json.dumps({"prompt": q, "reference": a}) + "\n" for q, a in QA))
    cfg: dict[str, Any] = {"agent": {"evaluate": EVAL_CFG}}
    if evaluation:
        cfg["evaluation"] = evaluation
    reg.update_use_case(UC, golden_set_path=str(golden), config=cfg)
    with session_scope(steward.sessions) as s:
        s.add(CatalogScan(provider="all", status="ok", created_at=utcnow() - dt.timedelta(hours=1)))


def run(steward: Any) -> dict[str, Any]:
    return json.loads(cli(steward.settings.home, "agent", "run", "--use-case", UC, "--json").stdout)


def results_of(steward: Any, model_id: str) -> list[TestResult]:
    with session_scope(steward.sessions) as s:
        return list(s.scalars(select(TestResult).where(TestResult.candidate_model_id == model_id)))


def decisions(out: dict[str, Any], **match: Any) -> list[dict[str, Any]]:
    return [d for d in out["decisions"] if all(d.get(k) == v for k, v in match.items())]


@pytest.mark.slow
def test_unlinked_cheap_twin_is_evaluated_and_a_rollout_starts(steward, upstreams) -> None:  # type: ignore[no-untyped-def]
    live_up, twin_up = upstreams
    setup(steward, live_up.url)
    # registered by hand, NOT linked to the use case, a hundredth of the price; an incompatible one too
    steward.registry.register_model("openai", "twin-model", price_in_per_m="0.1", price_out_per_m="0.3",
                                    base_url=twin_up.url, context_length=32000)
    steward.registry.register_model("openai", "tiny-ctx", price_in_per_m="0.01", price_out_per_m="0.01",
                                    base_url=twin_up.url, context_length=1000)
    steward.registry.update_use_case(UC, requirements={"min_context": 8000})
    assert steward.registry.get_model(TWIN).use_case_id is None
    out = run(steward)
    assert out["status"] in ("completed", "waiting_approval"), out["report"]
    # evaluated for real, over the wire: the twin answered the golden prompts
    (t,) = results_of(steward, TWIN)
    assert t.baseline_model_id == LIVE and t.sample_count >= len(QA) and twin_up.requests >= len(QA)
    (ev,) = decisions(out, kind="evaluate", model_id=TWIN)
    assert ev["taken"] and ev["rule"] in ("intake.clearly_cheaper", "intake.ranked_above_live")
    assert ev["numbers"]["cost_ratio"] == pytest.approx(0.01, rel=1e-6)
    assert not decisions(out, model_id="openai:tiny-ctx")  # incompatible: never a candidate
    assert results_of(steward, "openai:tiny-ctx") == []
    # a twin at a hundredth of the price is non-inferior and cheaper: the evaluation states it, a rollout starts
    assert t.passed, t.reasons
    assert (t.metrics.get("benefit") or {}).get("verdict") == "cheaper", t.metrics.get("benefit")
    with session_scope(steward.sessions) as s:
        ro = s.scalars(select(Rollout).where(Rollout.candidate_model_id == TWIN)).one()
        assert ro.strategy == "shadow" and ro.state in ("waiting", "running")
    (dep,) = decisions(out, kind="deploy", model_id=TWIN)
    assert dep["taken"] and dep["rule"] == "benefit.cheaper"
    assert "## Decisions" in out["report"] and TWIN in out["report"]
    with session_scope(steward.sessions) as s:  # and the decisions are kept in the registry
        kept = {(d.kind, d.model_id) for d in s.scalars(select(AgentDecision).where(AgentDecision.agent_run_id == out["run_id"]))}
    assert {("evaluate", TWIN), ("deploy", TWIN)} <= kept


@pytest.mark.slow
def test_an_evaluation_budget_of_one_candidate_evaluates_exactly_one(steward, upstreams) -> None:  # type: ignore[no-untyped-def]
    live_up, twin_up = upstreams
    setup(steward, live_up.url, evaluation={"max_candidates_per_cycle": 1})
    for i, price in enumerate(("0.3", "0.2", "0.1")):
        steward.registry.register_model("openai", f"cheap-{i}", price_in_per_m=price, price_out_per_m=price,
                                        base_url=twin_up.url, context_length=32000)
    out = run(steward)
    with session_scope(steward.sessions) as s:
        tested = [t.candidate_model_id for t in s.scalars(select(TestResult))]
    # exactly one: the highest chance of a benefit per evaluation dollar (issue 26; none is linked)
    prio = {d["model_id"]: d["numbers"]["priority"] for d in out["decisions"] if d["model_id"] and "priority" in d["numbers"]}
    assert len(prio) == 3 and tested == [max(prio, key=lambda k: prio[k])]
    skipped = decisions(out, kind="skip", rule="budget.candidates_per_cycle")
    assert sorted(d["model_id"] for d in skipped) == sorted(set(prio) - set(tested))
    assert all(not d["taken"] for d in skipped)
    assert "budget.candidates_per_cycle" in out["report"]


@pytest.mark.slow
def test_a_failed_candidate_is_not_tested_again_until_its_price_changes(steward, upstreams) -> None:  # type: ignore[no-untyped-def]
    live_up, _ = upstreams
    setup(steward, live_up.url)
    with InstantUpstream(error_rate=1.0) as broken:  # every call fails: the evaluation fails
        steward.registry.register_model("openai", "twin-model", price_in_per_m="0.1", price_out_per_m="0.3",
                                        base_url=broken.url, context_length=32000)
        first = run(steward)
        (t,) = results_of(steward, TWIN)
        assert not t.passed and t.baseline_model_id == LIVE, first["report"]
        seen = broken.requests
        second = run(steward)
        assert len(results_of(steward, TWIN)) == 1 and broken.requests == seen  # not re-tested
        (skip,) = decisions(second, kind="skip", model_id=TWIN)
        assert skip["rule"] == "intake.failed_unchanged" and f"test #{t.id}" in skip["summary"]
        # the provider cuts the price: something changed, so it is tested again
        steward.registry.register_model("openai", "twin-model", price_in_per_m="0.05", price_out_per_m="0.1")
        third = run(steward)
        assert len(results_of(steward, TWIN)) == 2
        (ev,) = decisions(third, kind="evaluate", model_id=TWIN)
        assert ev["rule"] == "intake.changed_since_failure" and "price changed" in " ".join(ev["evidence"])


@pytest.mark.slow
def test_live_model_with_an_open_slo_violation_and_a_healthy_fallback_gets_a_switch_proposal(steward, upstreams) -> None:  # type: ignore[no-untyped-def]
    live_up, fb_up = upstreams
    setup(steward, live_up.url)
    steward.registry.register_model("openai", "fallback-model", price_in_per_m="10", price_out_per_m="30",
                                    base_url=fb_up.url, context_length=32000)
    steward.registry.update_use_case(UC, fallback=["openai:fallback-model"])
    with session_scope(steward.sessions) as s:
        uc = s.scalars(select(UseCase).where(UseCase.name == UC)).one()
        s.add(GuardrailViolation(policy="slo_error_rate", severity="warn", use_case_id=uc.id, model_id=LIVE,
                                 measured=0.6, threshold=0.05, action="warn",
                                 details={"window_minutes": 240, "requests": 1200}))
    out = run(steward)
    # no passing evaluation of the fallback yet: it is evaluated (for real), then the switch is proposed
    (t,) = results_of(steward, "openai:fallback-model")
    assert t.passed and t.baseline_model_id == LIVE, t.reasons
    assert out["status"] == "waiting_approval", out["report"]
    with session_scope(steward.sessions) as s:
        (a,) = list(s.scalars(select(Approval)))
        assert a.status == "pending" and a.action == "deploy"
        assert a.arguments["model_id"] == "openai:fallback-model" and a.arguments["strategy"] == "full"
        assert "slo_error_rate" in a.reason and "0.6" in a.reason and "violation #" in a.reason
    (sw,) = decisions(out, kind="switch")
    assert sw["taken"] and sw["model_id"] == "openai:fallback-model" and sw["numbers"]["measured"] == 0.6
    assert steward.registry.routing_table(steward.registry.deployment(UC))[0]["model_id"] == LIVE  # not switched alone


def test_an_evaluation_budget_above_its_bound_is_refused_naming_the_field(steward) -> None:  # type: ignore[no-untyped-def]
    steward.registry.register_model("openai", "live-model", price_in_per_m="10", price_out_per_m="30")
    steward.registry.add_use_case(UC, description="x", model=LIVE)
    before = dict(steward.registry.get_use_case(UC).config or {})
    ctx = ToolContext(steward=steward, actor="cli:alice")
    with pytest.raises(InvalidInput) as exc:
        call_tool("set_policy", {"use_case": UC, "evaluation": {"max_candidates_per_cycle": 50}}, ctx)
    assert "evaluation.max_candidates_per_cycle=50" in exc.value.message and "loosest allowed is 5" in exc.value.message
    with pytest.raises(InvalidInput, match="max_usd_per_month"):
        call_tool("set_policy", {"use_case": UC, "evaluation": {"max_usd_per_month": 1e6}}, ctx)
    assert (steward.registry.get_use_case(UC).config or {}) == before  # nothing changed
    with session_scope(steward.sessions) as s:
        assert list(s.scalars(select(Approval))) == []  # not even an approval was asked


def test_models_that_cannot_beat_the_live_model_are_skipped_with_a_bounded_record(steward) -> None:  # type: ignore[no-untyped-def]
    from modelsteward.agent.intake import MAX_SKIP_RECORDS, plan_intake
    from modelsteward.agent.observe import observe_world

    steward.registry.register_model("openai", "live-model", price_in_per_m="0.1", price_out_per_m="0.2",
                                    context_length=32000)
    steward.registry.add_use_case(UC, description="x", model=LIVE, weights={"quality": 0.0, "cost": 1.0, "latency": 0.0})
    for i in range(MAX_SKIP_RECORDS + 5):  # all dearer than the live model, on a cost-only ranking
        steward.registry.register_model("openai", f"dear-{i:02d}", price_in_per_m=str(5 + i), price_out_per_m="9",
                                        context_length=32000)
    entry = next(u for u in observe_world(steward, UC)["use_cases"])
    plan = plan_intake(steward, UC, entry)
    assert plan["evaluate"] == [] and plan["candidates"] == []
    recs = [d for d in plan["decisions"] if d["rule"] == "intake.cannot_beat_live"]
    assert len(recs) == MAX_SKIP_RECORDS + 1
    assert recs[-1]["model_id"] is None and recs[-1]["numbers"] == {"count": 5}
    assert all("cannot beat openai:live-model" in d["summary"] for d in recs[:-1])
