"""The agent's observation as a type: what ``agent/observe.py`` builds and the tools' ``verify`` hooks read.

It lives in the tools layer so that the hooks (below the agent) can import it; ``observe.py`` builds
the plain dict the agent's state checkpoints and validates it through ``Observation``.  Parts added
by later passes (the intake plan, feedback counts) are typed fields too; a key nobody declared yet is
kept (``extra="allow"``) rather than dropped, so the checkpointed state never loses data.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Observation", "ObservedUseCase", "ObservedModel", "ObservedRollout", "ObservedCatalog",
           "ObservedFineTune", "ObservedApproval"]


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow")


class ObservedModel(_Part):
    id: str
    status: str
    kind: str | None = None
    price_in_per_m: float | None = None
    price_out_per_m: float | None = None
    context_length: int | None = None
    parent_model_id: str | None = None
    description: str = ""
    latest_test: dict[str, Any] | None = None  # id, candidate, baseline, verdict, passed, samples, metrics, at
    shadow_passed: bool = False


class ObservedRollout(_Part):
    id: int
    candidate: str
    stable: str | None = None
    strategy: str
    state: str
    step_index: int
    steps: list[Any] = Field(default_factory=list)
    last_analysis: dict[str, Any] | None = None


class ObservedFineTune(_Part):
    id: int
    status: str
    base: str | None = None
    result_model_id: str | None = None
    at: str


class ObservedUseCase(_Part):
    name: str
    description: str = ""
    current_model: str | None = None
    allocations: list[dict[str, Any]] = Field(default_factory=list)  # model_id, weight, role
    deployment_version: int | None = None
    agent_config: dict[str, Any] = Field(default_factory=dict)
    fallback: list[str] = Field(default_factory=list)
    models: list[ObservedModel] = Field(default_factory=list)
    rollouts: list[ObservedRollout] = Field(default_factory=list, description="The active ones.")
    recent_rollouts: list[dict[str, Any]] = Field(default_factory=list)
    violations: list[dict[str, Any]] = Field(default_factory=list)
    last_fine_tune: ObservedFineTune | None = None
    pending_approvals: list[int] = Field(default_factory=list)
    declined_approvals: list[dict[str, Any]] = Field(default_factory=list)
    gains_due: list[int] = Field(default_factory=list)
    feedback_since: str | None = None
    new_feedback: dict[str, Any] = Field(default_factory=dict)
    intake: dict[str, Any] | None = None

    def model(self, model_id: str) -> ObservedModel | None:
        return next((m for m in self.models if m.id == model_id), None)

    def live_models(self) -> list[str]:
        return [str(a["model_id"]) for a in self.allocations]


class ObservedCatalog(_Part):
    last_scan_at: str | None = None
    stale: bool = True


class ObservedApproval(_Part):
    id: int
    action: str
    arguments: dict[str, Any] | None = None
    use_case_id: int | None = None
    reason: str | None = None
    thread_id: str | None = None


class Observation(_Part):
    """The world the agent plans on: every use case (or one), the catalog, pending approvals."""

    at: str | None = None
    use_cases: list[ObservedUseCase] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    catalog: ObservedCatalog = Field(default_factory=ObservedCatalog)
    pending_approvals: list[ObservedApproval] = Field(default_factory=list)

    def use_case(self, name: str | None) -> ObservedUseCase | None:
        """One use case (None when it is not there)."""
        return next((u for u in self.use_cases if u.name == name), None)
