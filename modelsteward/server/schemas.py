"""Response and request bodies of the management API (read models over the registry tables)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_serializer

from modelsteward.tools.base import InputModel  # every request body refuses unknown fields

__all__ = [
    "ErrorOut",
    "Me",
    "AllocationOut",
    "UseCaseOut",
    "UseCaseDetail",
    "ModelOut",
    "RolloutOut",
    "TestResultOut",
    "FineTuningJobOut",
    "ViolationOut",
    "ApprovalOut",
    "AgentRunOut",
    "HistoryOut",
    "StatsRow",
    "DecisionIn",
    "TokenIn",
    "TokenOut",
    "TokenCreated",
    "ToolOut",
]


def _utc(v: dt.datetime) -> dt.datetime:
    return v if v.tzinfo else v.replace(tzinfo=dt.timezone.utc)


Ts = Annotated[dt.datetime, AfterValidator(_utc)]  # the registry stores naive UTC; answers say so (Z)


class _Orm(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ErrorOut(BaseModel):
    """Every error: a stable code, a message, and details (field errors for 422)."""

    code: str
    message: str
    details: dict[str, Any] | None = None


class Me(BaseModel):
    name: str
    role: str
    actor: str


class AllocationOut(BaseModel):
    model_id: str
    weight: float
    role: str


class UseCaseOut(_Orm):
    id: int
    name: str
    description: str
    requirements: dict[str, Any]
    weights: dict[str, Any]
    monthly_budget_usd: float | None = None
    quality_floor: float
    fallback: list[Any]
    sticky: bool
    created_at: Ts
    updated_at: Ts


class UseCaseDetail(UseCaseOut):
    deployment_version: int
    allocations: list[AllocationOut]


class ModelOut(_Orm):
    id: str
    provider: str
    provider_model_id: str
    display_name: str
    kind: str
    status: str
    price_in_per_m: float | None = None
    price_out_per_m: float | None = None
    context_length: int | None = None
    capabilities: list[Any]
    base_url: str | None = None
    parent_model_id: str | None = None
    adapter_path: str | None = None
    use_case_id: int | None = None
    meta: dict[str, Any] = Field(default_factory=dict, serialization_alias="metadata")
    use_case_statuses: dict[str, str] = Field(
        default_factory=dict, description="Status per use case (evaluated or deployed there); `status` is the summary.")
    created_at: Ts
    updated_at: Ts

    @field_serializer("price_in_per_m", "price_out_per_m")
    def _price(self, v: Any) -> float | None:
        return None if v is None else float(v)


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
    created_at: Ts


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


class StatsRow(BaseModel):
    model_config = ConfigDict(extra="allow")
    use_case: str
    model_id: str
    role: str | None = None
    count: int


class DecisionIn(InputModel):
    """Approve or reject a pending approval; the reason is recorded with the decision."""

    reason: str = Field(default="", max_length=2000)


class TokenIn(InputModel):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    role: Literal["viewer", "operator", "approver", "admin"]


class TokenOut(_Orm):
    id: int
    name: str
    role: str
    prefix: str
    revoked: bool
    created_at: Ts


class TokenCreated(TokenOut):
    token: str = Field(description="The plain token; shown once, never stored.")


class ToolOut(BaseModel):
    name: str
    description: str
    mutating: bool
    long_running: bool
    input_schema: dict[str, Any]
