"""Scheduled agent runs: ``steward agent schedule --every 1h``.

- No overlap: each run takes the workspace agent lock without waiting; if another run (a second
  scheduler, a manual ``agent run``) is executing, that tick is skipped and recorded as such.
- Scheduled runs are started by ``schedule`` (no person): anyone with the approver role may
  approve what they request.
- A missed run is not run twice: the next due time comes from the last *scheduled* run stored in
  ``agent_runs``; after downtime the scheduler runs once, then waits a full period (no catch-up
  burst of every missed slot).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelsteward.agent.runner import AgentBusy, AgentResult, run_agent
from modelsteward.context import Steward
from modelsteward.errors import InvalidInput
from modelsteward.policies.approvals import SCHEDULE_STARTER
from modelsteward.storage import runs
from modelsteward.timeutil import parse_duration
from modelsteward.timeutil import utc_now_naive as utcnow

__all__ = ["parse_every", "next_due", "run_schedule", "Tick"]

def parse_every(text: str) -> dt.timedelta:
    """'90s', '15m', '1h', '1d' (or combos like '1h30m') -> timedelta; at least one second."""
    try:
        every = parse_duration(text, units="smhd", compound=True)
    except InvalidInput:
        raise InvalidInput(f"Cannot read interval {text!r}; use e.g. 30s, 15m, 1h, 1d.") from None
    if every.total_seconds() < 1:
        raise InvalidInput(f"Interval {text!r} is shorter than one second.")
    return every


def _last_scheduled(steward: Steward) -> dt.datetime | None:
    return runs.last_scheduled_start(steward.sessions)


def next_due(steward: Steward, every: dt.timedelta, now: dt.datetime | None = None) -> dt.datetime:
    """When the next scheduled run is due: last scheduled start + every, never in the past twice."""
    now = now or utcnow()
    last = _last_scheduled(steward)
    if last is None:
        return now
    due = last + every
    return due if due > now else now


@dataclass
class Tick:
    at: str
    status: str  # completed | failed | waiting_approval | skipped_busy
    run_id: int | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "status": self.status, "run_id": self.run_id, "detail": self.detail}


def run_schedule(
    steward: Steward,
    every: dt.timedelta,
    *,
    use_case: str | None = None,
    goal: str = "",
    max_runs: int | None = None,
    on_tick: Callable[[Tick], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Tick]:
    """Run the agent every ``every`` until ``max_runs`` ticks (forever when None)."""
    ticks: list[Tick] = []
    while max_runs is None or len(ticks) < max_runs:
        wait = (next_due(steward, every) - utcnow()).total_seconds()
        if wait > 0:
            sleep(min(wait, 60.0))
            continue
        at = utcnow().isoformat(timespec="seconds")
        try:
            res: AgentResult = run_agent(steward, goal=goal, use_case=use_case, trigger="schedule", lock_wait=0.0,
                                         started_by=SCHEDULE_STARTER)
            tick = Tick(at, res.status, res.run_id, res.error or "")
        except AgentBusy as exc:
            tick = Tick(at, "skipped_busy", None, exc.message)
            sleep(min(every.total_seconds(), 60.0))
        ticks.append(tick)
        if on_tick is not None:
            on_tick(tick)
    return ticks
