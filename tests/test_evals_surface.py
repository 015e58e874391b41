"""The evals package's public surface, and the ``evaluate`` tool through ``call_tool``."""

from __future__ import annotations

import pytest

import modelsteward.evals as evals
from modelsteward.errors import InvalidInput
from modelsteward.fakes.judge import FakeJudge
from evals_helpers import PROMPTS, seed_logs


def test_exported_members() -> None:
    assert sorted(evals.__all__) == sorted([
        "EvalConfig", "EvalOutcome", "evaluate", "JUDGE_ENV", "GateConfig", "Check", "Verdict", "decide",
        "quality_check", "bootstrap_ratio_ci", "EvalItem", "ReplaySet", "build_replay_set", "load_golden_set",
        "load_redteam", "Generation", "OutputCache", "CycleCache", "EvalInterrupted", "SCORERS", "EvalData", "ScoreResult",
        "register_scorer", "Benefit", "benefit_of", "judge_benefit", "online_benefit",
    ])
    for name in evals.__all__:
        assert hasattr(evals, name), name
    assert set(evals.SCORERS) == {"similarity", "quality", "performance", "safety", "format", "tool_calls", "structured"}


def test_evaluate_tool_is_mutating_and_validates_input(steward) -> None:  # type: ignore[no-untyped-def]
    from modelsteward.tools import ToolContext, call_tool, get_tool

    spec = get_tool("evaluate")
    assert spec.mutating and spec.long_running
    ctx = ToolContext(steward=steward, actor="test")
    with pytest.raises(InvalidInput, match="samples"):
        call_tool("evaluate", {"use_case": "qa", "model_id": "custom:x", "samples": -1}, ctx)
    answers = {"good": lambda q: dict(PROMPTS).get(q, "no"), "cand": lambda q: dict(PROMPTS).get(q, "no")}
    with FakeJudge(answers=answers) as fake:
        steward.registry.register_model("custom", "good", base_url=fake.base_url)
        steward.registry.register_model("custom", "cand", base_url=fake.base_url)
        steward.registry.add_use_case("qa", model="custom:good")
        seed_logs(steward, "qa", "custom:good")
        seen: list[float] = []
        ctx.progress = lambda msg, frac: seen.append(frac)
        out = call_tool("evaluate", {"use_case": "qa", "model_id": "custom:cand", "samples": 5, "safety": False,
                                     "show_progress": True}, ctx)
    assert out.verdict == "pass" and out.baseline == "custom:good" and out.sample_count == 5  # type: ignore[attr-defined]
    assert seen and max(seen) == 1.0
