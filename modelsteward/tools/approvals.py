"""Approval tools: approvals_list (read) and approval_decide (approve or reject; the deciding
identity is ``ctx.actor``, which may not be the requester nor an agent).  Executing the approved
action is the caller's next step: the same tool with the same arguments and ``ctx.approval_id``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from modelsteward.tools.base import InputModel, ToolContext, tool

__all__ = ["ApprovalsListIn", "ApprovalsListOut", "ApprovalDecideIn", "ApprovalOut"]


class ApprovalsListIn(InputModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["pending", "approved", "rejected", "expired", "executed", "all"] = "pending"
    limit: int = Field(default=100, ge=1, le=1000)


class ApprovalOut(BaseModel):
    id: int
    action: str
    arguments: dict[str, Any]
    reason: str
    requester: str
    status: str
    decided_by: str | None = None
    decision_reason: str | None = None
    decided_at: str | None = None
    created_at: str | None = None
    use_case_id: int | None = None
    agent_run_id: int | None = None
    thread_id: str | None = None


class ApprovalsListOut(BaseModel):
    approvals: list[ApprovalOut]


class ApprovalDecideIn(InputModel):
    model_config = ConfigDict(extra="forbid")
    approval_id: int
    decision: Literal["approve", "reject"]
    reason: str | None = None


@tool("approvals_list", input_model=ApprovalsListIn, output_model=ApprovalsListOut, mutating=False)
def approvals_list(ctx: ToolContext, inp: ApprovalsListIn) -> ApprovalsListOut:
    """Approvals by status (default: pending), newest first."""
    from modelsteward.policies import approvals

    rows = approvals.list_approvals(ctx.steward.sessions, None if inp.status == "all" else inp.status, inp.limit)
    return ApprovalsListOut(approvals=[ApprovalOut(**approvals.as_dict(a)) for a in rows])


@tool("approval_decide", input_model=ApprovalDecideIn, output_model=ApprovalOut, mutating=True)
def approval_decide(ctx: ToolContext, inp: ApprovalDecideIn) -> ApprovalOut:
    """Approve or reject a pending approval as ``ctx.actor`` (never the requester, never an agent)."""
    from modelsteward.policies import approvals

    a = approvals.decide(ctx.steward.sessions, inp.approval_id, approve=inp.decision == "approve",
                         decider=ctx.actor, reason=inp.reason)
    return ApprovalOut(**approvals.as_dict(a))
