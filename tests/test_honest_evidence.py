"""Honest numbers (issue 26 item 5, issue 29 item 5): the ledger holds only changes of the live model,
the gains chart draws what its table holds, a score that measured nothing is no quality, one feedback
vote is not "quality 1.00", and an evaluation's fingerprint says what really changed since it failed.
Each is judged from the registry (and the real CLI / console) after the cycles that used to go wrong."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from agent_helpers import shared_mlflow  # noqa: F401 - fixture
from fastapi.testclient import TestClient
from server_helpers import make_tokens
from sqlalchemy import select
from test_gain_ledger import NEW, OLD, UC, base, cli, promoted, traffic

from modelsteward.agent import run_agent
from modelsteward.agent.observe import observe_world
from modelsteward.catalog.rank import rank_use_case
from modelsteward.fakes.upstream import InstantUpstream
from modelsteward.server import create_app
from modelsteward.server.views import eval_series
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import (AgentDecision, GuardrailViolation, RealisedGain, Rollout, TestResult, UseCase,
                                         utcnow)
from modelsteward.tools.base import ToolContext, call_tool


def _shadow_completed(steward: Any, *, started: dt.datetime, at: dt.datetime) -> int:
    """A shadow rollout of NEW that passed: it completed, but the live model never changed."""
    with session_scope(steward.sessions) as s:
        uc = s.scalars(select(UseCase).where(UseCase.name == UC)).one()
        ro = Rollout(use_case_id=uc.id, candidate_model_id=NEW, stable_model_id=OLD, strategy="shadow", steps=[100.0],
                     step_index=0, state="completed", created_at=started,
                     analyses=[{"event": "completed", "at": at.isoformat(timespec="seconds")}], updated_at=at)
        s.add(ro)
        s.flush()
        return ro.id


def test_a_completed_shadow_is_no_promotion_and_the_chart_draws_the_table(steward) -> None:  # type: ignore[no-untyped-def]
    base(steward)
    now = utcnow()
    shadow = _shadow_completed(steward, started=now - dt.timedelta(hours=40), at=now - dt.timedelta(hours=38))
    # free (self-hosted-like) traffic before and after: cost per request $0 on both sides
    traffic(steward, OLD, now - dt.timedelta(hours=60), 60, cost=0.0, err=0.0, lat=500, fb=0.2, seed=1)
    traffic(steward, OLD, now - dt.timedelta(hours=37), 60, cost=0.0, err=0.0, lat=500, fb=0.2, seed=2)
    ctx = ToolContext(steward=steward, actor="agent:run-1")
    (entry,) = observe_world(steward, UC)["use_cases"]
    assert entry["gains_due"] == []  # nothing changed live: nothing for the agent to measure, cycle after cycle
    for _ in range(2):
        call_tool("measure_gains", {"use_case": UC, "window_hours": 24}, ctx)
    with session_scope(steward.sessions) as s:
        assert list(s.scalars(select(RealisedGain))) == []
    out = json.loads(cli(steward.settings.home, "report", "--use-case", UC, "--window-hours", "24", "--json").stdout)
    assert out["entries"] == [] and shadow
    # a real promotion (canary to 100 %) of free models: in the table; the chart does not draw an empty box
    rid = promoted(steward, stated="cheaper", started=now - dt.timedelta(hours=30), at=now - dt.timedelta(hours=25))
    traffic(steward, NEW, now - dt.timedelta(hours=25), 60, cost=0.0, err=0.0, lat=400, fb=0.2, seed=3)
    call_tool("measure_gains", {"use_case": UC, "window_hours": 24}, ctx)
    out = json.loads(cli(steward.settings.home, "report", "--use-case", UC, "--no-measure", "--json").stdout)
    assert [e["rollout_id"] for e in out["entries"]] == [rid]
    tokens = make_tokens(steward)
    with TestClient(create_app(steward, metrics_cache_seconds=0), raise_server_exceptions=False) as client:
        assert client.post("/login", data={"token": tokens["viewer"]}, follow_redirects=False).status_code == 303
        page = client.get(f"/use-cases/{UC}").text
    panel = page[page.index('id="realised-gains"'):page.index("<h2>Guardrail violations</h2>")]
    assert f'href="/rollouts/{rid}"' in panel and f'href="/rollouts/{shadow}"' not in panel
    assert '<svg class="gain-chart"' not in panel and "no cost chart" in panel


def test_a_pairwise_tie_is_no_quality_and_one_vote_is_not_quality_one(steward) -> None:  # type: ignore[no-untyped-def]
    base(steward)
    steward.registry.register_model("openai", "voted-model", price_in_per_m="10", price_out_per_m="30")
    with session_scope(steward.sessions) as s:
        uc = s.scalars(select(UseCase).where(UseCase.name == UC)).one()
        s.add(TestResult(use_case_id=uc.id, candidate_model_id=NEW, baseline_model_id=OLD, verdict="pass", passed=True,
                         sample_count=20, reasons=[],
                         metrics={"quality": {"candidate": 0.5, "baseline": 0.5, "method": "pairwise", "n": 20}}))
    steward.logs.append_many([{"ts": utcnow().isoformat(), "request_id": "vote-1", "use_case": UC,
                               "model_id": "openai:voted-model", "role": "primary", "status": "ok", "feedback": 1.0,
                               "messages": [{"role": "user", "content": "hi"}], "response": "ok"}])
    steward.logs.flush()
    r = rank_use_case(steward, UC, weights={"quality": 1, "cost": 0, "latency": 0})
    new = next(m for m in r.ranked if m.model_id == NEW)
    assert new.quality_source == "prior"
    voted = next(m for m in r.ranked if m.model_id == "openai:voted-model")
    assert voted.quality < 0.75 and "n=1" in voted.quality_source and "shrunk toward prior" in voted.quality_source
    assert [p["score"] for p in eval_series(steward, UC)] == [None]  # not charted as 'Eval quality'
    # a measured score (golden references) still counts
    with session_scope(steward.sessions) as s:
        s.add(TestResult(use_case_id=uc.id, candidate_model_id=NEW, baseline_model_id=OLD, verdict="pass", passed=True,
                         sample_count=20, reasons=[],
                         metrics={"quality": {"candidate": 0.8, "baseline": 0.7, "method": "golden+pairwise"}}))
    new = next(m for m in rank_use_case(steward, UC).ranked if m.model_id == NEW)
    assert new.quality == pytest.approx(0.8) and new.quality_source.startswith("eval")


@pytest.fixture
def _tracking(shared_mlflow: str) -> str:  # noqa: F811
    return shared_mlflow


@pytest.mark.slow
def test_an_evaluation_the_slo_rule_started_is_not_retested_for_a_change_that_did_not_happen(steward, _tracking) -> None:  # type: ignore[no-untyped-def]
    from test_agent_intake import LIVE, UC as STORY, setup

    with InstantUpstream() as live_up, InstantUpstream(error_rate=1.0) as broken:
        setup(steward, live_up.url)
        steward.registry.register_model("openai", "fallback-model", price_in_per_m="0.05", price_out_per_m="0.1",
                                        base_url=broken.url, context_length=32000)
        fb = "openai:fallback-model"
        steward.registry.update_use_case(STORY, fallback=[fb])
        with session_scope(steward.sessions) as s:
            uc = s.scalars(select(UseCase).where(UseCase.name == STORY)).one()
            s.add(GuardrailViolation(policy="slo_error_rate", severity="warn", use_case_id=uc.id, model_id=LIVE,
                                     measured=0.5, threshold=0.1, action="warn", details={}))
        first = run_agent(steward, trigger="schedule", started_by="schedule")
        with session_scope(steward.sessions) as s:
            (t,) = list(s.scalars(select(TestResult).where(TestResult.candidate_model_id == fb)))
            assert not t.passed, first.report
            assert t.metrics["fingerprint"] == {"price_in": "0.05", "price_out": "0.1", "version": None, "live": LIVE}
            started = [d.rule for d in s.scalars(select(AgentDecision).where(AgentDecision.model_id == fb,
                                                                              AgentDecision.kind == "evaluate"))]
        assert "slo.evaluate_fallback" in started  # the SLO rule started it, not the intake
        seen = broken.requests
        second = run_agent(steward, trigger="schedule", started_by="schedule")
        assert second.status == "completed", second.report
        assert broken.requests == seen  # not evaluated again
        with session_scope(steward.sessions) as s:
            assert len(list(s.scalars(select(TestResult).where(TestResult.candidate_model_id == fb)))) == 1
            runs = list(s.scalars(select(AgentDecision).where(AgentDecision.agent_run_id == second.run_id,
                                                               AgentDecision.model_id == fb)))
        rules = {d.rule for d in runs}
        assert "intake.changed_since_failure" not in rules and "intake.failed_unchanged" in rules, rules
