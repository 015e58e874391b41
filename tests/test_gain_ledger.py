"""The realised-gain ledger from synthetic logs: a window before a rollout against a window after its
promotion, through ``steward report`` (a real CLI process over the real log store)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from modelsteward.storage.db import session_scope
from modelsteward.storage.models import GuardrailViolation, RealisedGain, Rollout, TestResult, UseCase, utcnow

UC = "story"
OLD, NEW = "openai:old-model", "openai:new-model"


def cli(ws: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STEWARD_HOME": str(ws)}
    env.pop("STEWARD_DATABASE_URL", None)
    proc = subprocess.run([sys.executable, "-m", "modelsteward", *args], capture_output=True, text=True, env=env,
                          timeout=300)
    if ok:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def promoted(steward: Any, *, stated: str, started: dt.datetime, at: dt.datetime) -> int:
    """A completed rollout OLD -> NEW and the passing evaluation that stated ``stated``."""
    with session_scope(steward.sessions) as s:
        uc = s.scalars(select(UseCase).where(UseCase.name == UC)).one()
        s.add(TestResult(use_case_id=uc.id, candidate_model_id=NEW, baseline_model_id=OLD, verdict="pass", passed=True,
                         sample_count=60, reasons=[], created_at=started - dt.timedelta(hours=1),
                         metrics={"benefit": {"verdict": stated, "rule": "non-inferior and 90% cheaper",
                                              "quality_ratio": 1.0, "quality_ratio_lcb": 0.96, "cost_ratio": 0.1,
                                              "method": "golden"}}))
        ro = Rollout(use_case_id=uc.id, candidate_model_id=NEW, stable_model_id=OLD, strategy="canary",
                     steps=[5.0, 25.0, 50.0, 100.0], step_index=3, state="completed", created_at=started,
                     analyses=[{"event": "completed", "at": at.isoformat(timespec="seconds")}], updated_at=at)
        s.add(ro)
        s.flush()
        return ro.id


def traffic(steward: Any, model: str, start: dt.datetime, n: int, *, cost: float, err: float, lat: float,
            fb: float, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    costs = np.round(rng.normal(cost, cost * 0.1, n).clip(min=0), 8)
    errors = rng.random(n) < err
    lats = rng.normal(lat, lat * 0.1, n).clip(min=1)
    fbs = rng.choice([-1.0, 1.0], n, p=[(1 - fb) / 2, (1 + fb) / 2])
    steward.logs.append_many([
        {"ts": (start + dt.timedelta(minutes=4 * i)).isoformat(), "request_id": f"{model}-{seed}-{i}", "use_case": UC,
         "model_id": model, "role": "primary", "messages": [{"role": "user", "content": "hi"}], "response": "ok",
         "input_tokens": 100, "output_tokens": 50, "latency_ms": float(lats[i]), "cost_usd": float(costs[i]),
         "status": "error" if errors[i] else "ok", "error": "boom" if errors[i] else None, "feedback": float(fbs[i])}
        for i in range(n)])
    steward.logs.flush()
    return {"cost": costs, "errors": errors, "lat": lats[~errors], "fb": fbs}


def base(steward: Any) -> None:
    reg = steward.registry
    reg.register_model("openai", "old-model", price_in_per_m="10", price_out_per_m="30")
    reg.register_model("openai", "new-model", price_in_per_m="1", price_out_per_m="3")
    reg.add_use_case(UC, description="x", model=OLD)


def test_ledger_measures_before_and_after_a_promotion_from_synthetic_logs(steward) -> None:  # type: ignore[no-untyped-def]
    base(steward)
    now = utcnow()
    started, at = now - dt.timedelta(hours=30), now - dt.timedelta(hours=25)
    rid = promoted(steward, stated="cheaper", started=started, at=at)
    before = traffic(steward, OLD, started - dt.timedelta(hours=20), 250, cost=0.01, err=0.08, lat=900, fb=0.2, seed=1)
    after = traffic(steward, NEW, at, 250, cost=0.001, err=0.01, lat=600, fb=0.2, seed=2)
    traffic(steward, OLD, started - dt.timedelta(hours=60), 50, cost=5.0, err=0.0, lat=1, fb=0, seed=3)  # outside
    out = json.loads(cli(steward.settings.home, "report", "--use-case", UC, "--window-hours", "24", "--json").stdout)
    (e,) = out["entries"]
    assert (e["rollout_id"], e["model_id"], e["previous_model_id"]) == (rid, NEW, OLD)
    cost = e["metrics"]["cost_per_request"]
    assert cost["n_before"] == 250 and cost["n_after"] == 250  # the row outside the window is not counted
    assert cost["before"] == np.mean(before["cost"]).item() or abs(cost["before"] - before["cost"].mean()) < 1e-12
    assert abs(cost["after"] - after["cost"].mean()) < 1e-12
    true_delta = after["cost"].mean() - before["cost"].mean()
    assert cost["ci_low"] <= true_delta <= cost["ci_high"] and cost["ci_high"] < 0 and cost["moved"] == "better"
    errs = e["metrics"]["error_rate"]
    assert abs(errs["before"] - before["errors"].mean()) < 1e-12 and errs["moved"] == "better"
    p95 = e["metrics"]["p95_latency_ms"]
    assert abs(p95["before"] - np.percentile(before["lat"], 95)) < 1e-6 and p95["ci_high"] < 0
    fb = e["metrics"]["feedback"]
    assert fb["ci_low"] < 0 < fb["ci_high"] and fb["moved"] == "unchanged"  # same feedback distribution
    assert e["verdict"] == "gain" and not e["contradicts"] and e["stated"]["verdict"] == "cheaper"
    assert out["totals"] == {"promotions": 1, "verdicts": {"gain": 1}, "contradicted": 0}
    text = cli(steward.settings.home, "report", "--use-case", UC, "--no-measure").stdout
    assert "cost_per_request" in text and "gain" in text


def test_a_realised_loss_against_a_stated_gain_is_flagged_and_raised_once(steward) -> None:  # type: ignore[no-untyped-def]
    base(steward)
    now = utcnow()
    started, at = now - dt.timedelta(hours=30), now - dt.timedelta(hours=25)
    promoted(steward, stated="cheaper", started=started, at=at)
    traffic(steward, OLD, started - dt.timedelta(hours=20), 200, cost=0.002, err=0.01, lat=500, fb=0.3, seed=4)
    traffic(steward, NEW, at, 200, cost=0.004, err=0.01, lat=500, fb=0.3, seed=5)  # "cheaper" doubled the cost
    out = json.loads(cli(steward.settings.home, "report", "--use-case", UC, "--window-hours", "24", "--json").stdout)
    (e,) = out["entries"]
    assert e["contradicts"] and "stated cheaper, but cost per request rose" in e["note"]
    assert e["metrics"]["cost_per_request"]["moved"] == "worse" and out["totals"]["contradicted"] == 1
    cli(steward.settings.home, "report", "--use-case", UC, "--window-hours", "24", "--json")  # measured again
    with session_scope(steward.sessions) as s:
        (v,) = list(s.scalars(select(GuardrailViolation).where(GuardrailViolation.policy == "realised_gain_contradicted")))
        assert v.model_id == NEW and v.action == "review" and v.details["rollout_id"] == e["rollout_id"]
        assert len(list(s.scalars(select(RealisedGain)))) == 1


def test_too_little_traffic_after_is_pending_not_a_verdict(steward) -> None:  # type: ignore[no-untyped-def]
    base(steward)
    now = utcnow()
    promoted(steward, stated="cheaper", started=now - dt.timedelta(hours=3), at=now - dt.timedelta(hours=2))
    traffic(steward, OLD, now - dt.timedelta(hours=20), 100, cost=0.01, err=0.0, lat=500, fb=0.0, seed=6)
    traffic(steward, NEW, now - dt.timedelta(hours=2), 10, cost=0.02, err=0.0, lat=500, fb=0.0, seed=7)
    (e,) = json.loads(cli(steward.settings.home, "report", "--use-case", UC, "--json").stdout)["entries"]
    assert e["verdict"] == "pending" and not e["contradicts"] and "30 needed" in e["note"]


def test_report_bad_input_is_one_line_naming_the_field(steward) -> None:  # type: ignore[no-untyped-def]
    base(steward)
    bad = cli(steward.settings.home, "report", "--use-case", UC, "--since", "forever", ok=False)
    assert bad.returncode != 0 and "since" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    missing = cli(steward.settings.home, "report", "--use-case", "nope", ok=False)
    assert missing.returncode != 0 and "nope" in missing.stderr
    with session_scope(steward.sessions) as s:
        assert list(s.scalars(select(RealisedGain))) == []


def test_the_agent_measures_a_promotion_and_raises_a_contradiction(steward) -> None:  # type: ignore[no-untyped-def]
    from modelsteward.agent import run_agent
    from modelsteward.storage.models import CatalogScan

    base(steward)
    now = utcnow()
    started, at = now - dt.timedelta(hours=30), now - dt.timedelta(hours=25)
    promoted(steward, stated="cheaper", started=started, at=at)
    traffic(steward, OLD, started - dt.timedelta(hours=20), 200, cost=0.002, err=0.01, lat=500, fb=0.3, seed=8)
    traffic(steward, NEW, at, 200, cost=0.004, err=0.01, lat=500, fb=0.3, seed=9)
    with session_scope(steward.sessions) as s:
        s.add(CatalogScan(provider="all", status="ok", created_at=now - dt.timedelta(hours=1)))
    res = run_agent(steward, use_case=UC)
    assert res.status == "completed", res.report
    with session_scope(steward.sessions) as s:
        (g,) = list(s.scalars(select(RealisedGain)))
        assert g.contradicts and g.model_id == NEW
        assert [v.policy for v in s.scalars(select(GuardrailViolation))] == ["realised_gain_contradicted"]
    assert "measure_gains" in res.report
