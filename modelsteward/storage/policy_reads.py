"""The registry reads of the policy rules, in one transaction per verdict (``reading``).

``policies/`` decides on what these return -- ``RowView`` copies and plain values, never an ORM row
or a session -- so every query a rule runs is named here, and the rules stay pure decisions.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from modelsteward.storage.db import session_scope
from modelsteward.storage.models import (
    AgentRun, Allocation, Approval, ApprovedHost, Deployment, DeploymentHistory, Model, Rollout, TestResult, UseCase,
)
from modelsteward.storage.states import ACTIVE_ROLLOUT_STATES
from modelsteward.storage.status import status_for
from modelsteward.storage.views import RowView, view

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

__all__ = ["PolicyReads", "reading"]


class PolicyReads:
    """Named reads over one open transaction (see ``reading``)."""

    def __init__(self, session: Session) -> None:
        self._s = session

    # ------------------------------------------------------------------ entities
    def use_case(self, name: object) -> RowView | None:
        if not isinstance(name, str):
            return None
        return view(self._s.scalar(select(UseCase).where(UseCase.name == name)))

    def use_case_id(self, name: object) -> int | None:
        return self._s.scalar(select(UseCase.id).where(UseCase.name == name)) if isinstance(name, str) else None

    def model(self, model_id: object) -> RowView | None:
        return view(self._s.get(Model, model_id)) if isinstance(model_id, str) else None

    def approval(self, approval_id: object) -> RowView | None:
        return view(self._s.get(Approval, approval_id)) if isinstance(approval_id, int) else None

    def status_on(self, model_id: str, use_case_id: int) -> str | None:
        """The model's status on one use case (``storage.status.status_for``); None for an unknown model."""
        m = self._s.get(Model, model_id)
        return None if m is None else status_for(self._s, m, use_case_id)

    def run_started_by(self, run_id: int) -> str | None:
        return self._s.scalar(select(AgentRun.started_by).where(AgentRun.id == run_id))

    # ------------------------------------------------------------------ routing and rollouts
    def stable_model(self, use_case_id: int) -> str | None:
        """The primary model with the largest weight in the use case's routing table."""
        dep = self._s.scalar(select(Deployment).where(Deployment.use_case_id == use_case_id))
        prim = [a for a in (dep.allocations if dep else []) if a.role == "primary"]
        return max(prim, key=lambda a: a.weight).model_id if prim else None

    def live_allocations(self, use_case_id: int) -> list[tuple[str, str, float]]:
        """(model id, role, weight) of the use case's routing table, by role then model."""
        rows = self._s.execute(
            select(Allocation.model_id, Allocation.role, Allocation.weight).join(Deployment)
            .where(Deployment.use_case_id == use_case_id).order_by(Allocation.role, Allocation.model_id)
        ).all()
        return [(mid, role, float(w)) for mid, role, w in rows]

    def model_allocations(self, model_id: str) -> list[tuple[str, str, float]]:
        """(use case name, role, weight) of every allocation of ``model_id``."""
        rows = self._s.execute(
            select(UseCase.name, Allocation.role, Allocation.weight)
            .join(Deployment, Deployment.id == Allocation.deployment_id)
            .join(UseCase, UseCase.id == Deployment.use_case_id)
            .where(Allocation.model_id == model_id)
            .order_by(UseCase.name, Allocation.role)
        ).all()
        return [(name, role, float(w)) for name, role, w in rows]

    def fallback_of(self, model_id: str) -> list[str]:
        """Names of the use cases whose fallback list names ``model_id``."""
        return [uc.name for uc in self._s.scalars(select(UseCase).order_by(UseCase.name))
                if model_id in (uc.fallback or [])]

    def is_primary_anywhere(self, model_id: str) -> bool:
        return self._s.scalar(select(Allocation.id).where(Allocation.model_id == model_id, Allocation.role == "primary")
                              .limit(1)) is not None

    def active_rollout(self, use_case_id: int) -> RowView | None:
        return view(self._s.scalars(select(Rollout).where(
            Rollout.use_case_id == use_case_id, Rollout.state.in_(ACTIVE_ROLLOUT_STATES))).first())

    def waiting_rollout(self, use_case_id: int) -> RowView | None:
        return view(self._s.scalars(select(Rollout).where(
            Rollout.use_case_id == use_case_id, Rollout.state == "waiting")).first())

    def active_rollout_of_model(self, model_id: str) -> RowView | None:
        """An active rollout with ``model_id`` as candidate or stable model."""
        return view(self._s.scalars(select(Rollout).where(
            Rollout.state.in_(ACTIVE_ROLLOUT_STATES),
            (Rollout.candidate_model_id == model_id) | (Rollout.stable_model_id == model_id))).first())

    def last_rollback_at(self, use_case_id: int) -> dt.datetime | None:
        return self._s.scalar(select(func.max(DeploymentHistory.created_at)).where(
            DeploymentHistory.use_case_id == use_case_id, DeploymentHistory.action.in_(("rollback", "rollout_abort"))))

    def deploys_since(self, use_case_id: int, since: dt.datetime) -> int:
        return int(self._s.scalar(select(func.count(DeploymentHistory.id)).where(
            DeploymentHistory.use_case_id == use_case_id, DeploymentHistory.action == "deploy",
            DeploymentHistory.created_at >= since)) or 0)

    def has_passing_eval(self, use_case_id: int, model_id: str, since: dt.datetime) -> bool:
        """A passing evaluation of ``model_id`` on the use case created at or after ``since``."""
        return self._s.scalar(select(TestResult.id).where(
            TestResult.use_case_id == use_case_id, TestResult.candidate_model_id == model_id,
            TestResult.passed.is_(True), TestResult.created_at >= since).limit(1)) is not None

    # ------------------------------------------------------------------ egress
    def approved_origins(self) -> list[str]:
        return list(self._s.scalars(select(ApprovedHost.origin)))

    def host_approval_requester(self, origin: str) -> str | None:
        """Who requested the approval through which ``origin`` was allowed (None: no such approval)."""
        row = self._s.scalar(select(ApprovedHost).where(ApprovedHost.origin == origin))
        if row is None or row.approval_id is None:
            return None
        a = self._s.get(Approval, row.approval_id)
        return None if a is None else a.requester


@contextlib.contextmanager
def reading(sessions: sessionmaker[Session]) -> Iterator[PolicyReads]:
    """One transaction for the reads of one verdict."""
    with session_scope(sessions) as s:
        yield PolicyReads(s)
