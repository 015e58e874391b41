"""What the agent observes: new feedback counts from the end of the last rollout, not just the last fine-tune."""

from __future__ import annotations

import datetime as dt

from agent_helpers import CAND, STABLE, UC, setup_use_case

from modelsteward.agent.observe import observe_world
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import Rollout, UseCase, utcnow


def _log(steward, ts: dt.datetime, n: int, feedback: float) -> None:  # type: ignore[no-untyped-def]
    for i in range(n):
        steward.logs.append({"ts": ts.isoformat(), "request_id": f"r-{ts.timestamp()}-{i}", "use_case": UC,
                             "model_id": STABLE, "role": "primary", "status": "ok", "latency_ms": 10.0,
                             "feedback": feedback})
    steward.logs.flush()


def test_new_feedback_counts_from_the_last_rollout_end(steward) -> None:  # type: ignore[no-untyped-def]
    setup_use_case(steward)
    now = utcnow()
    _log(steward, now - dt.timedelta(hours=2), 7, 1.0)
    _log(steward, now - dt.timedelta(minutes=5), 3, 1.0)
    _log(steward, now - dt.timedelta(minutes=4), 2, -1.0)
    entry = observe_world(steward, UC)["use_cases"][0]
    assert entry["new_feedback"] == {"logs": 12, "high_feedback": 10} and entry["feedback_since"] is None

    ended = now - dt.timedelta(minutes=30)
    with session_scope(steward.sessions) as s:
        uc = s.query(UseCase).filter_by(name=UC).one()
        s.add(Rollout(use_case_id=uc.id, candidate_model_id=CAND, stable_model_id=STABLE, strategy="canary",
                      steps=[25, 100], state="completed", created_at=ended - dt.timedelta(minutes=10),
                      updated_at=ended))
    entry = observe_world(steward, UC)["use_cases"][0]
    assert entry["feedback_since"] == ended.isoformat()
    assert entry["new_feedback"] == {"logs": 5, "high_feedback": 3}

    with session_scope(steward.sessions) as s:  # an active rollout is no mark
        ro = s.query(Rollout).one()
        ro.state, ro.updated_at = "waiting", ended
    assert observe_world(steward, UC)["use_cases"][0]["new_feedback"]["high_feedback"] == 10
