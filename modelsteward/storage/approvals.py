"""The registry side of approvals, proposals and policy decisions: one ``ApprovalTx`` per transaction.

``policies/approvals.py`` and ``policies/proposals.py`` hold the rules (who may decide, one open
proposal per intent, when a proposal is withdrawn); this module holds every query and write they
need, over one transaction opened by ``transaction`` (commit on success, roll back on error), so
a unit that was atomic stays atomic and leader fencing (``storage.lease.install_fence``) applies
to its writes as to any other.  Rows go out as ``RowView`` copies.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from modelsteward.storage.db import session_scope
from modelsteward.storage.models import AgentRun, Approval, GuardrailViolation, PolicyDecision, Rollout, UseCase
from modelsteward.storage.views import RowView, view, view_of, views

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

__all__ = ["ApprovalTx", "transaction"]

_FIELDS = frozenset({"status", "decided_by", "decision_reason", "decided_at", "evidence"})


class ApprovalTx:
    """Approval reads and writes inside one open transaction."""

    def __init__(self, session: Session) -> None:
        self._s = session

    # ------------------------------------------------------------------ reads
    def get(self, approval_id: int, *, lock: bool = False) -> RowView | None:
        q = select(Approval).where(Approval.id == approval_id)
        return view(self._s.scalar(q.with_for_update() if lock else q))

    def newest(self, status: str | None, limit: int) -> list[RowView]:
        """Approvals (of ``status``, or all), newest first."""
        q = select(Approval).order_by(Approval.id.desc()).limit(limit)
        if status is not None:
            q = q.where(Approval.status == status)
        return views(self._s.scalars(q))

    def pending(self, action: str) -> list[RowView]:
        """Pending approvals of ``action``, oldest first, locked for this transaction."""
        return views(self._s.scalars(select(Approval).where(Approval.action == action, Approval.status == "pending")
                                     .order_by(Approval.id).with_for_update()))

    def pending_of_use_case(self, use_case_id: int) -> list[RowView]:
        return views(self._s.scalars(select(Approval).where(Approval.use_case_id == use_case_id,
                                                            Approval.status == "pending").order_by(Approval.id)))

    def open_of(self, action: str, states: tuple[str, ...]) -> list[RowView]:
        return views(self._s.scalars(select(Approval).where(Approval.action == action, Approval.status.in_(states))))

    def run_started_by(self, run_id: int) -> str | None:
        return self._s.scalar(select(AgentRun.started_by).where(AgentRun.id == run_id))

    def use_case_id(self, name: object) -> int | None:
        return self._s.scalar(select(UseCase.id).where(UseCase.name == name)) if isinstance(name, str) else None

    def last_rollout(self, use_case_id: int) -> RowView | None:
        return view(self._s.scalars(select(Rollout).where(Rollout.use_case_id == use_case_id)
                                    .order_by(Rollout.id.desc())).first())

    def violations(self, ids: list[int]) -> list[RowView]:
        return views(self._s.scalars(select(GuardrailViolation).where(GuardrailViolation.id.in_(ids))))

    def violations_of(self, use_case_id: int, policies: list[str]) -> list[RowView]:
        return views(self._s.scalars(select(GuardrailViolation).where(
            GuardrailViolation.use_case_id == use_case_id, GuardrailViolation.policy.in_(policies))))

    # ------------------------------------------------------------------ writes
    def add(self, **fields: Any) -> RowView:
        """A new approval row (flushed: it has its id)."""
        a = Approval(**fields)
        self._s.add(a)
        self._s.flush()
        return view_of(a)

    def update(self, approval_id: int, **fields: Any) -> RowView:
        """Set ``fields`` (status, decided_by, decision_reason, decided_at, evidence) of one approval."""
        unknown = set(fields) - _FIELDS
        if unknown:
            raise TypeError(f"ApprovalTx.update cannot set {sorted(unknown)}; settable: {sorted(_FIELDS)}")
        a = self._s.get(Approval, approval_id)
        if a is None:
            raise LookupError(f"approval {approval_id} vanished inside its transaction")
        for k, v in fields.items():
            setattr(a, k, v)
        self._s.flush()
        return view_of(a)

    def withdraw_if_pending(self, approval_id: int, **fields: Any) -> bool:
        """Set ``fields`` on a still pending approval; False when it was decided meanwhile."""
        a = self._s.scalar(select(Approval).where(Approval.id == approval_id).with_for_update())
        if a is None or a.status != "pending":
            return False
        self.update(approval_id, **fields)
        return True

    def record_decision(self, *, action: str, arguments: dict[str, Any], verdict: str, policy: str, reason: str,
                        actor: str, use_case_id: int | None) -> None:
        """A ``policy_decisions`` row (every verdict but a plain allow)."""
        self._s.add(PolicyDecision(action=action, arguments=dict(arguments), verdict=verdict, policy=policy[:100],
                                   reason=reason, actor=actor, use_case_id=use_case_id))


@contextlib.contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[ApprovalTx]:
    """One transaction: commit on success, roll back on any error."""
    with session_scope(sessions) as s:
        yield ApprovalTx(s)
