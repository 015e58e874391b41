"""The agent on PostgreSQL: registry rows and LangGraph checkpoints (PostgresSaver) in the same
database; a run parked at an approval resumes from another process's Steward."""

from __future__ import annotations

import pytest
from agent_helpers import CAND, pass_eval, routing, setup_use_case, shared_mlflow

from modelsteward.agent import resume_after_decision, run_agent
from modelsteward.context import open_steward
from modelsteward.policies import approvals
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import AgentRun


@pytest.fixture(autouse=True)
def _tracking(shared_mlflow: str) -> str:
    return shared_mlflow


@pytest.mark.postgres
def test_approval_round_trip_on_postgres(pg_steward, hosted_upstream) -> None:  # type: ignore[no-untyped-def]
    # CAND answers the check that runs before it takes traffic (when the approved deploy is carried out)
    setup_use_case(pg_steward, config={"agent": {"rollout_strategy": "full"}}, cand_url=hosted_upstream.url)
    pass_eval(pg_steward)
    res = run_agent(pg_steward)
    assert res.status == "waiting_approval", res.report
    assert not (pg_steward.settings.workspace / "checkpoints.db").exists()  # checkpoints went to PostgreSQL
    with pg_steward.engine.connect() as conn:
        n = conn.exec_driver_sql("SELECT count(*) FROM checkpoints WHERE thread_id = %s", (res.thread_id,)).scalar()
    assert n and n > 0
    approvals.approve(pg_steward.sessions, res.approval_id, decider="cli:dana")
    other = open_steward(pg_steward.settings)  # a different front-end process, same database
    try:
        resumed = resume_after_decision(other, res.approval_id)
    finally:
        other.close()
    assert resumed is not None and resumed.status == "completed", resumed and resumed.report
    assert routing(pg_steward)[1] == [{"model_id": CAND, "weight": 100.0, "role": "primary"}]
    with session_scope(pg_steward.sessions) as s:
        assert s.get(AgentRun, res.run_id).status == "completed"


@pytest.mark.postgres
def test_advisory_lock_excludes_other_hosts(pg_steward, tmp_path, shared_mlflow) -> None:  # type: ignore[no-untyped-def]
    from modelsteward.agent import AgentBusy
    from modelsteward.agent.runner import agent_lock
    from modelsteward.settings import Settings

    # another host: same database, a different workspace folder (so the file lock does not meet)
    other = open_steward(Settings(home=tmp_path / "host2", database_url=pg_steward.settings.database_url,
                                  mlflow_tracking_uri=shared_mlflow))
    try:
        with agent_lock(pg_steward):
            with pytest.raises(AgentBusy, match="another host"):
                run_agent(other)
        assert run_agent(other).status == "completed"
    finally:
        other.close()
