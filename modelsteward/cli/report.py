"""``steward report``: the realised-gain ledger of a use case (what its promotions actually changed)."""

from __future__ import annotations

from typing import Any

import typer

from modelsteward.cli.common import JsonOpt, console, emit_json, open_ctx, table

__all__ = ["register"]


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v:+.1%}" if pct else f"{v:.4g}"


def _ci(m: dict[str, Any]) -> str:
    if m.get("ci_low") is None:
        return "-"
    return f"[{m['ci_low']:.3g}, {m['ci_high']:.3g}]"


def report(
    use_case: str = typer.Option(..., "--use-case", help="Use case whose promotions to report."),
    since: str = typer.Option("90d", "--since", help="Promotions in this window (90d, 12w)."),
    window_hours: float = typer.Option(168.0, "--window-hours", help="Hours of traffic compared before and after."),
    no_measure: bool = typer.Option(False, "--no-measure", help="Show the ledger as stored; do not measure again."),
    json_out: bool = JsonOpt,
) -> None:
    """Realised gains: cost per request, error rate, p95 latency and feedback before vs after each promotion
    (95% intervals), against the gain stated when it was promoted; contradictions are flagged."""
    from modelsteward.tools.base import call_tool
    from modelsteward.tools import report as report_tools

    ctx = open_ctx()
    args = {"use_case": use_case, "since": since, "window_hours": window_hours}
    try:
        out = call_tool(report_tools.gain_report if no_measure else report_tools.measure_gains, args, ctx)
    finally:
        ctx.steward.close()
    if json_out:
        emit_json(out)
        return
    data = out.model_dump(mode="json")
    if not data["entries"]:
        console.print(f"No promotion of {use_case} in the last {since}: nothing realised yet.")
        return
    for e in data["entries"]:
        head = (f"rollout {e['rollout_id']}: {e['previous_model_id']} -> {e['model_id']} promoted "
                f"{e['promoted_at'][:16]} ({e['window_hours']:g} h windows): [bold]{e['verdict']}[/bold]")
        console.print(head)
        rows = [(k, _fmt(m["before"]), _fmt(m["after"]), _fmt(m["relative"], pct=True), _ci(m), m["moved"],
                 f"{m['n_before']}/{m['n_after']}") for k, m in e["metrics"].items()]
        table("realised", ["metric", "before", "after", "change", "95% CI of difference", "moved", "n before/after"],
              rows)
        stated = e["stated"]
        console.print(f"stated at promotion: {stated.get('verdict')} ({stated.get('rule', '')})", markup=False)
        style = "red" if e["contradicts"] else "dim"
        console.print(f"[{style}]{e['note']}[/{style}]")
    t = data["totals"]
    console.print(f"{t['promotions']} promotion(s): {t['verdicts']}; contradicted: {t['contradicted']}")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
