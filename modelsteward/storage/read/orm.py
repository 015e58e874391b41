"""The read model's SQLAlchemy backend: one function per aggregate over the ORM, each opening and
closing its own session and returning the detached shapes of ``shapes.py``.  Imported on first use
(``storage/read/__init__.py``), so the read commands that never need it never import SQLAlchemy."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelsteward.errors import NotFound, close_matches
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import (
    AgentRun,
    Allocation,
    Approval,
    Deployment,
    DeploymentHistory,
    FineTuningJob,
    GuardrailViolation,
    Rollout,
    TestResult,
    UseCase,
)
from modelsteward.storage.read.shapes import (
    AgentRunOut,
    ApprovalOut,
    FineTuningJobOut,
    HistoryOut,
    LiveAllocation,
    RolloutOut,
    TestResultOut,
    ViolationOut,
)
from modelsteward.storage.states import ACTIVE_ROLLOUT_STATES

__all__ = [
    "use_case_id", "use_case_names", "rollouts", "rollout", "evaluations", "evaluation", "jobs", "job", "violations",
    "approvals", "approval", "pending_approval_count", "waiting_run", "agent_runs", "agent_run", "history",
    "live_allocations",
]


class Steward(Protocol):
    """What the read model needs of a workspace (``context.Steward`` has it): its session factory."""

    @property
    def sessions(self) -> Any: ...


# ---------------------------------------------------------------- lookups
def _uc_id(s: Session, name: str) -> int:
    uc = s.scalar(select(UseCase.id).where(UseCase.name == name))
    if uc is None:
        names = list(s.scalars(select(UseCase.name)))
        raise NotFound(f"Unknown use case {name!r}." + close_matches(name, names), kind="use_case", name=name)
    return int(uc)


def use_case_id(steward: Steward, name: str) -> int:
    """The id of use case ``name`` (NotFound, with close matches, when there is none)."""
    with session_scope(steward.sessions) as s:
        return _uc_id(s, name)


def use_case_names(steward: Steward) -> dict[int, str]:
    """Use case id -> name."""
    with session_scope(steward.sessions) as s:
        return dict(s.execute(select(UseCase.id, UseCase.name)).tuples().all())


def _get(s: Session, table: Any, row_id: int, kind: str) -> Any:
    row = s.get(table, row_id)
    if row is None:
        raise NotFound(f"Unknown {kind} id {row_id}.", kind=kind, id=row_id)
    return row


def _page(q: Any, order: Any, limit: int | None, offset: int) -> Any:
    q = q.order_by(order)
    return (q.limit(limit) if limit is not None else q).offset(offset)


def _listing(steward: Steward, table: Any, shape: Any, *, use_case: str | None, limit: int | None, offset: int,
             **equal: Any) -> list[Any]:
    """Rows of ``table`` newest first, of ``use_case`` (by name) and with each given column equal to its
    value (a ``None`` or empty value filters nothing), as ``shape``."""
    with session_scope(steward.sessions) as s:
        q = select(table)
        if use_case:
            q = q.where(table.use_case_id == _uc_id(s, use_case))
        for column, value in equal.items():
            if value:
                q = q.where(getattr(table, column) == value)
        return [shape.model_validate(r) for r in s.scalars(_page(q, table.id.desc(), limit, offset))]


# ---------------------------------------------------------------- rollouts
def _rollout(s: Session, r: Rollout, names: dict[int, str] | None = None) -> RolloutOut:
    out = RolloutOut.model_validate(r)
    out.use_case = (names or {}).get(r.use_case_id) or s.scalar(select(UseCase.name).where(UseCase.id == r.use_case_id))
    return out


def rollouts(steward: Steward, *, use_case: str | None = None, state: str | None = None, active_only: bool = False,
             limit: int | None = 100, offset: int = 0, oldest_first: bool = False) -> list[RolloutOut]:
    with session_scope(steward.sessions) as s:
        q = select(Rollout)
        if use_case:
            q = q.where(Rollout.use_case_id == _uc_id(s, use_case))
        if state:
            q = q.where(Rollout.state == state)
        if active_only:
            q = q.where(Rollout.state.in_(ACTIVE_ROLLOUT_STATES))
        names = dict(s.execute(select(UseCase.id, UseCase.name)).tuples().all())
        order = Rollout.id.asc() if oldest_first else Rollout.id.desc()
        return [_rollout(s, r, names) for r in s.scalars(_page(q, order, limit, offset))]


def rollout(steward: Steward, rollout_id: int) -> RolloutOut:
    with session_scope(steward.sessions) as s:
        return _rollout(s, _get(s, Rollout, rollout_id, "rollout"))


# ---------------------------------------------------------------- evaluations (test results)
def evaluations(steward: Steward, *, use_case: str | None = None, candidate: str | None = None,
                limit: int | None = 100, offset: int = 0, oldest_first: bool = False,
                use_case_id: int | None = None) -> list[TestResultOut]:
    """Test results, newest first (of ``use_case``, by name, or ``use_case_id``; of ``candidate``)."""
    with session_scope(steward.sessions) as s:
        q = select(TestResult)
        if use_case:
            q = q.where(TestResult.use_case_id == _uc_id(s, use_case))
        if use_case_id is not None:
            q = q.where(TestResult.use_case_id == use_case_id)
        if candidate:
            q = q.where(TestResult.candidate_model_id == candidate)
        order = TestResult.id.asc() if oldest_first else TestResult.id.desc()
        return [TestResultOut.model_validate(r) for r in s.scalars(_page(q, order, limit, offset))]


def evaluation(steward: Steward, result_id: int) -> TestResultOut:
    with session_scope(steward.sessions) as s:
        return TestResultOut.model_validate(_get(s, TestResult, result_id, "evaluation"))


# ---------------------------------------------------------------- fine-tuning jobs
def jobs(steward: Steward, *, use_case: str | None = None, status: str | None = None, limit: int | None = 100,
         offset: int = 0) -> list[FineTuningJobOut]:
    return _listing(steward, FineTuningJob, FineTuningJobOut, use_case=use_case, limit=limit, offset=offset,
                    status=status)


def job(steward: Steward, job_id: int) -> FineTuningJobOut:
    with session_scope(steward.sessions) as s:
        return FineTuningJobOut.model_validate(_get(s, FineTuningJob, job_id, "fine-tuning job"))


# ---------------------------------------------------------------- guardrail violations
def violations(steward: Steward, *, use_case: str | None = None, severity: str | None = None,
               limit: int | None = 100, offset: int = 0) -> list[ViolationOut]:
    return _listing(steward, GuardrailViolation, ViolationOut, use_case=use_case, limit=limit, offset=offset,
                    severity=severity)


# ---------------------------------------------------------------- approvals
def approvals(steward: Steward, *, status: str | None = None, limit: int | None = 100,
              offset: int = 0) -> list[ApprovalOut]:
    return _listing(steward, Approval, ApprovalOut, use_case=None, limit=limit, offset=offset, status=status)


def approval(steward: Steward, approval_id: int) -> ApprovalOut:
    with session_scope(steward.sessions) as s:
        return ApprovalOut.model_validate(_get(s, Approval, approval_id, "approval"))


def pending_approval_count(steward: Steward) -> int:
    with session_scope(steward.sessions) as s:
        return int(s.scalar(select(func.count()).where(Approval.status == "pending")) or 0)


def waiting_run(steward: Steward, approval_id: int) -> int | None:
    """The agent run parked on this approval (status ``waiting_approval``), if any."""
    with session_scope(steward.sessions) as s:
        a = s.get(Approval, approval_id)
        if a is None or a.agent_run_id is None:
            return None
        status = s.scalar(select(AgentRun.status).where(AgentRun.id == a.agent_run_id))
        return a.agent_run_id if status == "waiting_approval" else None


# ---------------------------------------------------------------- agent runs
def agent_runs(steward: Steward, *, use_case: str | None = None, status: str | None = None, limit: int | None = 100,
               offset: int = 0) -> list[AgentRunOut]:
    with session_scope(steward.sessions) as s:
        q = select(AgentRun)
        if use_case:
            q = q.where(AgentRun.use_case == use_case)
        if status:
            q = q.where(AgentRun.status == status)
        return [AgentRunOut.model_validate(r) for r in s.scalars(_page(q, AgentRun.id.desc(), limit, offset))]


def agent_run(steward: Steward, run_id: int) -> AgentRunOut:
    with session_scope(steward.sessions) as s:
        return AgentRunOut.model_validate(_get(s, AgentRun, run_id, "agent run"))


# ---------------------------------------------------------------- live routing
def live_allocations(steward: Steward) -> list[LiveAllocation]:
    """Every use case's live routing rows."""
    with session_scope(steward.sessions) as s:
        names = dict(s.execute(select(UseCase.id, UseCase.name)).tuples().all())
        rows = s.execute(select(Deployment.use_case_id, Allocation.model_id, Allocation.weight, Allocation.role)
                         .join(Allocation))
        return [LiveAllocation(use_case=names.get(uc_id, str(uc_id)), model_id=m, weight=float(w), role=role)
                for uc_id, m, w, role in rows]


# ---------------------------------------------------------------- routing history
def history(steward: Steward, use_case: str, *, limit: int | None = 100, offset: int = 0) -> list[HistoryOut]:
    with session_scope(steward.sessions) as s:
        q = select(DeploymentHistory).where(DeploymentHistory.use_case_id == _uc_id(s, use_case))
        return [HistoryOut.model_validate(r) for r in s.scalars(_page(q, DeploymentHistory.id.desc(), limit, offset))]
