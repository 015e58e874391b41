"""Evaluation tool: ``evaluate`` a candidate against a use case's current model (writes a test result)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from modelsteward.tools.base import InputModel, ToolContext, tool

__all__ = ["EvaluateIn", "EvaluateOut", "evaluate_tool"]


class EvaluateIn(InputModel):
    use_case: str = Field(min_length=1)
    candidate: str = Field(min_length=3, description="Model id provider:model of the candidate.")
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


class EvaluateOut(BaseModel):
    test_result_id: int
    use_case: str
    candidate: str
    baseline: str
    verdict: str
    passed: bool
    reasons: list[str]
    sample_count: int
    metrics: dict[str, Any]
    mlflow_run_id: str | None = None
    report_path: str


@tool("evaluate", input_model=EvaluateIn, output_model=EvaluateOut, mutating=True, long_running=True)
def evaluate_tool(ctx: ToolContext, inp: EvaluateIn) -> EvaluateOut:
    """Replay held-out logged prompts + golden set + red-team prompts on the candidate and the current model;
    score similarity, quality, latency, cost and safety; gate (quality >= 95% of the current model's) and
    record a test result."""
    from modelsteward.evals import EvalConfig, evaluate

    cfg = EvalConfig(**inp.model_dump(exclude={"show_progress"}))

    def progress(label: str, done: int, total: int) -> None:
        ctx.report(f"{label}: {done}/{total}", done / total if total else 1.0)

    out = evaluate(ctx.steward, cfg, actor=ctx.actor, show_progress=inp.show_progress, on_progress=progress)
    return EvaluateOut(test_result_id=out.test_result_id, use_case=inp.use_case, candidate=out.candidate,
                       baseline=out.baseline, verdict=out.verdict, passed=out.passed, reasons=out.reasons,
                       sample_count=out.sample_count, metrics=out.metrics, mlflow_run_id=out.mlflow_run_id,
                       report_path=out.report_path)
