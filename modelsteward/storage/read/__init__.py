"""The read model (issue 27): every query outside ``storage/`` goes through here.

One function per aggregate, one pydantic shape per entity, defined once in ``shapes.py`` and
answered as they are by the API; the tools and the agent's observation re-export them.  Times are
UTC and say so (``Ts``); lists are newest first and take ``limit`` / ``offset``.

Two backends, chosen here and invisible to callers:

- ``orm.py`` (SQLAlchemy): the functions below that take a ``Steward`` (``rollouts``, ``approval``,
  ``history`` ...).  It is imported on first use of one of them, not with this package.
- ``sqlite.py`` (``RegistryReader``, as ``Steward.reader``): the views of the read commands
  (``usecase list``, ``models list``, ``rollout status``), read with the standard library's
  ``sqlite3`` on a current SQLite workspace, so those commands never import SQLAlchemy.

Shapes (named as the API has always named them): ``RolloutOut``, ``TestResultOut`` (an
evaluation), ``FineTuningJobOut``, ``ViolationOut``, ``ApprovalOut``, ``AgentRunOut``,
``HistoryOut`` (a routing-table change), ``LiveAllocation``; ``rollout_dict`` is a rollout's view
as ``rollout status`` shows it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from modelsteward.storage.read.plain import plain_decimal, rollout_dict
from modelsteward.storage.read.sqlite import RegistryReader
from modelsteward.storage.states import ACTIVE_ROLLOUT_STATES

if TYPE_CHECKING:  # the shapes (pydantic) and the SQLAlchemy backend: imported on first use (``__getattr__``)
    from modelsteward.storage.read.shapes import (
        AgentRunOut,
        ApprovalOut,
        FineTuningJobOut,
        HistoryOut,
        LiveAllocation,
        RolloutOut,
        TestResultOut,
        Ts,
        ViolationOut,
    )
    from modelsteward.storage.read.orm import (
        agent_run,
        agent_runs,
        approval,
        approvals,
        evaluation,
        evaluations,
        history,
        job,
        jobs,
        live_allocations,
        pending_approval_count,
        rollout,
        rollouts,
        use_case_id,
        use_case_names,
        violations,
        waiting_run,
    )

_ORM = (
    "use_case_id", "use_case_names", "rollouts", "rollout", "evaluations", "evaluation", "jobs", "job", "violations",
    "approvals", "approval", "pending_approval_count", "waiting_run", "agent_runs", "agent_run", "history",
    "live_allocations",
)

_SHAPES = ("Ts", "RolloutOut", "TestResultOut", "FineTuningJobOut", "ViolationOut", "ApprovalOut", "AgentRunOut",
           "HistoryOut", "LiveAllocation")

__all__ = [*_SHAPES, "plain_decimal", "rollout_dict", "RegistryReader", "ACTIVE_ROLLOUT_STATES", *_ORM]


def __getattr__(name: str) -> Any:
    if name in _ORM or name in _SHAPES:
        module = "modelsteward.storage.read." + ("orm" if name in _ORM else "shapes")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
