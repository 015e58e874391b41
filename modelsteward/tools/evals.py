"""Evaluation tool: ``evaluate`` a candidate against a use case's current model (writes a test result)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field

from modelsteward.bounds import EVALUATION_BOUNDS
from modelsteward.tools.base import InputModel, ToolContext, observed_use_case, tool
from modelsteward.tools.rollout import BenefitView, _View

__all__ = ["EvaluateIn", "EvaluateOut", "EvalMetricsView", "evaluate_tool"]


class EvaluateIn(InputModel):
    use_case: str = Field(min_length=1)
    model_id: str = Field(min_length=3, description="Model id provider:model of the candidate.")
    samples: int = Field(20, ge=0, le=10_000, description="Logged prompts to replay (the golden set comes on top).")
    since: str = Field("30d", description="Log window to sample prompts from.")
    max_tokens: int = Field(256, ge=1, le=32_768)
    safety: bool = True
    safety_prompts: int | None = Field(None, ge=1)
    candidate_params: dict[str, Any] = Field(default_factory=dict, description="Sampling overrides for the candidate.")
    baseline_params: dict[str, Any] = Field(default_factory=dict)
    judge_model: str | None = None
    concurrency: int = Field(4, ge=1, le=256)
    seed: int = 0
    show_progress: bool = Field(False, description="Draw a progress bar on the terminal (CLI).")
    max_seconds: float | None = Field(
        None, gt=0, le=EVALUATION_BOUNDS["max_minutes_per_cycle"].hard * 60,
        description="Wall-clock limit; past it the evaluation is stopped and recorded 'incomplete' (never a "
                    "pass or a fail).  The agent passes what is left of its cycle's evaluation budget.")


class EvalMetricsView(_View):
    """``test_results.metrics``: one section per scorer (their detail is scorer-specific), the gate's
    checks, the stated benefit (typed: the planners and the rollout read it) and the sample sizes.
    A section the evaluation adds later is kept (``extra="allow"``)."""

    _omit_none: ClassVar[frozenset[str]] = frozenset({"safety", "format", "benefit"})

    similarity: dict[str, Any] = Field(default_factory=dict)
    quality: dict[str, Any] = Field(default_factory=dict)
    performance: dict[str, Any] = Field(default_factory=dict, description="{candidate: {...}, baseline: {...}}")
    safety: dict[str, Any] | None = None
    format: dict[str, Any] | None = None
    gate: dict[str, Any] = Field(default_factory=dict, description="Per check: {status, value, limit, ...}.")
    benefit: BenefitView | None = None
    sample: dict[str, Any] = Field(default_factory=dict)


class EvaluateOut(BaseModel):
    test_result_id: int
    use_case: str
    candidate: str
    baseline: str
    verdict: str
    passed: bool
    reasons: list[str]
    sample_count: int
    metrics: EvalMetricsView
    mlflow_run_id: str | None = None
    report_path: str


def _test_recorded(inp: EvaluateIn, before: dict[str, Any], after: dict[str, Any]) -> tuple[bool, str]:
    """An evaluation shows as the candidate's latest test."""
    row: dict[str, Any] = next((m for m in observed_use_case(after, inp.use_case).get("models", [])
                                if m["id"] == inp.model_id), {})
    t = row.get("latest_test")
    return bool(t), f"latest test of {inp.model_id}: {t and t.get('verdict')}"


@tool("evaluate", input_model=EvaluateIn, output_model=EvaluateOut, mutating=True, long_running=True,
      verify=_test_recorded)
def evaluate_tool(ctx: ToolContext, inp: EvaluateIn) -> EvaluateOut:
    """Replay held-out logged prompts + golden set + red-team prompts on the candidate and the current model;
    score similarity, quality, latency, cost and safety; gate (quality >= 95% of the current model's) and
    record a test result."""
    from modelsteward.evals import EvalConfig, evaluate

    import time

    cfg = EvalConfig(candidate=inp.model_id, **inp.model_dump(exclude={"show_progress", "model_id", "max_seconds"}))
    limit = inp.max_seconds
    if limit is None and ctx.actor.startswith("agent:"):  # an agent's evaluation is always bounded
        limit = EVALUATION_BOUNDS["max_minutes_per_cycle"].hard * 60
    deadline = None if limit is None else time.monotonic() + limit

    def progress(label: str, done: int, total: int) -> None:
        ctx.report(f"{label}: {done}/{total}", done / total if total else 1.0)

    out = evaluate(ctx.steward, cfg, actor=ctx.actor, show_progress=inp.show_progress, on_progress=progress,
                   deadline=deadline, baseline_cache=ctx.eval_cache)
    return EvaluateOut(test_result_id=out.test_result_id, use_case=inp.use_case, candidate=out.candidate,
                       baseline=out.baseline, verdict=out.verdict, passed=out.passed, reasons=out.reasons,
                       sample_count=out.sample_count, metrics=EvalMetricsView.model_validate(out.metrics), mlflow_run_id=out.mlflow_run_id,
                       report_path=out.report_path)
