"""``steward dataset build`` and ``steward finetune`` (contract names in DESIGN.md; extras are additive)."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from modelsteward.cli.common import JsonOpt, console, emit_json, open_ctx, table

__all__ = ["register"]

dataset_app = typer.Typer(help="Fine-tuning datasets built from the request logs.", no_args_is_help=True)


@dataset_app.command("build")
def dataset_build(
    use_case: str = typer.Option(..., "--use-case", help="Use case name."),
    since: str = typer.Option("30d", "--since", help="Log window: 30d, 12h, 2w, an ISO date, or 'all'."),
    min_feedback: Optional[float] = typer.Option(None, "--min-feedback", help="Keep rows with feedback >= X (-1..1)."),
    keep_unrated: bool = typer.Option(False, "--keep-unrated", help="With --min-feedback, keep rows nobody rated."),
    initial: Optional[str] = typer.Option(None, "--initial", help="Initial data JSONL (default: the use case's)."),
    validation: float = typer.Option(0.1, "--validation", min=0.0, max=0.99, help="Validation fraction."),
    near_dup: float = typer.Option(0.8, "--near-dup", min=0.01, max=1.0, help="Near-duplicate Jaccard threshold "
                                   "(1 disables)."),
    min_rows: int = typer.Option(16, "--min-rows", min=1, help="Refuse when fewer training rows remain."),
    include_imported: bool = typer.Option(False, "--include-imported", help="Also learn from imported rows "
                                          "(`steward logs import`: another system's answers; left out by default)."),
    as_json: bool = JsonOpt,
) -> None:
    """Build a filtered, de-duplicated, PII-redacted chat dataset (train/validation + card)."""
    from modelsteward.tools import call_tool
    from modelsteward.tools import training as training_tools
    from modelsteward.tools.training import BuildDatasetOut

    ctx = open_ctx()
    try:
        out: BuildDatasetOut = call_tool(training_tools.build_dataset, {
            "use_case": use_case, "since": since, "min_feedback": min_feedback, "keep_unrated": keep_unrated,
            "initial": initial, "validation_fraction": validation,
            "near_dup_threshold": None if near_dup >= 1.0 else near_dup, "min_rows": min_rows,
            "include_imported": include_imported,
        }, ctx)
    finally:
        ctx.steward.close()
    if as_json:
        emit_json(out)
        return
    table(f"dataset for {out.use_case} ({out.window.get('since') or 'all'} .. {out.window.get('until')})",
          ["stage", "rows"], list(out.counts.items()))
    console.print(f"{out.train_rows} train / {out.validation_rows} validation rows, sha256 {out.sha256[:16]}",
                  highlight=False)
    console.print(f"written to {out.path}", highlight=False)


def finetune_cmd(
    use_case: str = typer.Option(..., "--use-case", help="Use case name."),
    base: str = typer.Option("local:smollm2-135m-instruct", "--base", help="Base model id (a local model)."),
    method: str = typer.Option("lora", "--method", help="lora or full."),
    max_steps: int = typer.Option(60, "--max-steps", min=1, help="Optimiser steps."),
    name: Optional[str] = typer.Option(None, "--name", help="Register the result as local:NAME."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="A built dataset folder (default: build one)."),
    since: str = typer.Option("30d", "--since", help="Log window when building the dataset."),
    min_feedback: Optional[float] = typer.Option(None, "--min-feedback", help="Feedback filter when building."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate (default 2e-4 LoRA, 2e-5 full)."),
    batch_size: int = typer.Option(4, "--batch-size", min=1),
    grad_accum: int = typer.Option(1, "--grad-accum", min=1, help="Micro-batches per optimiser step."),
    max_seq_len: int = typer.Option(512, "--max-seq-len", min=16),
    packing: bool = typer.Option(False, "--packing", help="Pack several examples per row."),
    lora_r: int = typer.Option(8, "--lora-r", min=1),
    eval_every: int = typer.Option(20, "--eval-every", min=1, help="Validation (and checkpoint) cadence in steps."),
    queue_only: bool = typer.Option(False, "--queue-only", help="Only create the job; run it on several processes "
                                    "with `accelerate launch -m modelsteward.training.launch --job ID`."),
    as_json: bool = JsonOpt,
) -> None:
    """Fine-tune a local base model on the use case's data and register it as a candidate."""
    from modelsteward.tools import call_tool
    from modelsteward.tools import training as training_tools
    from modelsteward.tools.training import FineTuneOut

    ctx = open_ctx()
    if not as_json and sys.stderr.isatty():
        ctx.progress = lambda msg, frac: None  # the trainer's progress bar already shows steps
    try:
        out: FineTuneOut = call_tool(training_tools.fine_tune, {
            "use_case": use_case, "base": base, "method": method, "max_steps": max_steps, "name": name,
            "dataset": dataset, "since": since, "min_feedback": min_feedback, "learning_rate": lr,
            "batch_size": batch_size, "grad_accum": grad_accum, "max_seq_len": max_seq_len, "packing": packing,
            "lora_r": lora_r, "eval_every": eval_every, "queue_only": queue_only,
        }, ctx)
    finally:
        ctx.steward.close()
    if as_json:
        emit_json(out)
        return
    if queue_only:
        console.print(f"queued job {out.job_id}; run it with: accelerate launch --num_processes N "
                      f"-m modelsteward.training.launch --job {out.job_id}", highlight=False)
        return
    m = out.metrics
    table(f"fine-tuning job {out.job_id}: {out.status}", ["field", "value"], [
        ("result model", out.result_model_id), ("steps", m.get("steps")),
        ("first train loss", _f(m.get("first_train_loss"))), ("final train loss", _f(m.get("train_loss"))),
        ("best validation loss", _f(m.get("best_val_loss"))), ("tokens/s", _f(m.get("tokens_per_s"))),
        ("dataset sha256", (out.dataset_hash or "")[:16]), ("MLflow run", out.mlflow_run_id),
        ("output", m.get("output_path")),
    ])


def _f(v: object) -> str:
    return f"{v:.4f}" if isinstance(v, float) else ("-" if v is None else str(v))


def register(app: typer.Typer) -> None:
    app.add_typer(dataset_app, name="dataset")
    app.command("finetune")(finetune_cmd)
