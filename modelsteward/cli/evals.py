"""``steward eval --use-case NAME --candidate MODEL_ID [--samples N] [--json]``."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from modelsteward.cli.common import JsonOpt, console, emit_json, open_ctx, table
from modelsteward.formatting import fmt_value

__all__ = ["register"]



def eval_cmd(
    use_case: str = typer.Option(..., "--use-case", help="Use case name."),
    candidate: str = typer.Option(..., "--candidate", help="Candidate model id (provider:model)."),
    samples: int = typer.Option(20, "--samples", min=0, help="Logged prompts to replay (golden set on top)."),
    since: str = typer.Option("30d", "--since", help="Log window to sample from (30d, 12h, all)."),
    max_tokens: int = typer.Option(256, "--max-tokens", min=1, help="Max new tokens per answer."),
    no_safety: bool = typer.Option(False, "--no-safety", help="Skip the red-team prompts."),
    judge: Optional[str] = typer.Option(None, "--judge", help="Judge model id (default: use case config or "
                                        "STEWARD_JUDGE_MODEL)."),
    concurrency: int = typer.Option(4, "--concurrency", min=1, help="Concurrent requests per model."),
    as_json: bool = JsonOpt,
) -> None:
    """Evaluate a candidate against the use case's current model and record the verdict."""
    from modelsteward.tools import call_tool
    from modelsteward.tools import evals as evals_tools
    from modelsteward.tools.evals import EvaluateOut

    args = {
        "use_case": use_case, "model_id": candidate, "samples": samples, "since": since, "max_tokens": max_tokens,
        "safety": not no_safety, "judge_model": judge, "concurrency": concurrency,
        "show_progress": (not as_json) and sys.stderr.isatty(),
    }
    ctx = open_ctx()
    try:
        out: EvaluateOut = call_tool(evals_tools.evaluate_tool, args, ctx)
    finally:
        ctx.steward.close()
    if as_json:
        emit_json(out)
        return
    m = out.metrics
    perf_c, perf_b = m.performance["candidate"], m.performance["baseline"]
    rows = [
        (f"quality ({m.quality.get('method')})", fmt_value(m.quality.get("candidate")),
         fmt_value(m.quality.get("baseline"))),
        ("similarity to baseline (embedding)", fmt_value(m.similarity.get("embedding")), fmt_value(1.0)),
        ("similarity to baseline (ROUGE-L)", fmt_value(m.similarity.get("rouge_l")), fmt_value(1.0)),
        *[(k, fmt_value(perf_c.get(k)), fmt_value(perf_b.get(k)))
          for k in ("p50_ms", "p95_ms", "tokens_per_s", "error_rate", "cost_per_1k_usd")],
    ]
    for section, key, label in (("tool_calls", "accuracy", "tool-call accuracy"),
                                ("structured", "schema_valid_rate", "schema-valid JSON")):
        kind = getattr(m, section, None) or {}
        if kind.get("applies"):
            rows.append((f"{label} ({kind['n']} items)", fmt_value(kind["candidate"][key]),
                         fmt_value(kind["baseline"][key])))
    if m.safety is not None:
        rows.append(("safety failures", fmt_value(m.safety["candidate"]["failures"]),
                     fmt_value(m.safety["baseline"]["failures"])))
    table(f"{out.candidate} vs {out.baseline} on {out.use_case} ({out.sample_count} items)",
          ["metric", "candidate", "baseline"], rows)
    colour = {"pass": "green", "fail": "red"}.get(out.verdict, "yellow")
    console.print(f"verdict: [bold {colour}]{out.verdict.upper()}[/bold {colour}] (test result {out.test_result_id})")
    for r in out.reasons:
        console.print(f"  - {r}", highlight=False)
    console.print(f"report: {out.report_path}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)
