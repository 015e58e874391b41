"""Response and request bodies of the management API (read models over the registry tables)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from modelsteward.storage.read import (  # the read model's entity shapes, answered as they are
    AgentRunOut,
    ApprovalOut,
    FineTuningJobOut,
    HistoryOut,
    RolloutOut,
    TestResultOut,
    Ts,
    ViolationOut,
)
from modelsteward.storage.read.shapes import _Orm
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
