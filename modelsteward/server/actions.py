"""Deciding approvals over HTTP: approve / reject need role approver and a different identity.

Decision: "different identity" compares the name after the front-end prefix, so ``cli:alice``
cannot approve what ``api:alice`` asked for.  The decision goes through the approvals tool
(``approval_decide``), which records it.  Then, when the approval belongs to a paused agent
run, ``modelsteward.agent.resume_after_decision`` resumes that run in the background (the answer
does not wait for the agent; the run executes the approved action).  Any other approved action
(asked for over the API, the CLI or the console) is executed at once by the server, as the
approver, with ``ctx.approval_id`` set, and its output (or error) is in the answer.
"""

from __future__ import annotations

import logging
import threading
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from modelsteward.context import Steward
from modelsteward.errors import Conflict, NotFound, PolicyDenied, StewardError
from modelsteward.server.api import ERROR_RESPONSES, IdPath
from modelsteward.server.auth import Identity
from modelsteward.server.deps import ApproverDep, StewardDep, tool_context
from modelsteward.server.schemas import ApprovalOut, DecisionIn
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import Approval
from modelsteward.tools.base import call_tool

__all__ = ["router", "decide", "same_identity", "DecisionOut"]

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES, tags=["approvals"])


class DecisionOut(BaseModel):
    approval: ApprovalOut
    result: dict[str, Any] | None = Field(default=None, description="The approved tool call's output.")
    error: dict[str, Any] | None = Field(default=None, description="Its error, when it failed.")
    resuming_agent_run: int | None = Field(default=None, description="The agent run resumed in the background.")


def same_identity(requester: str, actor: str) -> bool:
    """``api:alice`` and ``cli:alice`` are the same person; ``agent:run-3`` is nobody's name."""
    def name(who: str) -> str:
        return who.split(":", 1)[1] if ":" in who else who

    return requester == actor or name(requester).lower() == name(actor).lower()


def decide(steward: Steward, ident: Identity, approval_id: int, decision: Literal["approve", "reject"],
           reason: str) -> DecisionOut:
    """Check the rules, record the decision through the approvals tool, then carry it out.

    An approval that a paused agent run waits on is handed back to that run (in the background);
    any other approved action is executed here at once, as the approver, with the approval's id.
    """
    with session_scope(steward.sessions) as s:
        row = s.get(Approval, approval_id)
        if row is None:
            raise NotFound(f"Unknown approval id {approval_id}.", kind="approval", id=approval_id)
        if row.status != "pending":
            raise Conflict(f"Approval {approval_id} is already {row.status}"
                           + (f" (by {row.decided_by})." if row.decided_by else "."), status=row.status)
        if same_identity(row.requester, ident.actor):
            raise PolicyDenied(
                f"Approval {approval_id} was requested by {row.requester}; a different person must decide it.",
                requester=row.requester, actor=ident.actor, policy="no_self_approval",
            )
        agent_run_id, action, arguments = row.agent_run_id, row.action, dict(row.arguments or {})
    ctx = tool_context(steward, ident)
    call_tool("approval_decide", {"approval_id": approval_id, "decision": decision, "reason": reason or None}, ctx)
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    resuming = None
    if agent_run_id is not None:
        resuming = agent_run_id
        threading.Thread(target=_resume, args=(steward, ident, approval_id), daemon=True,
                         name=f"resume-approval-{approval_id}").start()
    elif decision == "approve":
        result, error = _execute(steward, ident, approval_id, action, arguments)
    with session_scope(steward.sessions) as s:
        fresh = ApprovalOut.model_validate(s.get(Approval, approval_id))
    return DecisionOut(approval=fresh, result=result, error=error, resuming_agent_run=resuming)


def _execute(steward: Steward, ident: Identity, approval_id: int, action: str,
             arguments: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Run the approved tool call; its failure is reported, the decision stands."""
    try:
        out = call_tool(action, arguments, tool_context(steward, ident, approval_id=approval_id))
    except StewardError as exc:
        return None, exc.to_dict()
    return out.model_dump(mode="json"), None


def _resume(steward: Steward, ident: Identity, approval_id: int) -> None:
    try:
        from modelsteward.agent import resume_after_decision

        if resume_after_decision(steward, approval_id) is None:
            with session_scope(steward.sessions) as s:
                row = s.get(Approval, approval_id)
                pending_execution = row is not None and row.status == "approved"
                action, arguments = (row.action, dict(row.arguments or {})) if row is not None else ("", {})
            if pending_execution:  # no run was waiting on it any more: carry it out here
                _execute(steward, ident, approval_id, action, arguments)
    except Exception:  # noqa: BLE001 - logged; the agent run records its own failure
        log.exception("resuming the agent after approval %s failed", approval_id)


Reason = Annotated[DecisionIn | None, Body()]


@router.post("/approvals/{approval_id}/approve", response_model=DecisionOut,
             summary="Approve (role approver; not the requester)")
def approve(steward: StewardDep, ident: ApproverDep, approval_id: IdPath, body: Reason = None) -> Any:
    return decide(steward, ident, approval_id, "approve", body.reason if body else "")


@router.post("/approvals/{approval_id}/reject", response_model=DecisionOut,
             summary="Reject (role approver; not the requester)")
def reject(steward: StewardDep, ident: ApproverDep, approval_id: IdPath, body: Reason = None) -> Any:
    return decide(steward, ident, approval_id, "reject", body.reason if body else "")
