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

import datetime as dt
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from modelsteward.errors import Conflict, InvalidInput, NotFound, PolicyDenied
from modelsteward.storage.approvals import ApprovalTx, transaction
from modelsteward.storage.views import RowView

if TYPE_CHECKING:
    from modelsteward.storage.db import Sessions

__all__ = [
    "APPROVAL_STATES",
    "create",
    "create_in",
    "list_approvals",
    "get",
    "approve",
    "reject",
    "decide",
    "consume",
    "expire_for",
    "withdraw",
    "add_evidence",
    "merged_evidence",
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
StarterLookup = Callable[[int], "str | None"]  # agent run id -> who started it


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def as_dict(a: Any) -> dict[str, Any]:
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


def run_starter(started_by: StarterLookup, a: Any) -> tuple[int | None, str | None]:
    """The agent run that requested ``a`` (its id from the row, or from an ``agent:run-N``
    requester) and the person who started that run, if any (``started_by``: run id -> starter)."""
    run_id = a.agent_run_id
    if run_id is None and (a.requester or "").startswith("agent:run-"):
        tail = a.requester.removeprefix("agent:run-")
        run_id = int(tail) if tail.isdigit() else None
    if run_id is None:
        return None, None
    starter = started_by(run_id)
    return run_id, (None if starter in (None, "", SCHEDULE_STARTER) else starter)


def decision_refusal(started_by: StarterLookup, a: Any, decider: str) -> str | None:
    """Why ``decider`` may not decide ``a`` (rule ``no_self_approval``), or None when they may.

    The one place of the rule: an agent never decides; an approval decision is never approved;
    nobody decides what they requested, nor what an agent run they started requested
    (``started_by``: agent run id -> who started it, a registry read)."""
    if not decider or decider.startswith("agent:"):
        return f"agents may not decide approvals ({decider or 'no identity'}); a person approves or rejects"
    if a is None:
        return None
    if a.action == "approval_decide":
        return "an approval decision cannot itself be approved"
    if same_person(decider, a.requester):
        return (f"{decider} requested approval {a.id} and may not decide it (no self-approval); "
                "a different person must decide it")
    run_id, starter = run_starter(started_by, a)
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
    return {"at": _now().isoformat(timespec="seconds"), "requester": requester,
            "reason": str(arguments.get("reason") or reason)[:500],
            "violations": [int(x) for x in v] if isinstance(v, list) else []}


def merged_evidence(evidence: dict[str, Any] | None, entry: dict[str, Any]) -> dict[str, Any] | None:
    """A proposal's evidence with ``entry`` appended (its violation ids joined to the cause); None
    when it names nothing new."""
    ev = dict(evidence or {})
    known = [int(x) for x in ev.get("violations") or []]
    new = [x for x in entry.get("violations") or [] if x not in known]
    updates = list(ev.get("updates") or [])
    if updates and not new and entry.get("reason") == updates[-1].get("reason"):
        return None
    ev["violations"] = known + new
    ev["updates"] = (updates + [entry])[-20:]  # the latest 20 updates
    ev["update_count"] = int(ev.get("update_count") or len(updates)) + 1
    return ev


def add_evidence(tx: ApprovalTx, a: Any, entry: dict[str, Any]) -> bool:
    """Append ``entry`` to the evidence of approval ``a`` (in ``tx``); False when it names nothing new."""
    ev = merged_evidence(a.evidence, entry)
    if ev is None:
        return False
    tx.update(a.id, evidence=ev)
    return True


def create_in(
    tx: ApprovalTx, *, action: str, arguments: dict[str, Any], reason: str, requester: str,
    use_case_id: int | None = None, agent_run_id: int | None = None, thread_id: str | None = None,
) -> RowView:
    """``create`` inside the caller's approval transaction."""
    entry = _evidence_entry(arguments, reason, requester)
    want = intent(arguments)
    for old in tx.pending(action):
        if intent(old.arguments) == want and _same_requester(old.requester, requester):
            add_evidence(tx, old, entry)
            return tx.get(old.id) or old
    return tx.add(action=action, arguments=dict(arguments), reason=reason, requester=requester, status="pending",
                  use_case_id=use_case_id, agent_run_id=agent_run_id, thread_id=thread_id,
                  evidence={"violations": entry["violations"], "updates": [], "update_count": 0})


def create(
    sessions: Sessions, *, action: str, arguments: dict[str, Any], reason: str, requester: str,
    use_case_id: int | None = None, agent_run_id: int | None = None, thread_id: str | None = None,
) -> RowView:
    """A pending approval; a pending one of the same intent (action and arguments but the evidence
    keys) and requester is reused, its evidence updated with this request's."""
    with transaction(sessions) as tx:
        return create_in(tx, action=action, arguments=arguments, reason=reason, requester=requester,
                         use_case_id=use_case_id, agent_run_id=agent_run_id, thread_id=thread_id)


def list_approvals(sessions: Sessions, status: str | None = "pending", limit: int = 100) -> list[RowView]:
    if status is not None and status not in APPROVAL_STATES:
        raise InvalidInput(f"Unknown approval status {status!r}; use one of {', '.join(APPROVAL_STATES)}.")
    with transaction(sessions) as tx:
        return tx.newest(status, limit)


def _get(tx: ApprovalTx, approval_id: int, *, lock: bool = False) -> RowView:
    a = tx.get(approval_id, lock=lock)
    if a is None:
        raise NotFound(f"Unknown approval {approval_id}; see `steward approvals list`.", kind="approval", id=approval_id)
    return a


def get(sessions: Sessions, approval_id: int) -> RowView:
    with transaction(sessions) as tx:
        return _get(tx, approval_id)


def decide(
    sessions: Sessions, approval_id: int, *, approve: bool, decider: str, reason: str | None = None
) -> RowView:
    """Approve or reject a pending approval.  Self-approval and agent deciders are refused (and the
    refusal recorded); an unknown or already decided approval is a clear error."""
    if not decider or not decider.strip():
        raise InvalidInput("A decision needs the identity of the person deciding.")
    refusal: str | None = None
    with transaction(sessions) as tx:
        a = _get(tx, approval_id, lock=True)
        if a.status != "pending":
            by = f" by {a.decided_by}" if a.decided_by else ""
            raise Conflict(
                f"Approval {approval_id} is already {a.status}{by}; only pending approvals can be decided.",
                approval_id=approval_id, status=a.status,
            )
        refusal = decision_refusal(tx.run_started_by, a, decider)
        if refusal:
            tx.record_decision(action="approval_decide", arguments={"approval_id": a.id}, verdict="deny",
                               policy=NO_SELF_APPROVAL, reason=refusal, actor=decider, use_case_id=a.use_case_id)
        else:
            return tx.update(a.id, status="approved" if approve else "rejected", decided_by=decider,
                             decision_reason=reason, decided_at=_now())
    raise PolicyDenied(f"Denied by policy {NO_SELF_APPROVAL}: {refusal}.", policy=NO_SELF_APPROVAL,
                       approval_id=approval_id)


def approve(sessions: Sessions, approval_id: int, *, decider: str, reason: str | None = None) -> RowView:
    return decide(sessions, approval_id, approve=True, decider=decider, reason=reason)


def reject(sessions: Sessions, approval_id: int, *, decider: str, reason: str | None = None) -> RowView:
    return decide(sessions, approval_id, approve=False, decider=decider, reason=reason)


def consume(tx: ApprovalTx, approval_id: int, action: str, arguments: dict[str, Any]) -> tuple[RowView | None, str]:
    """Inside the caller's transaction: if ``approval_id`` names an approved approval of this very
    action and arguments, decided by someone other than its requester, mark it executed and return
    it; otherwise return (None, why not)."""
    a = tx.get(approval_id, lock=True)
    if a is None:
        return None, f"approval {approval_id} does not exist"
    if a.action != action or not same_arguments(a.arguments, arguments):
        return None, f"approval {approval_id} is for {a.action} {a.arguments}, not {action} {_norm(arguments)}"
    if a.status != "approved":
        return None, f"approval {approval_id} is {a.status}, not approved"
    if not a.decided_by or decision_refusal(tx.run_started_by, a, a.decided_by) is not None:
        return None, f"approval {approval_id} was not decided by a person other than its requester and run starter"
    note = (a.decision_reason or "") + f" [executed {_now().isoformat(timespec='seconds')}]"
    return tx.update(a.id, status="executed", decision_reason=note), ""


def expire_for(tx: ApprovalTx, action: str, use_case_name: str, why: str) -> int:
    """Expire pending or approved-unexecuted approvals of ``action`` on one use case (a rollout ended)."""
    n = 0
    for a in tx.open_of(action, ("pending", "approved")):
        if (a.arguments or {}).get("use_case") == use_case_name:
            tx.update(a.id, status="expired", decision_reason=((a.decision_reason or "") + f" [expired: {why}]").strip())
            n += 1
    return n


def withdraw(tx: ApprovalTx, a: Any, why: str, *, by: str = "guardrails") -> bool:
    """Withdraw a pending proposal whose cause is gone: status ``withdrawn``, the reason recorded on
    the row and as a policy decision (the record), decided at now.  False when it was decided meanwhile."""
    done = tx.withdraw_if_pending(a.id, status="withdrawn", decided_by=by, decided_at=_now(),
                                  decision_reason=((a.decision_reason or "") + f" [withdrawn: {why}]").strip())
    if done:
        tx.record_decision(action=a.action, arguments={"approval_id": a.id, **intent(a.arguments)}, verdict="withdrawn",
                           policy="proposal_withdrawn", reason=why[:2000], actor=by, use_case_id=a.use_case_id)
    return done
