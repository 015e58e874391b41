"""Human approvals of risky actions: create, list, get, approve, reject, consume.

Rules (hard-coded, in one function, ``decision_refusal``, used by the ``approval_decide`` policy
rule, by ``decide`` and by ``consume``): the decider must be another person than the requester
(``cli:alice`` and ``api:alice`` are one person) and than the person who started the agent run
that requested it (``agent_runs.started_by``; ``schedule`` is nobody); an agent (actor
``agent:...``) never decides; an approval decision is never itself approved; an approval is
decided once.  An approved approval is consumed by executing the
same tool with the same arguments and ``ctx.approval_id`` set: its status becomes ``executed``
(so it cannot be replayed).  Pending approvals of a rollout promotion expire when that rollout
ends (``expire_for``).

One open proposal per intent: a pending approval is matched on what it would do (its action and
arguments without the evidence keys ``reason`` and ``violations``: for ``deploy`` the use case,
target model and strategy), not on its text.  A second request of the same intent by the same
requester (every agent run counts as one requester, ``agent:*``) reuses the pending approval and
appends its reason and violation ids to the approval's ``evidence`` (no new row, so no new
notification).  A proposal whose cause cleared is ``withdrawn`` (``withdraw``; ``policies/proposals.py``
decides when).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from modelsteward.errors import Conflict, InvalidInput, NotFound, PolicyDenied
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import AgentRun, Approval, PolicyDecision, utcnow

__all__ = [
    "APPROVAL_STATES",
    "create",
    "list_approvals",
    "get",
    "approve",
    "reject",
    "decide",
    "consume",
    "expire_for",
    "withdraw",
    "add_evidence",
    "intent",
    "intent_key",
    "EVIDENCE_KEYS",
    "same_arguments",
    "same_person",
    "decision_refusal",
    "run_starter",
    "NO_SELF_APPROVAL",
    "as_dict",
]

APPROVAL_STATES = ("pending", "approved", "rejected", "expired", "executed", "withdrawn")
EVIDENCE_KEYS = frozenset({"reason", "violations"})  # why it was asked, not what it would do
NO_SELF_APPROVAL = "no_self_approval"
SCHEDULE_STARTER = "schedule"  # runs the scheduler started: no person to exclude


def as_dict(a: Approval) -> dict[str, Any]:
    return {
        "id": a.id, "action": a.action, "arguments": dict(a.arguments or {}), "reason": a.reason,
        "requester": a.requester, "status": a.status, "decided_by": a.decided_by,
        "decision_reason": a.decision_reason,
        "decided_at": a.decided_at.isoformat() if a.decided_at else None,
        "created_at": a.created_at.isoformat() if a.created_at else None,
        "use_case_id": a.use_case_id, "agent_run_id": a.agent_run_id, "thread_id": a.thread_id,
        "evidence": dict(a.evidence or {}),
    }


def same_person(a: str | None, b: str | None) -> bool:
    """``cli:alice`` and ``api:alice`` are the same person (the channel prefix is ignored)."""
    if not a or not b:
        return False

    def name(who: str) -> str:
        return (who.split(":", 1)[1] if ":" in who else who).strip().lower()

    return a.strip() == b.strip() or name(a) == name(b)


def run_starter(s: Session, a: Approval) -> tuple[int | None, str | None]:
    """The agent run that requested ``a`` (its id from the row, or from an ``agent:run-N``
    requester) and the person who started that run, if any."""
    run_id = a.agent_run_id
    if run_id is None and (a.requester or "").startswith("agent:run-"):
        tail = a.requester.removeprefix("agent:run-")
        run_id = int(tail) if tail.isdigit() else None
    if run_id is None:
        return None, None
    starter = s.scalar(select(AgentRun.started_by).where(AgentRun.id == run_id))
    return run_id, (None if starter in (None, "", SCHEDULE_STARTER) else starter)


def decision_refusal(s: Session, a: Approval | None, decider: str) -> str | None:
    """Why ``decider`` may not decide ``a`` (rule ``no_self_approval``), or None when they may.

    The one place of the rule: an agent never decides; an approval decision is never approved;
    nobody decides what they requested, nor what an agent run they started requested."""
    if not decider or decider.startswith("agent:"):
        return f"agents may not decide approvals ({decider or 'no identity'}); a person approves or rejects"
    if a is None:
        return None
    if a.action == "approval_decide":
        return "an approval decision cannot itself be approved"
    if same_person(decider, a.requester):
        return (f"{decider} requested approval {a.id} and may not decide it (no self-approval); "
                "a different person must decide it")
    run_id, starter = run_starter(s, a)
    if starter and same_person(decider, starter):
        return (f"{decider} started agent run {run_id}, which requested approval {a.id}, and may not decide it "
                "(no self-approval); a different person must decide it")
    return None


def _norm(args: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in (args or {}).items() if v is not None}


def same_arguments(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Arguments match when equal after dropping keys whose value is None (defaults)."""
    return _norm(a) == _norm(b)


def intent(arguments: dict[str, Any]) -> dict[str, Any]:
    """What a call would do: its arguments without defaults (None) and without the evidence keys."""
    return {k: v for k, v in _norm(arguments).items() if k not in EVIDENCE_KEYS}


def intent_key(action: str, arguments: dict[str, Any]) -> str:
    """One string per (action, intent), for matching pending proposals."""
    return json.dumps([action, intent(arguments)], sort_keys=True, default=str)


def _same_requester(a: str, b: str) -> bool:
    """The same person, or both the agent (each run is ``agent:run-N``; the agent is one requester)."""
    return same_person(a, b) or (a.startswith("agent:") and b.startswith("agent:"))


def _evidence_entry(arguments: dict[str, Any], reason: str, requester: str) -> dict[str, Any]:
    v = arguments.get("violations")
    return {"at": utcnow().isoformat(timespec="seconds"), "requester": requester,
            "reason": str(arguments.get("reason") or reason)[:500],
            "violations": [int(x) for x in v] if isinstance(v, list) else []}


def add_evidence(a: Approval, entry: dict[str, Any]) -> bool:
    """Append ``entry`` to a proposal's evidence (its violation ids joined to the cause); False when it
    names nothing new."""
    ev = dict(a.evidence or {})
    known = [int(x) for x in ev.get("violations") or []]
    new = [x for x in entry.get("violations") or [] if x not in known]
    updates = list(ev.get("updates") or [])
    if updates and not new and entry.get("reason") == updates[-1].get("reason"):
        return False
    ev["violations"] = known + new
    ev["updates"] = (updates + [entry])[-20:]  # the latest 20 updates
    ev["update_count"] = int(ev.get("update_count") or len(updates)) + 1
    a.evidence = ev
    return True


def create(
    sessions: sessionmaker[Session], *, action: str, arguments: dict[str, Any], reason: str, requester: str,
    use_case_id: int | None = None, agent_run_id: int | None = None, thread_id: str | None = None,
    session: Session | None = None,
) -> Approval:
    """A pending approval; a pending one of the same intent (action and arguments but the evidence
    keys) and requester is reused, its evidence updated with this request's."""

    def _do(s: Session) -> Approval:
        entry = _evidence_entry(arguments, reason, requester)
        want = intent(arguments)
        for old in s.scalars(select(Approval).where(Approval.action == action, Approval.status == "pending")
                             .order_by(Approval.id).with_for_update()):
            if intent(old.arguments) == want and _same_requester(old.requester, requester):
                add_evidence(old, entry)
                return old
        a = Approval(
            action=action, arguments=dict(arguments), reason=reason, requester=requester, status="pending",
            use_case_id=use_case_id, agent_run_id=agent_run_id, thread_id=thread_id,
            evidence={"violations": entry["violations"], "updates": [], "update_count": 0},
        )
        s.add(a)
        s.flush()
        return a

    if session is not None:
        return _do(session)
    with session_scope(sessions) as s:
        return _do(s)


def list_approvals(sessions: sessionmaker[Session], status: str | None = "pending", limit: int = 100) -> list[Approval]:
    if status is not None and status not in APPROVAL_STATES:
        raise InvalidInput(f"Unknown approval status {status!r}; use one of {', '.join(APPROVAL_STATES)}.")
    with session_scope(sessions) as s:
        q = select(Approval).order_by(Approval.id.desc()).limit(limit)
        if status is not None:
            q = q.where(Approval.status == status)
        return list(s.scalars(q))


def _get(s: Session, approval_id: int, *, lock: bool = False) -> Approval:
    q = select(Approval).where(Approval.id == approval_id)
    if lock:
        q = q.with_for_update()
    a = s.scalar(q)
    if a is None:
        raise NotFound(f"Unknown approval {approval_id}; see `steward approvals list`.", kind="approval", id=approval_id)
    return a


def get(sessions: sessionmaker[Session], approval_id: int) -> Approval:
    with session_scope(sessions) as s:
        return _get(s, approval_id)


def _record_denial(s: Session, a: Approval, decider: str, reason: str) -> None:
    s.add(PolicyDecision(
        action="approval_decide", arguments={"approval_id": a.id}, verdict="deny",
        policy=NO_SELF_APPROVAL, reason=reason, actor=decider, use_case_id=a.use_case_id,
    ))


def decide(
    sessions: sessionmaker[Session], approval_id: int, *, approve: bool, decider: str, reason: str | None = None
) -> Approval:
    """Approve or reject a pending approval.  Self-approval and agent deciders are refused (and the
    refusal recorded); an unknown or already decided approval is a clear error."""
    if not decider or not decider.strip():
        raise InvalidInput("A decision needs the identity of the person deciding.")
    refusal: str | None = None
    with session_scope(sessions) as s:
        a = _get(s, approval_id, lock=True)
        if a.status != "pending":
            by = f" by {a.decided_by}" if a.decided_by else ""
            raise Conflict(
                f"Approval {approval_id} is already {a.status}{by}; only pending approvals can be decided.",
                approval_id=approval_id, status=a.status,
            )
        refusal = decision_refusal(s, a, decider)
        if refusal:
            _record_denial(s, a, decider, refusal)
        else:
            a.status = "approved" if approve else "rejected"
            a.decided_by = decider
            a.decision_reason = reason
            a.decided_at = utcnow()
            s.flush()
            return a
    raise PolicyDenied(f"Denied by policy {NO_SELF_APPROVAL}: {refusal}.", policy=NO_SELF_APPROVAL,
                       approval_id=approval_id)


def approve(sessions: sessionmaker[Session], approval_id: int, *, decider: str, reason: str | None = None) -> Approval:
    return decide(sessions, approval_id, approve=True, decider=decider, reason=reason)


def reject(sessions: sessionmaker[Session], approval_id: int, *, decider: str, reason: str | None = None) -> Approval:
    return decide(sessions, approval_id, approve=False, decider=decider, reason=reason)


def consume(s: Session, approval_id: int, action: str, arguments: dict[str, Any]) -> tuple[Approval | None, str]:
    """Inside the caller's transaction: if ``approval_id`` names an approved approval of this very
    action and arguments, decided by someone other than its requester, mark it executed and return
    it; otherwise return (None, why not)."""
    a = s.scalar(select(Approval).where(Approval.id == approval_id).with_for_update())
    if a is None:
        return None, f"approval {approval_id} does not exist"
    if a.action != action or not same_arguments(a.arguments, arguments):
        return None, f"approval {approval_id} is for {a.action} {a.arguments}, not {action} {_norm(arguments)}"
    if a.status != "approved":
        return None, f"approval {approval_id} is {a.status}, not approved"
    if not a.decided_by or decision_refusal(s, a, a.decided_by) is not None:
        return None, f"approval {approval_id} was not decided by a person other than its requester and run starter"
    a.status = "executed"
    a.decision_reason = (a.decision_reason or "") + f" [executed {utcnow().isoformat(timespec='seconds')}]"
    s.flush()
    return a, ""


def expire_for(s: Session, action: str, use_case_name: str, why: str) -> int:
    """Expire pending or approved-unexecuted approvals of ``action`` on one use case (a rollout ended)."""
    n = 0
    for a in s.scalars(select(Approval).where(Approval.action == action, Approval.status.in_(("pending", "approved")))):
        if (a.arguments or {}).get("use_case") == use_case_name:
            a.status = "expired"
            a.decision_reason = ((a.decision_reason or "") + f" [expired: {why}]").strip()
            n += 1
    return n


def withdraw(s: Session, a: Approval, why: str, *, by: str = "guardrails") -> None:
    """Withdraw a pending proposal whose cause is gone: status ``withdrawn``, the reason recorded on
    the row and as a policy decision (the record), decided at now."""
    a.status = "withdrawn"
    a.decided_by = by
    a.decided_at = utcnow()
    a.decision_reason = ((a.decision_reason or "") + f" [withdrawn: {why}]").strip()
    s.add(PolicyDecision(action=a.action, arguments={"approval_id": a.id, **intent(a.arguments)}, verdict="withdrawn",
                         policy="proposal_withdrawn", reason=why[:2000], actor=by, use_case_id=a.use_case_id))
