"""Bad input and interruptions: clear errors, nothing written half-way, statuses restored."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from modelsteward.errors import InsufficientData, InvalidInput, NotFound
from modelsteward.evals import EvalConfig, EvalInterrupted, evaluate
from modelsteward.evals.scorers import register_scorer
from modelsteward.fakes.judge import FakeJudge
from modelsteward.storage.models import EvalHoldout, TestResult
from evals_helpers import PROMPTS, seed_logs

ANSWERS = dict(PROMPTS)


def _world(steward, fake: FakeJudge, logs: bool = True) -> None:  # type: ignore[no-untyped-def]
    reg = steward.registry
    reg.register_model("custom", "good", base_url=fake.base_url)
    reg.register_model("custom", "cand", base_url=fake.base_url)
    reg.add_use_case("qa", model="custom:good")
    if logs:
        seed_logs(steward, "qa", "custom:good")


def _rows(steward) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with steward.sessions() as s:
        return (s.scalar(select(func.count()).select_from(TestResult)),
                s.scalar(select(func.count()).select_from(EvalHoldout)))


def test_unregistered_candidate_names_close_matches(steward) -> None:  # type: ignore[no-untyped-def]
    with FakeJudge() as fake:
        _world(steward, fake)
        with pytest.raises(NotFound, match=r"Unknown model 'custom:cnad'.*custom:cand"):
            evaluate(steward, EvalConfig(use_case="qa", candidate="custom:cnad"))
    assert _rows(steward) == (0, 0)


def test_unknown_use_case_and_use_case_without_current_model(steward) -> None:  # type: ignore[no-untyped-def]
    with FakeJudge() as fake:
        _world(steward, fake)
        with pytest.raises(NotFound, match="Unknown use case 'qq'"):
            evaluate(steward, EvalConfig(use_case="qq", candidate="custom:cand"))
        steward.registry.add_use_case("empty")
        with pytest.raises(InsufficientData, match="no current model"):
            evaluate(steward, EvalConfig(use_case="empty", candidate="custom:cand"))


def test_use_case_without_logs_or_golden_set(steward) -> None:  # type: ignore[no-untyped-def]
    with FakeJudge() as fake:
        _world(steward, fake, logs=False)
        with pytest.raises(InsufficientData, match="no logged primary prompts.*no golden set"):
            evaluate(steward, EvalConfig(use_case="qa", candidate="custom:cand"))
        assert fake.requests == []
    assert _rows(steward) == (0, 0)
    assert steward.registry.get_model("custom:cand").status == "discovered"


def test_candidate_equal_to_baseline_needs_other_sampling(steward) -> None:  # type: ignore[no-untyped-def]
    with FakeJudge() as fake:
        _world(steward, fake)
        with pytest.raises(InvalidInput, match="is the current model"):
            evaluate(steward, EvalConfig(use_case="qa", candidate="custom:good"))
    with pytest.raises(ValueError, match="unknown sampling parameter"):
        EvalConfig(use_case="qa", candidate="x:y", candidate_params={"temprature": 1})


def test_interrupted_eval_leaves_no_verdict_and_restores_status(steward) -> None:  # type: ignore[no-untyped-def]
    calls = []

    def interrupt(label: str, done: int, total: int) -> None:
        calls.append((label, steward.registry.get_model("custom:cand").status))
        if done >= 2:
            raise EvalInterrupted("stopped by the operator")

    with FakeJudge(answers={"good": lambda q: ANSWERS.get(q, "no"), "cand": "hm"}) as fake:
        _world(steward, fake)
        with pytest.raises(EvalInterrupted):
            evaluate(steward, EvalConfig(use_case="qa", candidate="custom:cand", samples=6, mlflow=False),
                     on_progress=interrupt)
    assert calls and all(status == "evaluating" for _, status in calls)  # marked while it runs
    assert _rows(steward) == (0, 0)
    assert steward.registry.get_model("custom:cand").status == "candidate"  # discovered -> evaluating -> candidate
    assert not list((steward.settings.workspace / "evals").glob("qa/*"))


def test_baseline_outputs_are_cached_on_disk(steward) -> None:  # type: ignore[no-untyped-def]
    with FakeJudge(answers={"good": lambda q: ANSWERS.get(q, "no"), "cand": lambda q: ANSWERS.get(q, "no")}) as fake:
        _world(steward, fake)
        cfg = EvalConfig(use_case="qa", candidate="custom:cand", samples=5, safety=False, mlflow=False)
        first = evaluate(steward, cfg)
        n_first = len(fake.requests)
        second = evaluate(steward, cfg)
        n_second = len(fake.requests) - n_first
    assert first.metrics["performance"]["baseline"]["cached"] == 0
    assert second.metrics["performance"]["baseline"]["cached"] == 5
    assert n_first == 10 and n_second == 5  # only the candidate was called again
    assert second.verdict == first.verdict == "pass"
    assert any((steward.settings.workspace / "evals" / "cache").rglob("*.json"))


def test_candidate_errors_count_and_fail_the_gate(steward) -> None:  # type: ignore[no-untyped-def]
    with FakeJudge(answers={"good": lambda q: ANSWERS.get(q, "no")}) as fake:
        _world(steward, fake)
        steward.registry.register_model("custom", "down", base_url="http://127.0.0.1:9/v1", metadata={"timeout_s": 2})
        out = evaluate(steward, EvalConfig(use_case="qa", candidate="custom:down", samples=5, safety=False,
                                           mlflow=False, retries=1))
    assert out.verdict == "fail"
    assert out.metrics["performance"]["candidate"]["error_rate"] == 1.0
    assert out.metrics["quality"]["candidate"] == 0.0


def test_duplicate_scorer_name_is_refused() -> None:
    with pytest.raises(RuntimeError, match="Scorer 'similarity' registered twice"):
        register_scorer("similarity")(lambda data: None)  # type: ignore[arg-type,return-value]


def test_cli_eval_json_and_error_line(steward) -> None:  # type: ignore[no-untyped-def]
    from modelsteward.cli import app

    with FakeJudge(answers={"good": lambda q: ANSWERS.get(q, "no"), "cand": lambda q: ANSWERS.get(q, "no")}) as fake:
        _world(steward, fake)
        runner = CliRunner()
        res = runner.invoke(app, ["eval", "--use-case", "qa", "--candidate", "custom:cand", "--samples", "5",
                                  "--no-safety", "--json"])
        assert res.exit_code == 0, res.output
        out = json.loads(res.stdout)
        assert out["verdict"] == "pass" and out["sample_count"] == 5 and out["test_result_id"] >= 1
        res = runner.invoke(app, ["eval", "--use-case", "qa", "--candidate", "custom:cand", "--samples", "5",
                                  "--no-safety"])
        assert res.exit_code == 0, res.output
        assert "verdict: PASS" in res.stdout and "quality" in res.stdout
        res = runner.invoke(app, ["eval", "--use-case", "qa", "--candidate", "custom:nope"])
        assert res.exit_code != 0
        assert isinstance(res.exception, NotFound)
