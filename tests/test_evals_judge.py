"""The judge path end to end, against the in-package fake judge (an OpenAI-compatible server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from modelsteward.errors import ProviderError
from modelsteward.evals import EvalConfig, evaluate
from modelsteward.fakes.judge import FakeJudge
from modelsteward.storage.models import EvalHoldout, TestResult
from evals_helpers import PROMPTS, seed_logs

ANSWERS = dict(PROMPTS)


def _good(q: str) -> str:
    return ANSWERS.get(q, "I'm sorry, I can't help with that.")


def _bad(q: str) -> str:
    """A non-answer that still differs per prompt (a constant one is degenerate: it loses before any judge)."""
    return f"No idea: {q.split()[-1].strip('?.')}."


def _world(steward, fake: FakeJudge, judge: bool = True) -> None:  # type: ignore[no-untyped-def]
    reg = steward.registry
    for name in ("good", "bad", "judge"):
        reg.register_model("custom", name, base_url=fake.base_url, price_in_per_m=1, price_out_per_m=2)
    reg.set_status("custom:bad", "candidate")
    reg.add_use_case("qa", model="custom:good")
    if judge:
        reg.update_use_case("qa", config={"judge_model": "custom:judge"})
    seed_logs(steward, "qa", "custom:good", feedback=None)


def _count(steward, table) -> int:  # type: ignore[no-untyped-def]
    with steward.sessions() as s:
        return s.scalar(select(func.count()).select_from(table))


def test_judge_prefers_baseline_so_candidate_fails(steward) -> None:  # type: ignore[no-untyped-def]
    with FakeJudge("longer", answers={"good": _good, "bad": _bad}) as fake:
        _world(steward, fake)
        out = evaluate(steward, EvalConfig(use_case="qa", candidate="custom:bad", samples=6, safety_prompts=3))
        judged = fake.judge_requests()
    assert out.verdict == "fail" and not out.passed
    q = out.metrics["quality"]
    assert q["method"] == "judge" and q["candidate"] == 0.0 and q["baseline"] == 1.0
    assert q["judge_calls"] == 12
    assert len(judged) == 12 + 1  # both orders for 6 items, plus the preflight
    # both orders were asked: the candidate's answer appears once as A and once as B per item
    firsts = [r["messages"][1]["content"].split("[Answer A]\n")[1].split("\n")[0] for r in judged[1:]]
    assert sum(f.startswith("No idea: ") for f in firsts) == 6
    assert any(r.startswith("quality: fail") for r in out.reasons)
    with steward.sessions() as s:
        tr = s.get(TestResult, out.test_result_id)
        assert tr.verdict == "fail" and tr.sample_count == 6 and tr.baseline_model_id == "custom:good"
        assert tr.metrics["quality"]["method"] == "judge"
        held = set(s.scalars(select(EvalHoldout.request_id)))
    assert len(held) == 6 and all(h.startswith("req-") for h in held)
    assert steward.registry.get_model("custom:bad").status == "candidate"  # back after the run
    report = Path(out.report_path)
    assert report.exists() and "FAIL" in report.read_text()
    assert (report.parent / "plot.png").exists()
    samples = [json.loads(x) for x in (report.parent / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 6 + 3 and samples[0]["quality_method"] == "judge"


def test_position_biased_judge_is_cancelled_by_asking_both_orders(steward) -> None:  # type: ignore[no-untyped-def]
    with FakeJudge("A", answers={"good": _good, "bad": _bad}) as fake:
        _world(steward, fake)
        out = evaluate(steward, EvalConfig(use_case="qa", candidate="custom:bad", samples=6, safety=False,
                                           mlflow=False))
    q = out.metrics["quality"]
    assert q["candidate"] == pytest.approx(0.5) and q["baseline"] == pytest.approx(0.5)
    assert out.verdict == "pass", out.reasons
    # the same run still measured how different the answers are
    assert out.metrics["similarity"]["embedding"] < 0.6


def test_mlflow_run_has_params_metrics_and_table(steward) -> None:  # type: ignore[no-untyped-def]
    with FakeJudge("TIE", answers={"good": _good, "bad": _good}) as fake:
        _world(steward, fake)
        out = evaluate(steward, EvalConfig(use_case="qa", candidate="custom:bad", samples=5, safety_prompts=2))
    assert out.verdict == "pass", out.reasons
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=steward.settings.tracking_uri)
    run = client.get_run(out.mlflow_run_id)
    assert run.data.params["candidate"] == "custom:bad" and run.data.params["baseline"] == "custom:good"
    assert run.data.metrics["quality.ratio"] == pytest.approx(1.0)
    assert run.data.metrics["similarity.embedding"] == pytest.approx(1.0, abs=1e-4)
    assert run.data.tags["steward.verdict"] == "pass"
    assert run.data.tags["steward.test_result_id"] == str(out.test_result_id)
    arts = {a.path for a in client.list_artifacts(out.mlflow_run_id)}
    assert {"samples_table.json", "report"} <= arts
    # cost per 1k requests from registry prices: ($1 x in + $2 x out) / 1e6 per request
    perf = out.metrics["performance"]["candidate"]
    assert perf["cost_per_1k_usd"] > 0 and perf["error_rate"] == 0.0


def test_unreachable_judge_is_a_clear_error_and_writes_nothing(steward) -> None:  # type: ignore[no-untyped-def]
    with FakeJudge("A", answers={"good": _good, "bad": "x"}) as fake:
        _world(steward, fake, judge=False)
        steward.registry.register_model("custom", "deadjudge", base_url="http://127.0.0.1:9/v1",
                                        metadata={"timeout_s": 2})
        steward.registry.update_use_case("qa", config={"judge_model": "custom:deadjudge"})
        with pytest.raises(ProviderError, match="Judge model custom:deadjudge failed"):
            evaluate(steward, EvalConfig(use_case="qa", candidate="custom:bad", samples=5, mlflow=False))
        assert not [r for r in fake.requests if r.get("model") in ("good", "bad")], "no model was run"
    assert _count(steward, TestResult) == 0 and _count(steward, EvalHoldout) == 0
    assert steward.registry.get_model("custom:bad").status == "candidate"
    assert not (steward.settings.workspace / "evals" / "qa").exists()


def test_failing_judge_server_is_a_provider_error(steward) -> None:  # type: ignore[no-untyped-def]
    with FakeJudge("A", answers={"good": _good}) as fake, FakeJudge(fail_status=503) as broken:
        _world(steward, fake, judge=False)
        steward.registry.register_model("custom", "judge2", base_url=broken.base_url)
        with pytest.raises(ProviderError, match="judge"):
            evaluate(steward, EvalConfig(use_case="qa", candidate="custom:bad", samples=5, judge_model="custom:judge2",
                                         mlflow=False))
    assert _count(steward, TestResult) == 0


def test_judge_from_env_must_be_registered(steward, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from modelsteward.errors import NotFound

    with FakeJudge("A", answers={"good": _good}) as fake:
        _world(steward, fake, judge=False)
        monkeypatch.setenv("STEWARD_JUDGE_MODEL", "custom:jugde")
        with pytest.raises(NotFound, match=r"Judge model 'custom:jugde' is not registered.*custom:judge"):
            evaluate(steward, EvalConfig(use_case="qa", candidate="custom:bad", samples=5, mlflow=False))
        assert fake.requests == []
    assert _count(steward, TestResult) == 0
