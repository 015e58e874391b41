"""``steward agent run|schedule|resume``, ``steward chat``, ``steward approvals list|approve|reject``.

Light imports only at the top; the agent (LangGraph, LangChain) loads inside the commands.
Identity (``cli_identity``): the token in ``STEWARD_TOKEN`` (its name and role; deciding needs
a token of role approver) or, without one, the effective OS user, recorded as ``cli:NAME``.  ``--as NAME`` is kept for
old scripts but may only restate that identity; any other name is refused (exit 2).  Deciding and
carrying out is the ``approval_decide`` tool's (the same path as the API and the console).
"""

from __future__ import annotations

from typing import Any

import typer

from modelsteward.cli.common import JsonOpt, cli_identity, console, emit_json, err_console, open_ctx, table

__all__ = ["register"]

AS_HELP = ("Only restates who you are (the STEWARD_TOKEN token's name, else the OS user); "
           "any other name is refused.")


def _print_result(res: Any, as_json: bool) -> None:
    if as_json:
        emit_json(res.to_dict())
        return
    console.print(res.report, markup=False, highlight=False)
    if res.status == "failed":
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    agent_app = typer.Typer(help="The meta-management agent: one cycle, a schedule, resuming runs.", no_args_is_help=True)
    approvals_app = typer.Typer(help="Human approvals of risky actions.", no_args_is_help=True)
    app.add_typer(agent_app, name="agent")
    app.add_typer(approvals_app, name="approvals")
    _register_agent(agent_app)
    _register_chat(app)
    _register_approvals(approvals_app)


def _register_agent(agent_app: typer.Typer) -> None:
    """``steward agent run|resume|schedule``."""

    @agent_app.command("run")
    def agent_run(
        use_case: str = typer.Option(None, "--use-case", help="Limit the cycle to one use case."),
        goal: str = typer.Option("", "--goal", help="What you want from this cycle (free text)."),
        max_steps: int = typer.Option(20, "--max-steps", min=1, help="Planner turns before the run stops."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Run one agent cycle now and print its report (resumes a killed run first)."""
        from modelsteward.agent.runner import run_agent

        ctx = open_ctx()
        res = run_agent(ctx.steward, goal=goal, use_case=use_case, trigger="cli", max_steps=max_steps,
                        started_by=ctx.actor)
        _print_result(res, as_json)

    @agent_app.command("resume")
    def agent_resume(run_id: int = typer.Argument(..., help="Agent run id."), as_json: bool = JsonOpt) -> None:
        """Continue a killed run from its last checkpoint."""
        from modelsteward.agent.runner import resume_run

        ctx = open_ctx()
        _print_result(resume_run(ctx.steward, run_id), as_json)

    @agent_app.command("schedule")
    def agent_schedule(
        every: str = typer.Option(..., "--every", help="Interval, e.g. 30m, 1h, 1d."),
        use_case: str = typer.Option(None, "--use-case"),
        goal: str = typer.Option("", "--goal"),
        max_runs: int = typer.Option(None, "--max-runs", min=1, help="Stop after this many ticks (tests)."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Run the agent on a schedule: no overlapping runs, a missed run is not run twice."""
        from modelsteward.agent.scheduler import parse_every, run_schedule

        period = parse_every(every)
        ctx = open_ctx()
        if use_case:
            ctx.steward.registry.get_use_case(use_case)

        def show(t: Any) -> None:
            if not as_json:
                console.print(f"{t.at} {t.status}" + (f" run {t.run_id}" if t.run_id else "") + (f": {t.detail}" if t.detail else ""),
                              markup=False, highlight=False)

        ticks = run_schedule(ctx.steward, period, use_case=use_case, goal=goal, max_runs=max_runs, on_tick=show)
        if as_json:
            emit_json([t.to_dict() for t in ticks])


def _register_chat(app: typer.Typer) -> None:
    """``steward chat``."""

    @app.command("chat")
    def chat(
        use_case: str = typer.Option(None, "--use-case", help="Scope the conversation to one use case."),
        message: list[str] = typer.Option(None, "--message", "-m", help="Ask this and exit (repeatable)."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Operator console: ask questions (read-only SQL over logs too), propose guarded actions."""
        import sys

        from modelsteward.agent.chat import ChatSession

        ctx = open_ctx()
        if use_case:
            ctx.steward.registry.get_use_case(use_case)
        session = ChatSession(ctx.steward, use_case=use_case, actor=ctx.actor)
        interactive = not message and sys.stdin.isatty()
        lines = iter(message) if message else None
        replies = []
        if interactive:
            console.print(f"Model Steward console ({session.planner.name}). Type 'help', or 'exit' to leave.")
        while True:
            if lines is not None:
                text = next(lines, None)
            else:
                try:
                    text = input("steward> ") if interactive else sys.stdin.readline()
                except EOFError:
                    text = None
                if text == "" and not interactive:
                    text = None
            if text is None or text.strip().lower() in ("exit", "quit", ":q"):
                break
            if not text.strip():
                continue
            reply = session.ask(text)
            replies.append({"question": text.strip(), "answer": reply.answer, "status": reply.status,
                            "run_id": reply.run_id, "approval_id": reply.approval_id, "error": reply.error})
            if not as_json:
                console.print(reply.answer, markup=False, highlight=False)
        if as_json:
            emit_json(replies)


def _register_approvals(approvals_app: typer.Typer) -> None:
    """``steward approvals list|approve|reject`` (deciding is the ``approval_decide`` tool's)."""

    @approvals_app.command("list")
    def approvals_list(
        status: str = typer.Option("pending", "--status", help="pending|approved|rejected|expired|executed|withdrawn|all"),
        as_json: bool = JsonOpt,
    ) -> None:
        """Approvals (pending by default), newest first."""
        from modelsteward.policies import approvals as ap

        ctx = open_ctx()
        rows = [ap.as_dict(a) for a in ap.list_approvals(ctx.steward.sessions, None if status == "all" else status)]
        if as_json:
            emit_json(rows)
            return
        table("Approvals", ["id", "status", "action", "arguments", "requester", "reason", "decided by"],
              [[r["id"], r["status"], r["action"], r["arguments"], r["requester"], r["reason"][:80], r["decided_by"]]
               for r in rows])

    @approvals_app.command("approve")
    def approve(
        approval_id: int = typer.Argument(..., help="Approval id (see `steward approvals list`)."),
        reason: str = typer.Option(None, "--reason"),
        who: str = typer.Option(None, "--as", help=AS_HELP),
        as_json: bool = JsonOpt,
    ) -> None:
        """Approve a pending action and carry it out: the agent run waiting on it resumes, or the call runs now."""
        _decide(approval_id, True, reason, who, as_json)

    @approvals_app.command("reject")
    def reject(
        approval_id: int = typer.Argument(...),
        reason: str = typer.Option(None, "--reason"),
        who: str = typer.Option(None, "--as", help=AS_HELP),
        as_json: bool = JsonOpt,
    ) -> None:
        """Reject a pending action; the agent run waiting on it resumes without it."""
        _decide(approval_id, False, reason, who, as_json)


def _decide(approval_id: int, approve: bool, reason: str | None, who: str | None, as_json: bool) -> None:
    from modelsteward.tools.base import ToolContext, call_tool
    from modelsteward.tools import approvals as approvals_tools

    base = open_ctx()
    actor, _role = cli_identity(base.steward, who, need_role="approver", need_token=True)
    ctx = ToolContext(steward=base.steward, actor=actor, progress=_progress if not as_json else None)
    out = call_tool(approvals_tools.approval_decide,
                    {"approval_id": approval_id, "decision": "approve" if approve else "reject", "reason": reason}, ctx)
    if as_json:
        emit_json(out)
    else:
        console.print(f"Approval {approval_id}: {out.summary}", markup=False, highlight=False, soft_wrap=True)
        if out.agent_run is not None and out.agent_run.report:
            console.print(out.agent_run.report, markup=False, highlight=False)
    if out.outcome == "failed" or (out.agent_run is not None and out.agent_run.status == "failed"):
        raise typer.Exit(1)


def _progress(message: str, fraction: float) -> None:
    err_console.print(f"{fraction:4.0%} {message}", markup=False, highlight=False)
