"""Fine-tuning tools: ``build_dataset``, ``fine_tune`` (long-running), ``fine_tune_status``, ``fine_tune_cancel``.

``fine_tune`` validates everything that needs no compute (base model, LoRA targets or adapter
fit, memory) before it creates the job row, so a refusal costs nothing.  With
``background=True`` it returns at once with the ``queued`` job and trains in a daemon thread,
reporting through ``ctx.report`` and the job row (``progress``, ``metrics``); otherwise it trains
in the caller's thread (CLI, demo) and returns the finished job.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Literal

from pydantic import BaseModel, Field

from modelsteward.tools.base import InputModel, ToolContext, observed_use_case, tool
from modelsteward.tools.observation import Observation
from modelsteward.training.trainer import TrainKnobs

__all__ = ["BuildDatasetIn", "BuildDatasetOut", "FineTuneIn", "FineTuneOut", "JobIn"]

log = logging.getLogger(__name__)


class BuildDatasetIn(InputModel):
    use_case: str
    since: str | None = Field(default="30d", description="window: 30d, 12h, 2w, an ISO date, or 'all'")
    min_feedback: float | None = Field(default=None, ge=-1, le=1, description="keep rows with feedback >= this")
    keep_unrated: bool = False
    initial: str | None = Field(default=None, description="initial data JSONL (default: the use case's)")
    validation_fraction: float = Field(default=0.1, ge=0, lt=1)
    near_dup_threshold: float | None = Field(default=0.8, gt=0, le=1)
    min_rows: int = Field(default=16, ge=1)
    include_imported: bool = Field(default=False, description="also learn from imported rows (origin import:*)")


class BuildDatasetOut(BaseModel):
    use_case: str
    path: str
    sha256: str
    train_rows: int
    validation_rows: int
    counts: dict[str, int]
    window: dict[str, str | None]
    mlflow_run_id: str | None = None


@tool("build_dataset", input_model=BuildDatasetIn, output_model=BuildDatasetOut, mutating=True)
def build_dataset(ctx: ToolContext, inp: BuildDatasetIn) -> BuildDatasetOut:
    """Build a filtered, de-duplicated, PII-redacted chat dataset from the use case's logs."""
    from modelsteward.training.dataset import DatasetSpec
    from modelsteward.training.pipeline import build_dataset as _build

    spec = DatasetSpec(
        use_case=inp.use_case, since=inp.since, min_feedback=inp.min_feedback, keep_unrated=inp.keep_unrated,
        initial_path=inp.initial, validation_fraction=inp.validation_fraction,
        near_dup_threshold=inp.near_dup_threshold, min_rows=inp.min_rows, include_imported=inp.include_imported,
    )
    ctx.report(f"building dataset for {inp.use_case}", 0.0)
    card = _build(ctx.steward, spec)
    ctx.report(f"dataset {card.sha256[:12]}: {card.train_rows} train / {card.validation_rows} validation", 1.0)
    return BuildDatasetOut(
        use_case=card.use_case, path=card.path, sha256=card.sha256, train_rows=card.train_rows,
        validation_rows=card.validation_rows, counts=card.counts, window=card.window, mlflow_run_id=card.mlflow_run_id,
    )


class FineTuneIn(InputModel, TrainKnobs):
    """The training knobs are ``training.trainer.TrainKnobs`` (one definition); these add what to
    train on and how to run it."""

    use_case: str
    base: str = Field(default="local:smollm2-135m-instruct", description="base model id (a local transformers model)")
    name: str | None = Field(default=None, description="registered as local:<name>")
    dataset: str | None = Field(default=None, description="a built dataset folder; default: build one now")
    since: str | None = "30d"
    min_feedback: float | None = Field(default=None, ge=-1, le=1)
    background: bool = Field(default=False, description="return at once and train in a background thread")
    queue_only: bool = Field(default=False, description="create the queued job and return (run it with "
                             "`accelerate launch -m modelsteward.training.launch --job ID`)")


class FineTuneOut(BaseModel):
    job_id: int
    status: str
    progress: float = 0.0
    result_model_id: str | None = None
    dataset_hash: str | None = None
    mlflow_run_id: str | None = None
    output_dir: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None


def _out(job: dict[str, Any]) -> FineTuneOut:
    return FineTuneOut(
        job_id=job["id"], status=job["status"], progress=job["progress"], result_model_id=job["result_model_id"],
        dataset_hash=job["dataset_hash"], mlflow_run_id=job["mlflow_run_id"], output_dir=job["output_dir"],
        metrics=job["metrics"] or {}, error=job["error"],
    )


def _job_recorded(inp: FineTuneIn, before: Observation, after: Observation) -> tuple[bool, str]:
    """A fine-tune shows as a new last job of its use case."""
    b, a = observed_use_case(before, inp.use_case), observed_use_case(after, inp.use_case)
    job = a.last_fine_tune
    return job != b.last_fine_tune, f"last job {None if job is None else job.model_dump(mode='json')}"


@tool("fine_tune", input_model=FineTuneIn, output_model=FineTuneOut, mutating=True, long_running=True,
      verify=_job_recorded)
def fine_tune(ctx: ToolContext, inp: FineTuneIn) -> FineTuneOut:
    """Fine-tune a local base model (LoRA or full) on the use case's dataset and register it as a candidate."""
    from modelsteward.training.dataset import DatasetSpec
    from modelsteward.training.pipeline import FineTuneRequest, create_job, get_job, job_dict, run_job
    from modelsteward.training.trainer import TrainConfig

    req = FineTuneRequest(
        use_case=inp.use_case, base_model_id=inp.base, method=inp.method, name=inp.name, dataset_path=inp.dataset,
        dataset=DatasetSpec(use_case=inp.use_case, since=inp.since, min_feedback=inp.min_feedback),
        train=TrainConfig(**inp.model_dump(include=set(TrainKnobs.model_fields))),
    )
    steward = ctx.steward
    job_id = create_job(steward, req)
    if inp.queue_only:
        return _out(job_dict(get_job(steward, job_id)))
    if not inp.background:
        return _out(run_job(steward, job_id, progress=ctx.report))

    def work() -> None:
        try:
            run_job(steward, job_id, progress=ctx.report, progress_bar=False)
        except Exception:  # noqa: BLE001 - recorded on the job row by run_job
            log.exception("fine-tuning job %s failed", job_id)

    threading.Thread(target=work, name=f"fine-tune-{job_id}", daemon=True).start()
    ctx.report(f"fine-tuning job {job_id} started in the background", 0.0)
    return _out(job_dict(get_job(steward, job_id)))


class JobIn(InputModel):
    job_id: int


@tool("fine_tune_status", input_model=JobIn, output_model=FineTuneOut, mutating=False)
def fine_tune_status(ctx: ToolContext, inp: JobIn) -> FineTuneOut:
    """Status, progress and metrics of a fine-tuning job."""
    from modelsteward.training.pipeline import get_job, job_dict

    return _out(job_dict(get_job(ctx.steward, inp.job_id)))


@tool("fine_tune_cancel", input_model=JobIn, output_model=FineTuneOut, mutating=True)
def fine_tune_cancel(ctx: ToolContext, inp: JobIn) -> FineTuneOut:
    """Ask a fine-tuning job to stop after its current step (it checkpoints; run it again to resume)."""
    from modelsteward.training.pipeline import job_dict, request_cancel

    return _out(job_dict(request_cancel(ctx.steward, inp.job_id)))
