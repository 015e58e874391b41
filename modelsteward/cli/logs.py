"""``steward logs import | stats | query | purge | retention``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from modelsteward.cli.common import JsonOpt, console, emit_json, err_console, open_ctx, table

if TYPE_CHECKING:
    from modelsteward.tools.logs import LogsImportResult

__all__ = ["register"]

logs_app = typer.Typer(help="Request logs (Parquet + DuckDB).", no_args_is_help=True)


@logs_app.command("import")
def logs_import(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                help="JSON lines, one JSON document, or Parquet (steward rows); for openai-batch "
                                     "the batch input file."),
    fmt: str = typer.Option("auto", "--format", help="auto, steward, otel, langfuse, litellm or openai-batch."),
    use_case: Optional[str] = typer.Option(None, "--use-case", help="Use case of rows that name none; rows naming "
                                           "another use case are refused (the file stays in this lane)."),
    output_file: Optional[Path] = typer.Option(None, "--output-file", exists=True, dir_okay=False, readable=True,
                                               help="openai-batch: the batch output file (joined on custom_id)."),
    keep_feedback: bool = typer.Option(False, "--keep-feedback", help="Keep the file's feedback scores (dropped "
                                       "by default)."),
    as_evidence: bool = typer.Option(False, "--as-evidence", help="Count the rows as this application's traffic: "
                                     "training targets, evaluation references, rollout and guardrail evidence."),
    json_out: bool = JsonOpt,
) -> None:
    """Import request logs: steward rows, OTel GenAI traces (OTLP/JSON), Langfuse observations, LiteLLM spend
    logs, OpenAI Batch files. All rows or none; rows already imported (same source id) are skipped."""
    import sys

    from modelsteward.tools import call_tool
    from modelsteward.tools import logs as logs_tools

    ctx = open_ctx()
    bar = None
    if not json_out and sys.stderr.isatty():
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                       TimeElapsedColumn(), console=err_console, transient=True)
        task = bar.add_task(f"importing {file.name}", total=1.0)
        ctx.progress = lambda msg, frac: bar.update(task, completed=frac, description=msg)
        bar.start()
    try:
        out = call_tool(logs_tools.logs_import, {"path": str(file), "format": fmt, "use_case": use_case,
                                        "output_file": str(output_file) if output_file else None,
                                        "keep_feedback": keep_feedback, "as_evidence": as_evidence}, ctx)
    finally:
        if bar is not None:
            bar.stop()
        ctx.steward.close()
    if json_out:
        emit_json(out)
        return
    console.print(import_summary(out), markup=False, emoji=False, highlight=False)  # ids and paths as written


def import_summary(out: LogsImportResult) -> str:
    """The report as a person reads it (``--json`` gives the ImportReport itself)."""
    r = out
    lines = [f"imported {_rows(r.rows)} from {r.path} ({r.format}, {r.read:,} items read in {r.seconds:.1f} s)"]
    if r.duplicates:
        lines.append(f"  already imported (same request id), skipped: {r.duplicates:,}")
    for reason, n in sorted(r.skipped.items(), key=lambda kv: -kv[1]):
        lines.append(f"  skipped {n:,}: {reason.replace('_', ' ')}")
    for uc, n in sorted(r.use_cases.items()):
        lines.append(f"  use case {uc}: {_rows(n)}")
    for mid, n in sorted(r.models.items(), key=lambda kv: -kv[1]):
        flag = "  (not in the registry: `steward models register`)" if mid in r.unknown_models else ""
        lines.append(f"  model {mid}: {_rows(n)}{flag}")
    return "\n".join(lines)


def _rows(n: int) -> str:
    return f"{n:,} row" + ("" if n == 1 else "s")


@logs_app.command("stats")
def logs_stats(
    use_case: Optional[str] = typer.Option(None, "--use-case"),
    since: str = typer.Option("7d", "--since", help="Window: 30m, 12h, 7d, 2w or all."),
    json_out: bool = JsonOpt,
) -> None:
    """Per model and role: requests, error rate, p50/p95 latency, tokens, cost, feedback."""
    from modelsteward.tools import call_tool
    from modelsteward.tools import logs as logs_tools

    ctx = open_ctx(read=True)
    try:
        out = call_tool(logs_tools.logs_stats, {"use_case": use_case, "since": since}, ctx)
    finally:
        ctx.steward.close()
    if json_out:
        emit_json(out)
        return

    def f(v: object, fmt: str) -> str:
        return "" if v is None else format(v, fmt)

    table(f"requests over {since}", ["use case", "model", "role", "count", "err %", "p50 ms", "p95 ms", "tokens in/out",
                                     "cost $", "feedback"], [
        (r["use_case"], r["model_id"], r["role"], r["count"], f(100 * r["error_rate"], ".1f"), f(r["p50_ms"], ".0f"),
         f(r["p95_ms"], ".0f"), f"{r['input_tokens']}/{r['output_tokens']}", f(r["cost_usd"], ".4f"),
         f(r["mean_feedback"], ".2f"))
        for r in out.rows
    ])


@logs_app.command("query")
def logs_query(
    sql: str,
    limit: int = typer.Option(1000, "--limit"),
    json_out: bool = JsonOpt,
) -> None:
    """Read-only SQL over the view `logs` (INSERT, COPY, ATTACH ... are refused)."""
    from modelsteward.tools import call_tool
    from modelsteward.tools import logs as logs_tools

    ctx = open_ctx()
    try:
        out = call_tool(logs_tools.query_logs, {"sql": sql, "limit": limit}, ctx)
    finally:
        ctx.steward.close()
    if json_out:
        emit_json(out.rows)
        return
    table("query", out.columns, [[r[c] for c in out.columns] for r in out.rows])
    if out.truncated:
        console.print(f"[yellow]first {limit} rows shown[/yellow]")


@logs_app.command("purge")
def logs_purge(
    use_case: str = typer.Option(..., "--use-case", help="Use case whose logged requests to delete."),
    older_than: Optional[str] = typer.Option(None, "--older-than",
                                             help="Age like 90d, 12h, 2w (default: the use case's retention)."),
    json_out: bool = JsonOpt,
) -> None:
    """Delete a use case's logged requests (raw prompts) older than an age; files are rewritten atomically."""
    from modelsteward.tools import call_tool
    from modelsteward.tools import logs as logs_tools

    ctx = open_ctx()
    try:
        out = call_tool(logs_tools.logs_purge, {"use_case": use_case, "older_than": older_than}, ctx)
    finally:
        ctx.steward.close()
    if json_out:
        emit_json(out)
        return
    console.print(f"[green]purged[/green] {out.rows_removed} rows of {out.use_case} older than {out.older_than} "
                  f"(before {out.cutoff}): {out.files_removed} files removed, {out.files_rewritten} rewritten")


@logs_app.command("retention")
def logs_retention(
    use_case: str = typer.Option(..., "--use-case"),
    days: Optional[float] = typer.Option(None, "--days", help="Keep raw prompts this many days (>= 1)."),
    keep: bool = typer.Option(False, "--keep-forever", help="Clear the TTL: keep raw prompts indefinitely."),
    json_out: bool = JsonOpt,
) -> None:
    """Set the use case's retention TTL for raw prompts (applied by `steward logs purge --use-case NAME`)."""
    from modelsteward.errors import InvalidInput
    from modelsteward.tools import call_tool
    from modelsteward.tools import logs as logs_tools

    if (days is None) == (not keep):
        raise InvalidInput("Give either --days N or --keep-forever.")
    ctx = open_ctx()
    try:
        out = call_tool(logs_tools.logs_retention, {"use_case": use_case, "days": days}, ctx)
    finally:
        ctx.steward.close()
    if json_out:
        emit_json(out)
        return
    ttl = out.retention_days
    console.print(f"{out.use_case}: " + (f"raw prompts kept {ttl:g} days" if ttl else "raw prompts kept indefinitely"))


def register(app: typer.Typer) -> None:
    app.add_typer(logs_app, name="logs")
