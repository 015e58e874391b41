"""``steward demo``: the whole loop on the embedded defaults (see modelsteward/demo/run.py)."""

from __future__ import annotations

import typer

from modelsteward.cli.common import JsonOpt, emit_json

__all__ = ["register"]


def demo(
    fresh: bool = typer.Option(False, "--fresh", help="Delete the workspace first and start over."),
    requests: int = typer.Option(200, "--requests", min=1, help="Initial requests through the gateway."),
    step_requests: int = typer.Option(24, "--step-requests", min=1, help="Requests per analysis window."),
    finetune_steps: int = typer.Option(20, "--finetune-steps", min=1, help="LoRA optimisation steps."),
    max_cycles: int = typer.Option(14, "--max-cycles", min=1, help="Agent cycles at most."),
    port: int = typer.Option(0, "--port", help="Port for steward serve (0: a free one)."),
    short: bool = typer.Option(False, "--short", help="A shortened run (CI): fewer requests and steps, same path."),
    json_out: bool = JsonOpt,
) -> None:
    """Run the closed loop offline: traffic, scan, dataset, LoRA fine-tune, eval, shadow -> canary, approval."""
    from modelsteward.demo.run import DemoOptions, run_demo

    opts = DemoOptions(fresh=fresh, requests=requests, step_requests=step_requests, finetune_steps=finetune_steps,
                       max_cycles=max_cycles, port=port, json_out=json_out)
    if short:
        opts.requests, opts.step_requests, opts.finetune_steps = min(requests, 64), min(step_requests, 12), 6
        opts.learning_rate = 1e-5  # a short run barely moves the weights: the gate can tell it apart quickly
        opts.max_tokens, opts.eval_samples, opts.window_requests, opts.min_feedback_rows = 16, 6, 10, 5
        opts.dataset_min_feedback = 0.5  # 64 requests hold too few +1 answers for a dataset
    report = run_demo(opts)
    if json_out:
        emit_json(report.as_dict())


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
