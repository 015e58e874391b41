"""Proposals that answer a guardrail violation (an SLO switch): kept up to date, withdrawn when the cause is gone.

A pending approval whose ``evidence["violations"]`` names violations is a proposal answering them;
its *cause* is the (policy, model) of those violations on its use case.  After each guard check
(``guard_check`` calls :func:`maintain`):

- a new open violation of the same cause (the next burst of errors) is added to the proposal's
  evidence: no second proposal, no second notification;
- when no violation of the cause is open and the last one closed at least a whole guardrail window
  ago, the proposal is withdrawn (status ``withdrawn``, the reason on the row and a
  ``policy_decisions`` record).  The playbook does not propose the same switch again within its
  cool-down (``agent/playbook.py``, ``SWITCH_COOLDOWN_MINUTES``), so a model that flaps cannot open
  and withdraw proposals in a loop.

Violation rows from before violations were kept open (no ``last_seen_at``) and never closed count
as open: such a proposal stays until a person decides it.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from modelsteward.policies.approvals import add_evidence, withdraw
from modelsteward.storage.approvals import ApprovalTx, transaction

if TYPE_CHECKING:
    from modelsteward.storage.db import Sessions

__all__ = ["maintain", "maintain_all"]


def maintain(tx: ApprovalTx, use_case_id: int, now: dt.datetime, window: dt.timedelta) -> list[dict[str, Any]]:
    """Update or withdraw the pending proposals of one use case that answer violations; returns what changed."""
    out: list[dict[str, Any]] = []
    for a in tx.pending_of_use_case(use_case_id):
        cause_ids = [int(x) for x in (a.evidence or {}).get("violations") or []]
        if not cause_ids:
            continue
        keys = {(v.policy, v.model_id) for v in tx.violations(cause_ids)}
        if not keys:
            continue
        same = [v for v in tx.violations_of(use_case_id, sorted({p for p, _ in keys})) if (v.policy, v.model_id) in keys]
        open_rows = [v for v in same if v.cleared_at is None]
        new = [v for v in open_rows if v.id not in cause_ids]
        what = ", ".join(sorted(f"{p} on {m}" for p, m in keys))
        if new:
            add_evidence(tx, a, {"at": now.isoformat(timespec="seconds"), "requester": "guardrails",
                                 "reason": "; ".join(f"violation #{v.id}: {v.policy} measured {v.measured:.4g} vs "
                                                     f"{v.threshold:.4g} on {v.model_id}" for v in new),
                                 "violations": [v.id for v in new]})
            out.append({"approval_id": a.id, "event": "evidence_updated", "violations": [v.id for v in new]})
        elif not open_rows:
            cleared = max(v.cleared_at for v in same if v.cleared_at is not None)
            if now - cleared >= window:
                why = (f"its cause cleared: no {what} since {cleared.isoformat(timespec='seconds')} "
                       f"(a whole {window.total_seconds() / 60:g}-minute guardrail window)")
                if withdraw(tx, a, why):
                    out.append({"approval_id": a.id, "event": "withdrawn", "reason": why})
    return out


def maintain_all(sessions: Sessions, use_cases: list[tuple[str, int, dt.timedelta]],
                 now: dt.datetime) -> list[dict[str, Any]]:
    """``maintain`` for each (use case name, id, guardrail window), in one transaction."""
    out: list[dict[str, Any]] = []
    with transaction(sessions) as tx:
        for name, uc_id, window in use_cases:
            out += [{"use_case": name, **p} for p in maintain(tx, uc_id, now, window)]
    return out
