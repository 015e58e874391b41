"""The entity shapes of the read model, each defined once (issue 27): the API answers with them,
the tools and the agent's observation re-export them.  Pure pydantic and the standard library: the
read commands import this module without SQLAlchemy."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator


__all__ = [
    "Ts", "RolloutOut", "TestResultOut", "FineTuningJobOut", "ViolationOut", "ApprovalOut", "AgentRunOut", "HistoryOut",
    "LiveAllocation",
]


def _utc(v: dt.datetime) -> dt.datetime:
    return v if v.tzinfo else v.replace(tzinfo=dt.timezone.utc)


Ts = Annotated[dt.datetime, AfterValidator(_utc)]  # the registry stores naive UTC; answers say so (Z)


class _Orm(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class RolloutOut(_Orm):
    id: int
    use_case_id: int
    use_case: str | None = None
    candidate_model_id: str
    stable_model_id: str | None = None
    strategy: str
    steps: list[Any]
    step_index: int
    state: str
    step_started_at: Ts | None = None
    snapshot_id: int | None = None
    analyses: list[Any]
    actor: str
    reason: str
    created_at: Ts
    updated_at: Ts


class TestResultOut(_Orm):
    __test__ = False
    id: int
    use_case_id: int
    candidate_model_id: str
    baseline_model_id: str | None = None
    verdict: str
    passed: bool
    sample_count: int
    metrics: dict[str, Any]
    reasons: list[Any]
    mlflow_run_id: str | None = None
    report_path: str | None = None
    created_at: Ts


class FineTuningJobOut(_Orm):
    id: int
    use_case_id: int | None = None
    base_model_id: str
    method: str
    status: str
    dataset_hash: str | None = None
    dataset_stats: dict[str, Any]
    config: dict[str, Any]
    metrics: dict[str, Any]
    progress: float
    mlflow_run_id: str | None = None
    result_model_id: str | None = None
    error: str | None = None
    created_at: Ts
    started_at: Ts | None = None
    finished_at: Ts | None = None


class ViolationOut(_Orm):
    id: int
    policy: str
    severity: str
    use_case_id: int | None = None
    model_id: str | None = None
    measured: float | None = None
    threshold: float | None = None
    action: str
    details: dict[str, Any]
    created_at: Ts


class ApprovalOut(_Orm):
    """An approval: the one shape the API answers, the tools return (``tools/approvals.py`` adds how to
    read ``arguments`` through the action's input model) and the agent's observation picks fields of."""

    id: int
    action: str
    arguments: dict[str, Any]
    reason: str
    requester: str
    status: str
    decided_by: str | None = None
    decision_reason: str | None = None
    decided_at: Ts | None = None
    use_case_id: int | None = None
    agent_run_id: int | None = None
    thread_id: str | None = None  # the agent thread that waits on it
    evidence: dict[str, Any] = Field(default_factory=dict, description="What the proposal answers (violation ids) "
                                     "and each later request of the same intent (``updates``).")
    created_at: Ts

    @field_validator("arguments", "evidence", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return {} if v is None else v


class AgentRunOut(_Orm):
    id: int
    trigger: str
    started_by: str | None = None  # api:NAME, cli:NAME or schedule; may not approve what the run requests
    goal: str
    use_case: str | None = None
    status: str
    thread_id: str
    planner: str
    report: str | None = None
    steps: list[Any]
    error: str | None = None
    started_at: Ts
    finished_at: Ts | None = None


class HistoryOut(_Orm):
    id: int
    action: str
    from_version: int | None = None
    to_version: int | None = None
    snapshot_id: int | None = None
    rollout_id: int | None = None
    actor: str
    reason: str
    details: dict[str, Any]
    created_at: Ts


class LiveAllocation(BaseModel):
    """One row of a use case's live routing table."""

    use_case: str
    model_id: str
    weight: float
    role: str
