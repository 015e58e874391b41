"""The registry side of guardrail violations and the realised-gain ledger: each function one
transaction with the unit's writes inside it.  ``rollout/`` decides (what is violated, how an open
violation's numbers merge, what a promotion realised); this module stores it.  Rows go out as
``RowView`` copies.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from modelsteward.storage.db import session_scope
from modelsteward.storage.models import GuardrailViolation, RealisedGain, Rollout, UseCase
from modelsteward.storage.views import RowView, view, views

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

__all__ = ["record_check", "promotions", "gains", "upsert_gain", "gain_entries"]

_VIOLATION_FIELDS = ("policy", "severity", "model_id", "measured", "threshold", "action", "details")


def record_check(sessions: sessionmaker[Session], use_case: str, found: Sequence[dict[str, Any]], now: dt.datetime,
                 merge: Callable[[RowView, dict[str, Any]], dict[str, Any]]) -> list[int]:
    """One guard check of ``use_case``, one transaction: each violation ``found`` (a dict of the
    ``guardrail_violations`` columns) updates the open row of its (policy, model) with the fields
    ``merge(open row, found)`` returns, or opens a row; open rows the check did not find are
    closed (``cleared_at``).  Rows without ``last_seen_at`` (written elsewhere) are left alone.
    Returns the row id of each ``found``, in order."""
    ids: list[int] = []
    with session_scope(sessions) as s:
        uc_id = s.scalar(select(UseCase.id).where(UseCase.name == use_case))
        open_rows = {(r.policy, r.model_id): r for r in s.scalars(
            select(GuardrailViolation).where(GuardrailViolation.use_case_id == uc_id,
                                             GuardrailViolation.last_seen_at.is_not(None),
                                             GuardrailViolation.cleared_at.is_(None))
            .order_by(GuardrailViolation.id))}
        for v in found:
            row = open_rows.pop((v["policy"], v["model_id"]), None)
            if row is None:
                row = GuardrailViolation(use_case_id=uc_id, last_seen_at=now,
                                         **{k: v[k] for k in _VIOLATION_FIELDS})
                s.add(row)
            else:
                old = view(row)
                assert old is not None
                for k, value in merge(old, v).items():
                    setattr(row, k, value)
            s.flush()
            ids.append(int(row.id))
        for row in open_rows.values():
            row.cleared_at = now
    return ids


def promotions(sessions: sessionmaker[Session], use_case_id: int, strategies: Sequence[str],
               since: dt.datetime) -> list[RowView]:
    """Completed rollouts of ``strategies`` on the use case updated since ``since``, oldest first."""
    with session_scope(sessions) as s:
        return views(s.scalars(select(Rollout).where(
            Rollout.use_case_id == use_case_id, Rollout.state == "completed", Rollout.strategy.in_(list(strategies)),
            Rollout.updated_at >= since).order_by(Rollout.id)))


def gains(sessions: sessionmaker[Session], use_case_id: int) -> dict[int, RowView]:
    """The ledger entries of the use case by rollout id."""
    with session_scope(sessions) as s:
        return {g.rollout_id: g for g in views(s.scalars(select(RealisedGain)
                                                          .where(RealisedGain.use_case_id == use_case_id)))}


def upsert_gain(sessions: sessionmaker[Session], *, use_case_id: int, rollout_id: int, model_id: str,
                previous_model_id: str | None, promoted_at: dt.datetime, window_hours: float, now: dt.datetime,
                fields: dict[str, Any], violation: dict[str, Any] | None) -> None:
    """One transaction: the ledger entry of a rollout created or updated with ``fields`` (metrics,
    stated, verdict, contradicts, note); when it newly contradicts, the ``violation`` row (its
    ``details`` get the entry's ``ledger_id``)."""
    with session_scope(sessions) as s:
        row = s.scalar(select(RealisedGain).where(RealisedGain.use_case_id == use_case_id,
                                                  RealisedGain.rollout_id == rollout_id))
        was = bool(row and row.contradicts)
        if row is None:
            row = RealisedGain(use_case_id=use_case_id, rollout_id=rollout_id, model_id=model_id,
                               previous_model_id=previous_model_id, promoted_at=promoted_at,
                               window_hours=window_hours, verdict=fields["verdict"])
            s.add(row)
        for k, v in fields.items():
            setattr(row, k, v)
        row.window_hours, row.updated_at = window_hours, now
        s.flush()
        if fields.get("contradicts") and not was and violation is not None:
            s.add(GuardrailViolation(use_case_id=use_case_id, model_id=model_id,
                                     **{**violation, "details": {"ledger_id": row.id, **violation.get("details", {})}}))


def gain_entries(sessions: sessionmaker[Session], use_case: str, since: dt.datetime,
                 strategies: Sequence[str]) -> list[RowView]:
    """Ledger entries of ``use_case`` promoted since ``since`` by rollouts of ``strategies``, oldest first."""
    with session_scope(sessions) as s:
        uc_id = s.scalar(select(UseCase.id).where(UseCase.name == use_case))
        return views(s.scalars(select(RealisedGain).join(Rollout, Rollout.id == RealisedGain.rollout_id)
                               .where(RealisedGain.use_case_id == uc_id, RealisedGain.promoted_at >= since,
                                      Rollout.strategy.in_(list(strategies)))
                               .order_by(RealisedGain.promoted_at)))
