"""``steward deploy``, ``steward rollout status|advance|abort``, ``steward rollback``, ``steward guard check``.

Every command acts through the tools (so the policies hold).  A step that needs a human approval
exits non-zero naming the pending approval; once someone else approved it, run the same command
again with ``--approval-id ID``.
"""

from __future__ import annotations

from typing import Any, Optional

import typer

from rich.markup import escape

from modelsteward.cli.common import JsonOpt, console, emit_json, headline, open_ctx, table

__all__ = ["register"]

rollout_app = typer.Typer(help="Inspect, advance or abort the rollout of a use case.", no_args_is_help=True)
guard_app = typer.Typer(help="Guardrails: check recent traffic and act on violations.", no_args_is_help=True)

UseCaseOpt = typer.Option(..., "--use-case", help="Use case name.")
ApprovalOpt = typer.Option(None, "--approval-id", help="Execute an approved approval of this very call.")
NoCheckOpt = typer.Option(False, "--no-check", help="Skip the model's check before it takes traffic (one tiny "
                          "completion; `steward models check`): force the change.")


def _run(name: str, args: dict[str, Any], approval_id: int | None = None, *, read: bool = False) -> Any:
    from modelsteward.tools import call_tool

    ctx = open_ctx(read=read)
    ctx.approval_id = approval_id
    try:
        return call_tool(name, args, ctx)
    finally:
        ctx.steward.close()


def _print_rollout(out: Any) -> None:
    console.print(f"[bold]{escape(out.use_case)}[/bold]: {escape(headline(out.action, out.message))}")
    ro = out.rollout
    if ro:
        steps = " -> ".join(
            f"[bold]{s:g}%[/bold]" if i == ro.step_index else f"{s:g}%" for i, s in enumerate(ro.steps)
        )
        console.print(f"  rollout {ro.id}: {ro.strategy} of {ro.candidate} (stable {ro.stable}), "
                      f"state {ro.state}, steps {steps}")
    if out.analysis:
        a = out.analysis
        c, st = a.candidate, a.stable
        console.print(f"  analysis: {a.outcome} after {a.elapsed_s:.0f}s; candidate {c.requests} req, "
                      f"error rate {_pct(c.error_rate)}; stable {st.requests} req, "
                      f"error rate {_pct(st.error_rate)}")
    table(f"routing table v{out.version}", ["model", "role", "weight %"],
          [(r.model_id, r.role, f"{r.weight:g}") for r in out.routing])


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"


def deploy(
    use_case: str = UseCaseOpt,
    model: str = typer.Option(..., "--model", help="Candidate model id (provider:model)."),
    strategy: str = typer.Option("canary", "--strategy", help="shadow | canary | full"),
    steps: Optional[str] = typer.Option(None, "--steps", help="Canary steps in percent, e.g. 5,25,50,100."),
    reason: Optional[str] = typer.Option(None, "--reason"),
    approval_id: Optional[int] = ApprovalOpt,
    no_check: bool = NoCheckOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Start a shadow, canary or full rollout of MODEL on a use case (the model's check runs first:
    a failing check refuses it naming the fix; --no-check forces it)."""
    from modelsteward.errors import InvalidInput

    step_list = None
    if steps:
        try:
            step_list = [float(p) for p in steps.split(",") if p.strip()]
        except ValueError:
            raise InvalidInput(f"--steps {steps!r} must be comma-separated percents, e.g. 5,25,50,100.") from None
    out = _run("deploy", {"use_case": use_case, "model_id": model, "strategy": strategy, "steps": step_list,
                          "reason": reason, **({"no_check": True} if no_check else {})}, approval_id)
    emit_json(out) if json_out else _print_rollout(out)


@rollout_app.command("status")
def rollout_status(use_case: str = UseCaseOpt, json_out: bool = JsonOpt) -> None:
    """The active (or latest) rollout and the live routing table."""
    out = _run("rollout_status", {"use_case": use_case}, read=True)
    emit_json(out) if json_out else _print_rollout(out)


@rollout_app.command("advance")
def rollout_advance(
    use_case: str = UseCaseOpt,
    resume: bool = typer.Option(False, "--resume", help="Resume a paused rollout (restarts its analysis window)."),
    approval_id: Optional[int] = ApprovalOpt,
    no_check: bool = NoCheckOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Analyse the current step; advance, roll back or keep waiting (a promotion to 100% checks the
    candidate first; --no-check forces it)."""
    out = _run("rollout_advance", {"use_case": use_case, "resume": resume or None,
                                   **({"no_check": True} if no_check else {})}, approval_id)
    emit_json(out) if json_out else _print_rollout(out)


@rollout_app.command("abort")
def rollout_abort(
    use_case: str = UseCaseOpt, reason: Optional[str] = typer.Option(None, "--reason"), json_out: bool = JsonOpt,
) -> None:
    """Abort the active rollout and restore the routing from before it."""
    out = _run("rollout_abort", {"use_case": use_case, "reason": reason})
    emit_json(out) if json_out else _print_rollout(out)


def rollback(
    use_case: str = UseCaseOpt,
    to: Optional[int] = typer.Option(None, "--to", help="Snapshot id (default: before the last rollout)."),
    reason: Optional[str] = typer.Option(None, "--reason"),
    json_out: bool = JsonOpt,
) -> None:
    """Restore a snapshot's routing table and config exactly (idempotent)."""
    out = _run("rollback", {"use_case": use_case, "snapshot_id": to, "reason": reason})
    emit_json(out) if json_out else _print_rollout(out)


@guard_app.command("check")
def guard_check(
    use_case: Optional[str] = typer.Option(None, "--use-case", help="One use case (default: all)."),
    json_out: bool = JsonOpt,
) -> None:
    """Check recent traffic against the guardrails; record violations and act on them."""
    out = _run("guard_check", {"use_case": use_case})
    if json_out:
        emit_json(out)
        return
    console.print(f"checked: {', '.join(out.checked) or 'no use cases'}")
    if not out.violations:
        console.print("[green]no violations[/green]")
        return
    table("guardrail violations", ["use case", "policy", "model", "measured", "threshold", "severity", "action"], [
        (v["use_case"], v["policy"], v["model_id"] or "-", f"{v['measured']:.4g}", f"{v['threshold']:.4g}",
         v["severity"], v["action"])
        for v in out.violations
    ])


def register(app: typer.Typer) -> None:
    app.command("deploy")(deploy)
    app.add_typer(rollout_app, name="rollout")
    app.command("rollback")(rollback)
    app.add_typer(guard_app, name="guard")
