"""``steward agent run|schedule|resume``, ``steward chat``, ``steward approvals list|approve|reject``.

Light imports only at the top; the agent (LangGraph, LangChain) loads inside the commands.
Approver identity is ``--as NAME`` or the OS user, recorded as ``cli:NAME``.
"""

from __future__ import annotations

import getpass
from typing import Any

import typer

from modelsteward.cli.common import JsonOpt, console, emit_json, err_console, open_ctx, table

__all__ = ["register"]


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
        res = run_agent(ctx.steward, goal=goal, use_case=use_case, trigger="cli", max_steps=max_steps)
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
        session = ChatSession(ctx.steward, use_case=use_case)
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

    @approvals_app.command("list")
    def approvals_list(
        status: str = typer.Option("pending", "--status", help="pending|approved|rejected|expired|executed|all"),
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

    def _decide(approval_id: int, approve: bool, reason: str | None, who: str | None, as_json: bool) -> None:
        from modelsteward.agent.runner import resume_after_decision

        name = who or getpass.getuser()
        ctx = open_ctx(actor=f"cli:{name}")
        from modelsteward.agent.runner import AgentBusy

        decision = _record_decision(ctx, approval_id, approve, reason)
        try:
            res = resume_after_decision(ctx.steward, approval_id)
        except AgentBusy as exc:
            if as_json:
                emit_json({"approval": decision, "resumed": None, "note": exc.message})
            else:
                console.print(f"Approval {approval_id} recorded. {exc.message} The waiting run resumes on the "
                              "next agent start.", markup=False)
            return
        if as_json:
            emit_json({"approval": decision, "resumed": res.to_dict() if res else None})
            return
        verb = "approved" if approve else "rejected"
        console.print(f"Approval {approval_id} {verb} by {decision.get('decided_by') or ctx.actor}.", markup=False)
        if res is None:
            err_console.print("No agent run was waiting on it.")
            return
        console.print(f"Agent run {res.run_id} resumed: {res.status}.", markup=False)
        console.print(res.report, markup=False, highlight=False)

    @approvals_app.command("approve")
    def approve(
        approval_id: int = typer.Argument(..., help="Approval id (see `steward approvals list`)."),
        reason: str = typer.Option(None, "--reason"),
        who: str = typer.Option(None, "--as", help="Approver name (default: the OS user)."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Approve a pending action; the agent run waiting on it resumes."""
        _decide(approval_id, True, reason, who, as_json)

    @approvals_app.command("reject")
    def reject(
        approval_id: int = typer.Argument(...),
        reason: str = typer.Option(None, "--reason"),
        who: str = typer.Option(None, "--as", help="Approver name (default: the OS user)."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Reject a pending action; the agent run waiting on it resumes without it."""
        _decide(approval_id, False, reason, who, as_json)



def _record_decision(ctx: Any, approval_id: int, approve: bool, reason: str | None) -> dict[str, Any]:
    """Through the ``approval_decide`` tool when it is registered, else the approvals domain module."""
    from modelsteward.policies import approvals as ap
    from modelsteward.tools.base import TOOLS, call_tool, load_all_tools

    load_all_tools()
    if "approval_decide" in TOOLS:
        spec = TOOLS["approval_decide"]
        fields = spec.input_model.model_fields
        args: dict[str, Any] = {"approval_id" if "approval_id" in fields else "id": approval_id}
        if "decision" in fields:
            args["decision"] = "approve" if approve else "reject"
        elif "approve" in fields:
            args["approve"] = approve
        elif "approved" in fields:
            args["approved"] = approve
        if reason is not None and "reason" in fields:
            args["reason"] = reason
        call_tool("approval_decide", args, ctx)
    else:
        ap.decide(ctx.steward.sessions, approval_id, approve=approve, decider=ctx.actor, reason=reason)
    return ap.as_dict(ap.get(ctx.steward.sessions, approval_id))
