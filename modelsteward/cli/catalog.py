"""``steward scan`` and ``steward rank``."""

from __future__ import annotations

from typing import Optional

import typer
from rich.markup import escape

from modelsteward.cli.common import JsonOpt, console, emit_json, open_ctx, parse_weights, table

__all__ = ["register"]


def scan(
    provider: str = typer.Option(
        "all", "--provider",
        help="openrouter | openai | anthropic | google | huggingface | ollama | local | all",
    ),
    use_case: Optional[str] = typer.Option(None, "--use-case", help="also list compatible models for this use case"),
    timeout: float = typer.Option(20.0, "--timeout", help="seconds per source"),
    limit: Optional[int] = typer.Option(None, "--limit", help="max models from Hugging Face"),
    json_out: bool = JsonOpt,
) -> None:
    """Scan model catalogs into the registry; report new, gone and re-priced models per source."""
    from modelsteward.catalog.scan import resolve_providers
    from modelsteward.tools.base import call_tool
    from modelsteward.tools import catalog as catalog_tools

    resolve_providers(provider)  # unknown provider: one line listing the known ones, exit 2
    ctx = open_ctx()
    try:
        out = call_tool(catalog_tools.scan, {"provider": provider, "use_case": use_case, "timeout_s": timeout, "limit": limit},
                        ctx)
    finally:
        ctx.steward.close()
    if json_out:
        emit_json(out)
        return
    rows = []
    for s in out.sources:
        rows.append([s.provider, s.status if s.status != "error" else f"error ({s.error_kind})", s.seen, len(s.new), len(s.gone), len(s.repriced), s.skipped, s.filtered])
    table("Catalog scan", ["source", "status", "seen", "new", "gone", "re-priced", "skipped", "filtered"], rows)
    for s in out.sources:
        if s.error:  # the error names its source already ("openrouter: ... unreachable"): not twice
            console.print(f"[red]{escape(s.provider)}[/red]: {escape(s.error.removeprefix(f'{s.provider}: '))}",
                          soft_wrap=True)
        if s.status == "ok" and not s.first_scan and (s.new or s.gone):
            console.print(f"[bold]{s.provider}[/bold] new: {_short(s.new)}  gone: {_short(s.gone)}")
        for note in s.notes:
            console.print(f"[dim]{s.provider}: {note}[/dim]")
    compat = out.compatibility
    if compat is not None:
        console.print(f"use case {use_case}: {len(compat.compatible)} compatible, {len(compat.rejected)} rejected "
                      f"(`steward rank --use-case {use_case}`)")


def _short(ids: list[str], n: int = 8) -> str:
    return ", ".join(ids[:n]) + (f" (+{len(ids) - n} more)" if len(ids) > n else "") if ids else "-"


def rank(
    use_case: str = typer.Option(..., "--use-case", help="use case to rank models for"),
    weights: Optional[str] = typer.Option(None, "--weights", help="override, e.g. quality=.5,cost=.3,latency=.2"),
    top: Optional[int] = typer.Option(20, "--top", help="rows to show (JSON: all when 0)"),
    since: str = typer.Option("30d", "--since", help="log window for token mix, feedback, latency"),
    json_out: bool = JsonOpt,
) -> None:
    """Rank compatible models by weighted quality, cost and latency; mark the cost/quality Pareto front."""
    from modelsteward.tools.base import call_tool
    from modelsteward.tools import catalog as catalog_tools

    ctx = open_ctx()
    try:
        out = call_tool(catalog_tools.rank, {"use_case": use_case, "weights": parse_weights(weights), "since": since,
                                 "top": top or None}, ctx)
    finally:
        ctx.steward.close()
    if json_out:
        emit_json(out)
        return
    r = out  # Ranking
    for w in r.warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")
    wt = ", ".join(f"{k}={v:.2f}" for k, v in r.weights.items())
    console.print(f"weights {wt}; token mix: {r.mix_source}")
    rows = [[m.rank, m.model_id, f"{m.score:.3f}", f"{m.quality:.2f} ({m.quality_source})",
             "?" if m.cost_per_m is None else f"{m.cost_per_m:.4g}", f"{m.latency_ms:.0f} ({m.latency_source})",
             f"{m.confidence:.2f}", "*" if m.pareto else "", m.reason] for m in r.ranked]
    table(f"Ranking for {use_case}", ["#", "model", "score", "quality", "$/M blended", "p50 ms", "conf", "pareto",
                                      "reason"], rows)
    console.print(f"Pareto front (cost vs quality): {', '.join(r.pareto_front) or '-'}")
    console.print(f"{len(r.rejected)} incompatible model(s) left out")
    for note in r.notes:
        console.print(f"[dim]{note}[/dim]")



def register(app: typer.Typer) -> None:
    app.command("scan")(scan)
    app.command("rank")(rank)
