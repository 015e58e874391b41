"""Writes of the agent's run journal: a run's row, its decisions, the approval it waits on.

Each function holds its own transaction; the agent (``agent/``) calls these instead of opening a
session.  Reads go through the read model (``storage/read/``: ``agent_run``, ``agent_runs``,
``approval``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from modelsteward.storage.db import session_scope
from modelsteward.storage.models import AgentDecision, AgentRun, Approval, UseCase
from modelsteward.storage.read.shapes import AgentRunOut

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

__all__ = ["start_run", "set_run", "link_approval", "last_scheduled_start", "replace_decisions"]


def start_run(sessions: sessionmaker[Session], *, trigger: str, goal: str, use_case: str | None, thread_id: str,
              planner: str, started_by: str | None) -> AgentRunOut:
    """A new run row, ``running`` with no steps yet; its read shape."""
    with session_scope(sessions) as s:
        run = AgentRun(trigger=trigger, goal=goal, use_case=use_case, status="running", thread_id=thread_id,
                       planner=planner, steps=[], started_by=started_by)
        s.add(run)
        s.flush()
        return AgentRunOut.model_validate(run)


def set_run(sessions: sessionmaker[Session], run_id: int, **values: Any) -> bool:
    """Set columns of run ``run_id`` (``status``, ``report``, ``steps``, ``finished_at`` ...); False: no such run."""
    with session_scope(sessions) as s:
        run = s.get(AgentRun, run_id)
        if run is None:
            return False
        for k, v in values.items():
            setattr(run, k, v)
        return True


def link_approval(sessions: sessionmaker[Session], approval_id: int, *, thread_id: str, run_id: int | None) -> None:
    """Tie an approval the run requested to the run's thread (once: a linked approval keeps its run)."""
    with session_scope(sessions) as s:
        a = s.get(Approval, approval_id)
        if a is not None and a.thread_id is None:
            a.thread_id, a.agent_run_id = thread_id, run_id


def last_scheduled_start(sessions: sessionmaker[Session]) -> dt.datetime | None:
    """When the latest scheduled run started (naive UTC), or None."""
    with session_scope(sessions) as s:
        return s.scalar(select(AgentRun.started_at).where(AgentRun.trigger == "schedule")
                        .order_by(AgentRun.started_at.desc()).limit(1))


def replace_decisions(sessions: sessionmaker[Session], run_id: int | None, records: Sequence[dict[str, Any]]) -> int:
    """Store a run's decision records (``agent.decisions.DecisionRecord`` dumps), replacing what an earlier
    pass of the same run stored; how many were stored."""
    with session_scope(sessions) as s:
        ucs = {u.name: u.id for u in s.scalars(select(UseCase))}
        if run_id is not None:
            for old in s.scalars(select(AgentDecision).where(AgentDecision.agent_run_id == run_id)):
                s.delete(old)
        for r in records:
            s.add(AgentDecision(agent_run_id=run_id, use_case_id=ucs.get(r.get("use_case") or ""), kind=r["kind"],
                                taken=bool(r.get("taken", True)), model_id=r.get("model_id"), rule=r["rule"],
                                summary=str(r.get("summary", ""))[:2000], numbers=r.get("numbers") or {},
                                evidence=r.get("evidence") or [], fingerprint=r.get("fingerprint") or {}))
    return len(records)
