"""The registry side of evaluations (``test_results``, ``eval_holdouts``) and of the model status
events an evaluation moves: each function is one transaction, with the unit's writes inside it.

``evals/`` decides (the gate, the benefit, which status event applies); this module stores what it
decided and answers the reads the rollout and the ledger make of evaluations.  Rows go out as
``RowView`` copies, ids as ints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from modelsteward.storage.db import session_scope
from modelsteward.storage.models import EvalHoldout, Model, TestResult
from modelsteward.storage.status import EVENTS, apply_status_event, status_for
from modelsteward.storage.views import RowView, view

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

__all__ = ["latest_passing", "status_event_if", "record_result"]


def latest_passing(sessions: sessionmaker[Session], use_case_id: int, candidate: str, baseline: str | None, *,
                   any_baseline: bool = False) -> RowView | None:
    """The newest passing evaluation of ``candidate`` against ``baseline`` on the use case (against
    any baseline with ``any_baseline``)."""
    q = select(TestResult).where(TestResult.use_case_id == use_case_id, TestResult.candidate_model_id == candidate,
                                 TestResult.passed.is_(True))
    if not any_baseline:
        q = q.where(TestResult.baseline_model_id == baseline)
    with session_scope(sessions) as s:
        return view(s.scalars(q.order_by(TestResult.id.desc()).limit(1)).first())


def _event_if(s: Session, model_id: str, use_case_id: int, event: str, allowed: Sequence[str] | None,
              actor: str, reason: str | None) -> bool:
    m = s.get(Model, model_id)
    if m is None or status_for(s, m, use_case_id) not in (EVENTS[event] if allowed is None else allowed):
        return False
    apply_status_event(s, m, event, use_case_id, actor=actor, **({"reason": reason} if reason is not None else {}))
    return True


def status_event_if(sessions: sessionmaker[Session], model_id: str, use_case_id: int, event: str, *,
                    allowed: Sequence[str] | None = None, actor: str, reason: str | None = None) -> bool:
    """Apply status ``event`` to the model on the use case when its status there is one the event
    leaves from (or one of ``allowed``); True when it did."""
    with session_scope(sessions) as s:
        return _event_if(s, model_id, use_case_id, event, allowed, actor, reason)


def _throughput(s: Session, model_id: str, tokens_per_s: float | None, run_at: int) -> None:
    """A model with a configured hourly cost keeps the throughput measured here (its cost per request)."""
    m = s.get(Model, model_id)
    host = dict((m.meta or {}).get("hosting") or {}) if m is not None else {}
    if m is None or not tokens_per_s or host.get("cost_per_hour_usd") is None:
        return
    host.update(measured_tokens_per_s=round(float(tokens_per_s), 3), measured_by_test_result=run_at)
    m.meta = {**(m.meta or {}), "hosting": host}


def record_result(sessions: sessionmaker[Session], *, use_case_id: int, candidate: str, baseline: str,
                  verdict: str, passed: bool, sample_count: int, metrics: dict[str, Any], reasons: list[Any],
                  mlflow_run_id: str | None = None, report_path: str | None = None,
                  holdout_ids: Sequence[str] = (), status_event: str | None = None, actor: str = "system",
                  tokens_per_s: float | None = None) -> int:
    """One transaction: the ``test_results`` row, the request ids held out from training, the status
    event of the verdict (where the model's status takes it) and the measured throughput; its id."""
    with session_scope(sessions) as s:
        tr = TestResult(use_case_id=use_case_id, candidate_model_id=candidate, baseline_model_id=baseline,
                        verdict=verdict, passed=passed, sample_count=sample_count, metrics=metrics, reasons=reasons,
                        mlflow_run_id=mlflow_run_id, report_path=report_path)
        s.add(tr)
        s.flush()
        if holdout_ids:
            have = set(s.scalars(select(EvalHoldout.request_id).where(
                EvalHoldout.use_case_id == use_case_id, EvalHoldout.request_id.in_(list(holdout_ids)))))
            for rid in dict.fromkeys(holdout_ids):
                if rid not in have:
                    s.add(EvalHoldout(use_case_id=use_case_id, request_id=rid, test_result_id=tr.id))
        if status_event is not None:
            _event_if(s, candidate, use_case_id, status_event, None, actor, f"evaluation {tr.id}")
        _throughput(s, candidate, tokens_per_s, tr.id)
        return int(tr.id)
