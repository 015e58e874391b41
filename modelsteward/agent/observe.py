"""Read-only snapshot of the world the agent plans on (the observe and verify nodes).

The stored part is the read model's (``storage/read/world.py``); the log feedback and the intake plan are added here.  Every part that
depends on another area's storage (log store, scans) degrades to an ``errors`` entry instead of
failing the run.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from modelsteward.context import Steward
from modelsteward.storage.read.world import SCAN_STALE_AFTER, extra_models, world
from modelsteward.storage.states import ACTIVE_ROLLOUT_STATES
from modelsteward.tools.observation import Observation
from modelsteward.timeutil import utc_now_naive as utcnow

__all__ = ["observe", "observe_world", "ACTIVE_ROLLOUT_STATES", "SCAN_STALE_AFTER", "HIGH_FEEDBACK"]

HIGH_FEEDBACK = 0.5  # a logged request with feedback >= this counts toward fine-tuning data


def _feedback_counts(steward: Steward, name: str, since: dt.datetime | None) -> dict[str, Any]:
    sql = "SELECT count(*) AS n, count(*) FILTER (WHERE feedback >= ?) AS high FROM logs WHERE use_case = ?"
    params: list[Any] = [HIGH_FEEDBACK, name]
    if since is not None:
        sql += " AND CAST(ts AS TIMESTAMP) > CAST(? AS TIMESTAMP)"
        params.append(since.isoformat())
    rows = steward.logs.query(sql, params)
    return {"logs": int(rows[0]["n"] or 0), "high_feedback": int(rows[0]["high"] or 0)} if rows else {}


def _add_intake(steward: Steward, out: dict[str, Any]) -> None:
    """Candidate intake per use case (``entry["intake"]``); unlinked candidates join ``entry["models"]``."""
    from modelsteward.agent.intake import plan_intake

    for entry in out["use_cases"]:
        try:
            entry["intake"] = plan_intake(steward, entry["name"], entry)
        except Exception as exc:  # noqa: BLE001 - reported; the planner falls back to the linked candidates
            out["errors"].append(f"intake for {entry['name']}: {type(exc).__name__}: {exc}"[:300])
            continue
        have = {m["id"] for m in entry["models"]}
        extra = [c for c in entry["intake"]["candidates"] if c not in have]
        if extra:
            entry["models"].extend(extra_models(steward.registry, entry["name"], extra))


def _add_new_feedback(steward: Steward, out: dict[str, Any], errors: list[str]) -> None:
    """Each use case's "new" feedback counts (the fine-tune trigger)."""
    for entry in out["use_cases"]:
        # "new" feedback: since the last fine-tune or the end of the last rollout, whichever is later
        # (after a promotion or a rollback, what users said about the previous set-up is spent)
        marks = [dt.datetime.fromisoformat(entry["last_fine_tune"]["at"])] if entry["last_fine_tune"] else []
        marks += [dt.datetime.fromisoformat(r["updated_at"]) for r in entry["recent_rollouts"]
                  if r["updated_at"] and r["state"] not in ACTIVE_ROLLOUT_STATES]
        since = max(marks) if marks else None
        entry["feedback_since"] = since.isoformat() if since else None
        try:
            entry["new_feedback"] = _feedback_counts(steward, entry["name"], since)
        except Exception as exc:  # noqa: BLE001 - the log store is optional for planning
            entry["new_feedback"] = {}
            errors.append(f"logs for {entry['name']}: {type(exc).__name__}: {exc}"[:300])


def observe_world(steward: Steward, use_case: str | None = None, *, with_intake: bool = False) -> dict[str, Any]:
    """The use cases (or just ``use_case``) with routing, candidates, tests, rollouts, violations;
    ``with_intake``: also the candidate intake plan (ranks the registry: the observe node asks once per run)."""
    reg = steward.registry
    now = utcnow()
    errors: list[str] = []
    out: dict[str, Any] = {"at": now.isoformat(), "use_cases": [], "errors": errors}
    stored = world(reg, now, use_case)
    out["catalog"], out["pending_approvals"] = stored["catalog"], stored["pending_approvals"]
    out["use_cases"].extend(stored["use_cases"])
    if with_intake:
        _add_intake(steward, out)
    _add_new_feedback(steward, out, errors)
    return out


def observe(steward: Steward, use_case: str | None = None, *, with_intake: bool = False) -> Observation:
    """``observe_world`` as its type (``tools/observation.py``): what the tools see of the agent's world."""
    return Observation.model_validate(observe_world(steward, use_case, with_intake=with_intake))
