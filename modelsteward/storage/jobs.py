"""The registry side of fine-tuning jobs (``fine_tuning_jobs``) and of the request ids an
evaluation held out of training (``eval_holdouts``): each function one transaction.  Rows go out
as ``RowView`` copies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from modelsteward.errors import Conflict, NotFound
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import EvalHoldout, FineTuningJob
from modelsteward.storage.views import RowView, view_of

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

__all__ = ["holdout_ids", "add_job", "get_job", "update_job", "request_cancel"]


def holdout_ids(sessions: sessionmaker[Session], use_case_id: int) -> list[str]:
    """Request ids of the use case that evaluations held out (never training data)."""
    with session_scope(sessions) as s:
        return list(s.scalars(select(EvalHoldout.request_id).where(EvalHoldout.use_case_id == use_case_id)))


def add_job(sessions: sessionmaker[Session], **fields: Any) -> int:
    """A new ``fine_tuning_jobs`` row; its id."""
    with session_scope(sessions) as s:
        job = FineTuningJob(**fields)
        s.add(job)
        s.flush()
        return int(job.id)


def _job(s: Session, job_id: int) -> FineTuningJob:
    job = s.get(FineTuningJob, job_id)
    if job is None:
        raise NotFound(f"Unknown fine-tuning job {job_id}.", kind="fine_tuning_job", id=job_id)
    return job


def get_job(sessions: sessionmaker[Session], job_id: int) -> RowView:
    with session_scope(sessions) as s:
        return view_of(_job(s, job_id))


def update_job(sessions: sessionmaker[Session], job_id: int, **fields: Any) -> None:
    with session_scope(sessions) as s:
        job = _job(s, job_id)
        for k, v in fields.items():
            setattr(job, k, v)


def request_cancel(sessions: sessionmaker[Session], job_id: int) -> RowView:
    """Mark a queued or running job ``cancel_requested`` (a Conflict for any other status)."""
    with session_scope(sessions) as s:
        job = _job(s, job_id)
        if job.status not in ("queued", "running"):
            raise Conflict(f"Job {job_id} is {job.status}; only queued or running jobs can be cancelled.")
        job.cancel_requested = True
        s.flush()
        return view_of(job)
