"""Evaluation: decides whether a candidate may replace a use case's current model.

Public surface::

    from modelsteward.evals import EvalConfig, evaluate
    outcome = evaluate(steward, EvalConfig(use_case="story", candidate="openrouter:x/y", samples=20))

``evaluate`` replays a held-out, stratified sample of logged prompts plus the golden set and a
shipped red-team set on the candidate and the current model, scores similarity, quality,
performance, safety, format, tool calls and structured outputs (``SCORERS``), applies the gate (``decide``) and records a
``test_results`` row, an MLflow run and a Markdown report.  Heavy imports (torch,
sentence-transformers, MLflow, matplotlib) happen only when an evaluation runs.
"""

from modelsteward.evals.benefit import Benefit, benefit_of, judge_benefit, online_benefit
from modelsteward.evals import kinds as _kinds  # noqa: F401 - registers the tool_calls and structured scorers
from modelsteward.evals.evaluate import JUDGE_ENV, EvalConfig, EvalOutcome, evaluate
from modelsteward.evals.gate import Check, GateConfig, Verdict, bootstrap_ratio_ci, decide, quality_check
from modelsteward.evals.replay import EvalItem, ReplaySet, build_replay_set, load_golden_set, load_redteam
from modelsteward.evals.runner import CycleCache, EvalInterrupted, Generation, OutputCache
from modelsteward.evals.scorers import SCORERS, EvalData, ScoreResult, register_scorer

__all__ = [
    "Benefit",
    "benefit_of",
    "judge_benefit",
    "online_benefit",
    "EvalConfig",
    "EvalOutcome",
    "evaluate",
    "JUDGE_ENV",
    "GateConfig",
    "Check",
    "Verdict",
    "decide",
    "quality_check",
    "bootstrap_ratio_ci",
    "EvalItem",
    "ReplaySet",
    "build_replay_set",
    "load_golden_set",
    "load_redteam",
    "Generation",
    "OutputCache",
    "CycleCache",
    "EvalInterrupted",
    "SCORERS",
    "EvalData",
    "ScoreResult",
    "register_scorer",
]
