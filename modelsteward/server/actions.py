"""Deciding approvals over HTTP: approve / reject need role approver and a different identity.

Decision: "different identity" compares the name after the front-end prefix, so ``cli:alice``
cannot approve what ``api:alice`` asked for.  The decision goes through the approvals tool
(``approval_decide``), which records it and carries out an approved action; then, when the
approval belongs to a paused agent run, ``modelsteward.agent.resume_after_decision`` resumes it
in the background (the answer does not wait for the agent).
"""

from __future__ import annotations

import logging
import threading
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path
from pydantic import BaseModel

from modelsteward.context import Steward
from modelsteward.errors import Conflict, NotFound, PolicyDenied
from modelsteward.server.api import ERROR_RESPONSES
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
    result: dict[str, Any] | None = None
    resuming_agent_run: int | None = None


def same_identity(requester: str, actor: str) -> bool:
    """``api:alice`` and ``cli:alice`` are the same person; ``agent:run-3`` is nobody's name."""
    def name(who: str) -> str:
        return who.split(":", 1)[1] if ":" in who else who

    return requester == actor or name(requester).lower() == name(actor).lower()


def decide(steward: Steward, ident: Identity, approval_id: int, decision: Literal["approve", "reject"],
           reason: str, *, resume: bool = True) -> DecisionOut:
    """Check the rules, decide through the approvals tool, resume a paused agent run."""
    with session_scope(steward.sessions) as s:
        row = s.get(Approval, approval_id)
        if row is None:
            raise NotFound(f"Unknown approval id {approval_id}.", kind="approval", id=approval_id)
        if row.status != "pending":
            raise Conflict(f"Approval {approval_id} is already {row.status} (by {row.decided_by}).",
                           status=row.status)
        if same_identity(row.requester, ident.actor):
            raise PolicyDenied(
                f"Approval {approval_id} was requested by {row.requester}; a different person must decide it.",
                requester=row.requester, actor=ident.actor,
            )
        agent_run_id = row.agent_run_id
    ctx = tool_context(steward, ident)
    out = call_tool("approval_decide", {"approval_id": approval_id, "decision": decision, "reason": reason}, ctx)
    resuming = None
    if resume and agent_run_id is not None:
        resuming = agent_run_id
        threading.Thread(target=_resume, args=(steward, approval_id), daemon=True,
                         name=f"resume-approval-{approval_id}").start()
    with session_scope(steward.sessions) as s:
        fresh = ApprovalOut.model_validate(s.get(Approval, approval_id))
    return DecisionOut(approval=fresh, result=out.model_dump(mode="json"), resuming_agent_run=resuming)


def _resume(steward: Steward, approval_id: int) -> None:
    try:
        from modelsteward.agent import resume_after_decision  # type: ignore[attr-defined]

        resume_after_decision(steward, approval_id)
    except Exception:  # noqa: BLE001 - logged; the agent run records its own failure
        log.exception("resuming the agent after approval %s failed", approval_id)


Reason = Annotated[DecisionIn | None, Body()]


@router.post("/approvals/{approval_id}/approve", response_model=DecisionOut,
             summary="Approve (role approver; not the requester)")
def approve(steward: StewardDep, ident: ApproverDep, approval_id: Annotated[int, Path()], body: Reason = None) -> Any:
    return decide(steward, ident, approval_id, "approve", body.reason if body else "")


@router.post("/approvals/{approval_id}/reject", response_model=DecisionOut,
             summary="Reject (role approver; not the requester)")
def reject(steward: StewardDep, ident: ApproverDep, approval_id: Annotated[int, Path()], body: Reason = None) -> Any:
    return decide(steward, ident, approval_id, "reject", body.reason if body else "")
