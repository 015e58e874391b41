"""``steward logs import | stats | query | purge | retention``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from modelsteward.cli.common import JsonOpt, console, emit_json, open_ctx, table

__all__ = ["register"]

logs_app = typer.Typer(help="Request logs (Parquet + DuckDB).", no_args_is_help=True)


@logs_app.command("import")
def logs_import(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="A .jsonl or .parquet file."),
    json_out: bool = JsonOpt,
) -> None:
    """Import JSONL or Parquet rows with the DESIGN.md log columns (all rows or none)."""
    from modelsteward.tools import call_tool

    ctx = open_ctx()
    try:
        out = call_tool("logs_import", {"path": str(file)}, ctx)
    finally:
        ctx.steward.close()
    if json_out:
        emit_json(out)
    else:
        console.print(f"[green]imported[/green] {out.rows} rows from {out.path}: {out.use_cases}")  # type: ignore[attr-defined]


@logs_app.command("stats")
def logs_stats(
    use_case: Optional[str] = typer.Option(None, "--use-case"),
    since: str = typer.Option("7d", "--since", help="Window: 30m, 12h, 7d, 2w or all."),
    json_out: bool = JsonOpt,
) -> None:
    """Per model and role: requests, error rate, p50/p95 latency, tokens, cost, feedback."""
    from modelsteward.tools import call_tool

    ctx = open_ctx()
    try:
        out = call_tool("logs_stats", {"use_case": use_case, "since": since}, ctx)
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
        for r in out.rows  # type: ignore[attr-defined]
    ])


@logs_app.command("query")
def logs_query(
    sql: str,
    limit: int = typer.Option(1000, "--limit"),
    json_out: bool = JsonOpt,
) -> None:
    """Read-only SQL over the view `logs` (INSERT, COPY, ATTACH ... are refused)."""
    from modelsteward.tools import call_tool

    ctx = open_ctx()
    try:
        out = call_tool("query_logs", {"sql": sql, "limit": limit}, ctx)
    finally:
        ctx.steward.close()
    if json_out:
        emit_json(out.rows)  # type: ignore[attr-defined]
        return
    table("query", out.columns, [[r[c] for c in out.columns] for r in out.rows])  # type: ignore[attr-defined]
    if out.truncated:  # type: ignore[attr-defined]
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

    ctx = open_ctx()
    try:
        out = call_tool("logs_purge", {"use_case": use_case, "older_than": older_than}, ctx)
    finally:
        ctx.steward.close()
    if json_out:
        emit_json(out)
        return
    console.print(f"[green]purged[/green] {out.rows_removed} rows of {out.use_case} older than {out.older_than} "  # type: ignore[attr-defined]
                  f"(before {out.cutoff}): {out.files_removed} files removed, {out.files_rewritten} rewritten")  # type: ignore[attr-defined]


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

    if (days is None) == (not keep):
        raise InvalidInput("Give either --days N or --keep-forever.")
    ctx = open_ctx()
    try:
        out = call_tool("logs_retention", {"use_case": use_case, "days": days}, ctx)
    finally:
        ctx.steward.close()
    if json_out:
        emit_json(out)
        return
    ttl = out.retention_days  # type: ignore[attr-defined]
    console.print(f"{out.use_case}: " + (f"raw prompts kept {ttl:g} days" if ttl else "raw prompts kept indefinitely"))  # type: ignore[attr-defined]


def register(app: typer.Typer) -> None:
    app.add_typer(logs_app, name="logs")
