"""Approval tools: approvals_list (read) and approval_decide, the one owner of approval carry-out.

``approval_decide`` decides as ``ctx.actor`` (the rule ``no_self_approval`` in
``policies/approvals.py`` refuses the requester, the person who started the requesting agent run,
and agents), then carries the decision out:
1. an agent run waiting on the approval is resumed (it executes the approved call itself, or
   carries on without a rejected one);
2. otherwise an approved call is executed now, as the decider, with ``ctx.approval_id`` set
   (which consumes the approval: it becomes ``executed`` and cannot be replayed).
Long work goes on the caller's task registry when it has one (``ctx.spawn``: the server); without
one (CLI, demo) it runs inline.  The output says what happened in ``summary`` ("approved; executed
rollout_advance: ...", "approved; resumed agent run 4: completed", "approved; rollout_advance
failed: ..."); the decision stands when carrying it out fails.  ``carry_out: false`` only records
the decision (for a caller that then executes the call itself with ``approval_id``).

The agent package lies above the tools: ``modelsteward.wiring.wire()`` hands its resume function in
(``tools/wiring.py``).  Deciding an approval an agent run waits on, unwired, fails with
``not_wired`` before the decision is recorded (never a run silently left waiting).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from modelsteward.errors import StewardError
from modelsteward.storage import read
from modelsteward.tools.base import InputModel, ToolContext, call_tool, get_tool, tool
from modelsteward.tools.wiring import agent_hooks

__all__ = ["ApprovalsListIn", "ApprovalsListOut", "ApprovalDecideIn", "ApprovalOut", "ApprovalView", "ApprovalDecision",
           "AgentRunView"]

Outcome = Literal["decided", "rejected", "executed", "failed", "started_task", "resumed_agent_run",
                  "resuming_agent_run", "waiting_for_agent"]


class ApprovalsListIn(InputModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["pending", "approved", "rejected", "expired", "executed", "withdrawn", "all"] = "pending"
    limit: int = Field(default=100, ge=1, le=1000)


class ApprovalOut(read.ApprovalOut):
    """The read model's approval (its fields are defined there once), and how to read its arguments."""

    def call_input(self) -> BaseModel:
        """The approved call's arguments read through its tool's input model (``arguments`` is their JSON:
        one field for every tool an approval can stand for)."""
        return get_tool(self.action).input_model.model_validate(self.arguments)


ApprovalView = ApprovalOut  # the approval as the tools show it


class ApprovalsListOut(BaseModel):
    approvals: list[ApprovalOut]


class ApprovalDecideIn(InputModel):
    model_config = ConfigDict(extra="forbid")
    approval_id: int
    decision: Literal["approve", "reject"]
    reason: str | None = None
    carry_out: bool = Field(default=True, description="Resume the waiting agent run or execute the approved "
                            "call now; false only records the decision.")


class AgentRunView(BaseModel):
    run_id: int
    status: str
    approval_id: int | None = None
    error: str | None = None
    report: str = ""


class ApprovalDecision(ApprovalOut):
    """The approval as it stands after the decision, and what carrying it out did."""

    outcome: Outcome
    summary: str = Field(description='What happened, e.g. "approved; executed rollout_advance: ...".')
    result: dict[str, Any] | None = Field(default=None, description="The approved call's output.")
    error: dict[str, Any] | None = Field(default=None, description="Its error, when it failed.")
    agent_run: AgentRunView | None = Field(default=None, description="The resumed agent run.")
    task_id: str | None = Field(default=None, description="The background task carrying it out (server).")

    def output(self) -> BaseModel | None:
        """The executed call's output read through its tool's output model (None when nothing ran)."""
        return None if self.result is None else get_tool(self.action).output_model.model_validate(self.result)


@tool("approvals_list", input_model=ApprovalsListIn, output_model=ApprovalsListOut, mutating=False)
def approvals_list(ctx: ToolContext, inp: ApprovalsListIn) -> ApprovalsListOut:
    """Approvals by status (default: pending), newest first."""
    from modelsteward.policies import approvals

    rows = read.approvals(ctx.steward, status=None if inp.status == "all" else inp.status, limit=inp.limit)
    return ApprovalsListOut(approvals=[ApprovalOut(**a.model_dump()) for a in rows])


def _agent_wired_if_waiting(ctx: ToolContext, inp: ApprovalDecideIn) -> None:
    """An agent run waiting on the approval needs the agent to resume: unwired fails before anything is recorded."""
    if inp.carry_out and read.waiting_run(ctx.steward, inp.approval_id) is not None:
        agent_hooks("approval_decide")


@tool("approval_decide", input_model=ApprovalDecideIn, output_model=ApprovalDecision, mutating=True,
      check=_agent_wired_if_waiting)
def approval_decide(ctx: ToolContext, inp: ApprovalDecideIn) -> ApprovalDecision:
    """Approve or reject a pending approval as ``ctx.actor`` (never its requester, nor the person who started
    the agent run that asked, nor an agent), then carry it out: resume the waiting agent run or execute the
    approved call."""
    from modelsteward.policies import approvals

    a = approvals.decide(ctx.steward.sessions, inp.approval_id, approve=inp.decision == "approve",
                         decider=ctx.actor, reason=inp.reason)
    verb = "approved" if a.status == "approved" else "rejected"
    if not inp.carry_out:
        return _view(ctx, a.id, "decided", f"{verb}; not carried out (carry_out false)")
    return _carry_out(ctx, a.id)


def _view(ctx: ToolContext, approval_id: int, outcome: Outcome, summary: str, **extra: Any) -> ApprovalDecision:
    return ApprovalDecision(**read.approval(ctx.steward, approval_id).model_dump(), outcome=outcome, summary=summary,
                            **extra)


def _carry_out(ctx: ToolContext, approval_id: int) -> ApprovalDecision:
    """Resume the waiting run, else execute an approved call (in the background when ``ctx.spawn``)."""
    from modelsteward.policies import approvals

    a = approvals.get(ctx.steward.sessions, approval_id)
    verb, action, args = ("approved" if a.status in ("approved", "executed") else a.status), a.action, dict(a.arguments or {})
    run_id = read.waiting_run(ctx.steward, approval_id)
    if run_id is not None:
        if ctx.spawn is not None:
            inline = dataclasses.replace(ctx, spawn=None)
            task = ctx.spawn(f"approval_decide #{approval_id}", lambda: _carry_out(inline, approval_id))
            return _view(ctx, approval_id, "resuming_agent_run",
                         f"{verb}; resuming agent run {run_id} (task {task})", task_id=task)
        resumed = _resume(ctx, approval_id, run_id, verb)
        if resumed is not None:
            return resumed
    if a.status != "approved":
        return _view(ctx, approval_id, "rejected", f"{verb}; {action} will not run")
    exec_ctx = ToolContext(steward=ctx.steward, actor=ctx.actor, approval_id=approval_id, progress=ctx.progress,
                           eval_cache=ctx.eval_cache)
    if ctx.spawn is not None and get_tool(action).long_running:
        task = ctx.spawn(action, lambda: call_tool(action, args, exec_ctx))
        return _view(ctx, approval_id, "started_task", f"approved; started {action} as task {task}", task_id=task)
    try:
        out = call_tool(action, args, exec_ctx)
    except StewardError as exc:
        return _view(ctx, approval_id, "failed", f"approved; {action} failed: {exc.message}", error=exc.to_dict())
    result = out.model_dump(mode="json")
    brief = _brief(result)
    return _view(ctx, approval_id, "executed", f"approved; executed {action}" + (f": {brief}" if brief else ""),
                 result=result)


def _resume(ctx: ToolContext, approval_id: int, run_id: int, verb: str) -> ApprovalDecision | None:
    try:
        res = agent_hooks("approval_decide").resume(ctx.steward, approval_id)
    except StewardError as exc:
        if exc.code != "agent_busy":
            raise
        return _view(ctx, approval_id, "waiting_for_agent",
                     f"{verb}; agent run {run_id} resumes at the next agent start ({exc.message})")
    if res is None:
        return None
    run = AgentRunView(run_id=res.run_id, status=res.status, approval_id=res.approval_id, error=res.error,
                       report=res.report)
    tail = f", waiting for approval {res.approval_id}" if res.status == "waiting_approval" and res.approval_id else ""
    return _view(ctx, approval_id, "resumed_agent_run", f"{verb}; resumed agent run {res.run_id}: {res.status}{tail}",
                 agent_run=run)


_BRIEF_KEYS = ("message", "action", "status", "state", "model_id", "result_model_id", "job_id", "use_case")


def _brief(result: dict[str, Any]) -> str:
    """A short line from a tool's output: its message, else its first few identifying fields."""
    msg = result.get("message")
    if isinstance(msg, str) and msg.strip():
        return msg.strip().splitlines()[0][:200]
    parts = [f"{k} {result[k]}" for k in _BRIEF_KEYS if isinstance(result.get(k), (str, int)) and result.get(k) != ""]
    notes = result.get("notes")
    if isinstance(notes, list) and notes:
        parts.append("; ".join(map(str, notes))[:200])
    return ", ".join(parts[:4])
