"""Deciding approvals over HTTP: approve / reject need role approver; the rest is the tool's.

The route hands the decision to the ``approval_decide`` tool, the one owner of approval carry-out
(CLI, API, console and demo alike): the rule ``no_self_approval`` (policies) refuses the requester
and the person who started the requesting agent run; then the tool resumes the waiting agent run
or executes the approved call.  Here its long work (resuming a run, a long-running tool such as an
approved full fine-tune) goes on the app's task registry (``GET /api/tasks/{id}``); a short call
(e.g. a canary promotion) runs inside the request and its output (or error) is in the answer.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Request
from pydantic import BaseModel, Field

from modelsteward.context import Steward
from modelsteward.server.api import ERROR_RESPONSES, IdPath
from modelsteward.server.auth import Identity
from modelsteward.server.deps import ApproverDep, StewardDep, tool_context
from modelsteward.server.schemas import ApprovalOut, DecisionIn
from modelsteward.server.tasks import TaskRegistry
from modelsteward.storage import read
from modelsteward.tools.base import call_tool

__all__ = ["router", "decide", "DecisionOut"]

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES, tags=["approvals"])


class DecisionOut(BaseModel):
    approval: ApprovalOut
    outcome: str = Field(description="decided | rejected | executed | failed | started_task | resumed_agent_run | "
                         "resuming_agent_run | waiting_for_agent")
    summary: str = Field(description='What happened, e.g. "approved; executed rollout_advance: ...".')
    result: dict[str, Any] | None = Field(default=None, description="The approved tool call's output.")
    error: dict[str, Any] | None = Field(default=None, description="Its error, when it failed.")
    resuming_agent_run: int | None = Field(default=None, description="The agent run resumed (in the background).")
    task_id: str | None = Field(default=None, description="The background task carrying it out (/api/tasks/{id}).")


def decide(steward: Steward, ident: Identity, approval_id: int, decision: Literal["approve", "reject"],
           reason: str, tasks: TaskRegistry | None = None) -> DecisionOut:
    """Decide and carry out through the ``approval_decide`` tool (long work on ``tasks`` when given)."""
    ctx = tool_context(steward, ident)
    if tasks is not None:
        ctx.spawn = tasks.spawner(ctx.actor)
    out: Any = call_tool("approval_decide", {"approval_id": approval_id, "decision": decision,
                                             "reason": reason or None}, ctx)
    fresh = read.approval(steward, approval_id)
    run = out.agent_run.run_id if out.agent_run is not None else None
    if out.outcome in ("resuming_agent_run", "waiting_for_agent"):
        run = fresh.agent_run_id
    return DecisionOut(approval=fresh, outcome=out.outcome, summary=out.summary, result=out.result, error=out.error,
                       resuming_agent_run=run, task_id=out.task_id)


Reason = Annotated[DecisionIn | None, Body()]


@router.post("/approvals/{approval_id}/approve", response_model=DecisionOut,
             summary="Approve (role approver; not the requester nor who started the requesting run)")
def approve(steward: StewardDep, ident: ApproverDep, approval_id: IdPath, request: Request, body: Reason = None) -> Any:
    return decide(steward, ident, approval_id, "approve", body.reason if body else "", request.app.state.tasks)


@router.post("/approvals/{approval_id}/reject", response_model=DecisionOut,
             summary="Reject (role approver; not the requester nor who started the requesting run)")
def reject(steward: StewardDep, ident: ApproverDep, approval_id: IdPath, request: Request, body: Reason = None) -> Any:
    return decide(steward, ident, approval_id, "reject", body.reason if body else "", request.app.state.tasks)
