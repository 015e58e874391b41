"""The read model's plain views (no pydantic: the read commands' fast path builds no model class):
a stored price as the decimal it holds, and a rollout as ``rollout status`` shows it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from modelsteward.storage.states import ACTIVE_ROLLOUT_STATES

__all__ = ["plain_decimal", "rollout_dict"]


def plain_decimal(value: Any) -> Decimal | None:
    """A ``Numeric(20, 10)`` price read back as the plain decimal it holds: ``1`` and ``0``, never
    ``1.0000000000`` or ``0E-10`` (the column's scale is storage, not the value)."""
    if value is None:
        return None
    if isinstance(value, float):
        value = "%.10f" % value  # what SQLAlchemy's Numeric does with SQLite's REAL
    d = Decimal(value).normalize()
    return d.quantize(Decimal(1)) if d.as_tuple().exponent > 0 else d  # type: ignore[operator]


def _last_event(events: list[dict[str, Any]], kind: str, key: str) -> Any:
    return next((e.get(key) for e in reversed(events) if e.get("event") == kind), None)


def rollout_dict(ro: Any) -> dict[str, Any]:
    """The shape of a rollout (an ORM ``Rollout`` or any object with its attributes)."""
    steps = list(ro.steps or [])
    events = list(ro.analyses or [])
    if ro.state in ACTIVE_ROLLOUT_STATES:
        outcome = None
    elif _last_event(events, "no_gain", "reason"):
        outcome = str(_last_event(events, "no_gain", "reason"))
    elif ro.state == "completed":
        outcome = "promoted" if ro.strategy != "shadow" else "shadow passed"
    else:
        outcome = str(_last_event(events, "rolled_back", "reason") or ro.state)
    return {
        "id": ro.id, "use_case_id": ro.use_case_id, "candidate": ro.candidate_model_id, "stable": ro.stable_model_id,
        "strategy": ro.strategy, "steps": steps, "step_index": ro.step_index,
        "weight": steps[ro.step_index] if ro.step_index < len(steps) else None,
        "state": ro.state, "step_started_at": ro.step_started_at.isoformat() if ro.step_started_at else None,
        "snapshot_id": ro.snapshot_id, "actor": ro.actor, "reason": ro.reason,
        "events": events,
        "created_at": ro.created_at.isoformat() if ro.created_at else None,
        "pause_reason": _last_event(events, "pause", "reason") if ro.state == "paused" else None,
        "outcome": outcome,
    }
