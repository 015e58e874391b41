"""The relational registry: SQLAlchemy 2 ORM tables (DESIGN.md, "Data").

Money is stored as ``Numeric`` and read back as ``Decimal`` (no float drift in prices).  Status
vocabularies live here as plain tuples so every layer names them the same way.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from modelsteward.storage.read.plain import plain_decimal
from modelsteward.storage.states import MODEL_STATUSES, ROLLOUT_STATES

__all__ = [
    "Base",
    "UseCase",
    "Model",
    "Deployment",
    "Allocation",
    "ModelSnapshot",
    "DeploymentHistory",
    "Rollout",
    "GuardrailViolation",
    "PolicyDecision",
    "FineTuningJob",
    "TestResult",
    "EvalHoldout",
    "Approval",
    "AgentRun",
    "CatalogScan",
    "ApiToken",
    "GatewayKey",
    "AgentDecision",
    "RealisedGain",
    "ControlLease",
    "ControlState",
    "Notification",
    "ModelStatusEvent",
    "ModelUseCaseStatus",
    "ApprovedHost",
    "MODEL_KINDS",
    "MODEL_STATUSES",
    "ROLES",
    "utcnow",
]

MODEL_KINDS = ("paid", "self_hosted", "fine_tuned")
ROLES = ("primary", "canary", "shadow")
APPROVAL_STATUSES = ("pending", "approved", "rejected", "expired", "executed", "withdrawn")
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")



class _Money(TypeDecorator[Decimal]):
    """``Numeric(20, 10)`` read back as the plain decimal it holds: ``1`` and ``0``, never
    ``1.0000000000`` or ``0E-10`` (the column's scale is storage, not the value)."""

    impl = Numeric(20, 10, asdecimal=True)
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        return plain_decimal(value)


PRICE = _Money()

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, Decimal: PRICE}


class TimestampMixin:
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)


class UseCase(TimestampMixin, Base):
    __tablename__ = "use_cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    # min_context, requires (["tools","json"]), max_price_per_m, latency_slo_ms, max_params_b, licenses
    requirements: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    weights: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=lambda: {"quality": 0.5, "cost": 0.3, "latency": 0.2}, nullable=False
    )
    monthly_budget_usd: Mapped[Decimal | None] = mapped_column(PRICE, nullable=True)
    quality_floor: Mapped[float] = mapped_column(Float, default=0.95, nullable=False)
    fallback: Mapped[list[Any]] = mapped_column(JSON, default=list, nullable=False)
    sticky: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    golden_set_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    initial_data_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow, nullable=False)


class Model(TimestampMixin, Base):
    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("provider", "provider_model_id", name="provider_model"),)

    id: Mapped[str] = mapped_column(String(300), primary_key=True)  # "provider:model"
    provider: Mapped[str] = mapped_column(String(50), nullable=False)
    provider_model_id: Mapped[str] = mapped_column(String(250), nullable=False)
    display_name: Mapped[str] = mapped_column(String(300), default="", nullable=False)
    kind: Mapped[str] = mapped_column(String(20), default="paid", nullable=False)
    price_in_per_m: Mapped[Decimal | None] = mapped_column(PRICE, nullable=True)
    price_out_per_m: Mapped[Decimal | None] = mapped_column(PRICE, nullable=True)
    context_length: Mapped[int | None] = mapped_column(Integer, nullable=True)
    capabilities: Mapped[list[Any]] = mapped_column(JSON, default=list, nullable=False)
    status: Mapped[str] = mapped_column(String(20), default="discovered", nullable=False)
    base_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    parent_model_id: Mapped[str | None] = mapped_column(ForeignKey("models.id"), nullable=True)
    adapter_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    mlflow_model_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    use_case_id: Mapped[int | None] = mapped_column(ForeignKey("use_cases.id", ondelete="SET NULL"), nullable=True)
    last_seen_scan_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow, nullable=False)


class Deployment(TimestampMixin, Base):
    """The live routing table of one use case; ``version`` grows by one with every change."""

    __tablename__ = "deployments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    use_case_id: Mapped[int] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"), unique=True)
    version: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow, nullable=False)
    allocations: Mapped[list[Allocation]] = relationship(
        back_populates="deployment", cascade="all, delete-orphan", order_by="Allocation.id"
    )


class Allocation(Base):
    __tablename__ = "allocations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id"), nullable=False)
    weight: Mapped[float] = mapped_column(Float, nullable=False)  # percent of live traffic, 0..100
    role: Mapped[str] = mapped_column(String(10), nullable=False)
    deployment: Mapped[Deployment] = relationship(back_populates="allocations")


class ModelSnapshot(TimestampMixin, Base):
    """The full routing table and config of a use case, taken before each change."""

    __tablename__ = "model_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    use_case_id: Mapped[int] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"), nullable=False)
    deployment_version: Mapped[int] = mapped_column(Integer, nullable=False)
    allocations: Mapped[list[Any]] = mapped_column(JSON, default=list, nullable=False)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    reason: Mapped[str] = mapped_column(Text, default="", nullable=False)


class DeploymentHistory(TimestampMixin, Base):
    __tablename__ = "deployment_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    use_case_id: Mapped[int] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"), nullable=False)
    action: Mapped[str] = mapped_column(String(40), nullable=False)
    from_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    to_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("model_snapshots.id"), nullable=True)
    rollout_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(200), default="system", nullable=False)
    reason: Mapped[str] = mapped_column(Text, default="", nullable=False)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)


class Rollout(TimestampMixin, Base):
    """A shadow / canary / full rollout of one candidate on one use case."""

    __tablename__ = "rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    use_case_id: Mapped[int] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"), nullable=False)
    candidate_model_id: Mapped[str] = mapped_column(ForeignKey("models.id"), nullable=False)
    stable_model_id: Mapped[str | None] = mapped_column(ForeignKey("models.id"), nullable=True)
    strategy: Mapped[str] = mapped_column(String(10), nullable=False)
    steps: Mapped[list[Any]] = mapped_column(JSON, default=list, nullable=False)
    step_index: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    state: Mapped[str] = mapped_column(String(20), default="running", nullable=False)
    step_started_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("model_snapshots.id"), nullable=True)
    analyses: Mapped[list[Any]] = mapped_column(JSON, default=list, nullable=False)
    actor: Mapped[str] = mapped_column(String(200), default="system", nullable=False)
    reason: Mapped[str] = mapped_column(Text, default="", nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow, nullable=False)


class GuardrailViolation(TimestampMixin, Base):
    __tablename__ = "guardrail_violations"
    __table_args__ = (Index("ix_guardrail_violations_open", "use_case_id", "policy", "cleared_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy: Mapped[str] = mapped_column(String(100), nullable=False)
    severity: Mapped[str] = mapped_column(String(20), nullable=False)  # info | warn | pause | rollback | disable
    use_case_id: Mapped[int | None] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"), nullable=True)
    model_id: Mapped[str | None] = mapped_column(String(300), nullable=True)
    measured: Mapped[float | None] = mapped_column(Float, nullable=True)
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    action: Mapped[str] = mapped_column(String(40), default="warn", nullable=False)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    # one row per (policy, use case, model) while the condition lasts: each check that finds it again
    # moves ``last_seen_at``; the first check that does not sets ``cleared_at`` (rollout/guardrails.py)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    cleared_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class PolicyDecision(TimestampMixin, Base):
    """Every policy verdict other than a plain allow (denials and approval requests), and the allows of
    audited actions (credentials created or revoked, ``policies/access_rules.py``)."""

    __tablename__ = "policy_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action: Mapped[str] = mapped_column(String(60), nullable=False)
    arguments: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    # deny | needs_approval; allow only for audited actions (credentials: policies/access_rules.py)
    verdict: Mapped[str] = mapped_column(String(20), nullable=False)
    policy: Mapped[str] = mapped_column(String(100), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    actor: Mapped[str] = mapped_column(String(200), default="system", nullable=False)
    use_case_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class FineTuningJob(TimestampMixin, Base):
    __tablename__ = "fine_tuning_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    use_case_id: Mapped[int | None] = mapped_column(ForeignKey("use_cases.id", ondelete="SET NULL"), nullable=True)
    base_model_id: Mapped[str] = mapped_column(String(300), nullable=False)
    method: Mapped[str] = mapped_column(String(10), nullable=False)  # lora | full
    status: Mapped[str] = mapped_column(String(20), default="queued", nullable=False)
    dataset_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    dataset_hash: Mapped[str | None] = mapped_column(String(80), nullable=True)
    dataset_stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    progress: Mapped[float] = mapped_column(Float, default=0.0, nullable=False)
    output_dir: Mapped[str | None] = mapped_column(Text, nullable=True)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    result_model_id: Mapped[str | None] = mapped_column(String(300), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class TestResult(TimestampMixin, Base):
    __tablename__ = "test_results"
    __test__ = False  # not a pytest class

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    use_case_id: Mapped[int] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"), nullable=False)
    candidate_model_id: Mapped[str] = mapped_column(String(300), nullable=False)
    baseline_model_id: Mapped[str | None] = mapped_column(String(300), nullable=True)
    verdict: Mapped[str] = mapped_column(String(20), nullable=False)  # pass | fail | inconclusive
    passed: Mapped[bool] = mapped_column(Boolean, nullable=False)
    sample_count: Mapped[int] = mapped_column(Integer, nullable=False)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list, nullable=False)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    report_path: Mapped[str | None] = mapped_column(Text, nullable=True)


class EvalHoldout(Base):
    """Logged requests used for evaluation; the dataset builder keeps them out of training."""

    __tablename__ = "eval_holdouts"
    __table_args__ = (UniqueConstraint("use_case_id", "request_id", name="uc_request"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    use_case_id: Mapped[int] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"), nullable=False)
    request_id: Mapped[str] = mapped_column(String(100), nullable=False)
    test_result_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Approval(TimestampMixin, Base):
    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action: Mapped[str] = mapped_column(String(60), nullable=False)  # tool name
    arguments: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    reason: Mapped[str] = mapped_column(Text, default="", nullable=False)
    requester: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(String(20), default="pending", nullable=False)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    use_case_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    agent_run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    thread_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # what the proposal answers and each update of it (policies/approvals.py: one open proposal per intent)
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class ApprovedHost(TimestampMixin, Base):
    """A host (``scheme://host:port``) an admin approved to receive model calls (``steward hosts allow``)."""

    __tablename__ = "approved_hosts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    origin: Mapped[str] = mapped_column(String(300), unique=True, nullable=False)
    approved_by: Mapped[str] = mapped_column(String(200), nullable=False)
    reason: Mapped[str] = mapped_column(Text, default="", nullable=False)
    approval_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # when it went through an approval


class AgentRun(Base):
    __tablename__ = "agent_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trigger: Mapped[str] = mapped_column(String(20), nullable=False)  # schedule | chat | api | cli
    # who started it (``api:alice``, ``cli:bob``, ``schedule``): may not approve what the run requests
    started_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    goal: Mapped[str] = mapped_column(Text, default="", nullable=False)
    use_case: Mapped[str | None] = mapped_column(String(100), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="running", nullable=False)
    thread_id: Mapped[str] = mapped_column(String(100), nullable=False)
    planner: Mapped[str] = mapped_column(String(40), default="playbook", nullable=False)
    report: Mapped[str | None] = mapped_column(Text, nullable=True)
    steps: Mapped[list[Any]] = mapped_column(JSON, default=list, nullable=False)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class CatalogScan(TimestampMixin, Base):
    """One scan of one source: what was new, gone and re-priced since the previous one."""

    __tablename__ = "catalog_scans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(50), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)  # ok | error
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    seen: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    skipped: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    new: Mapped[list[Any]] = mapped_column(JSON, default=list, nullable=False)
    gone: Mapped[list[Any]] = mapped_column(JSON, default=list, nullable=False)
    repriced: Mapped[list[Any]] = mapped_column(JSON, default=list, nullable=False)


class ApiToken(TimestampMixin, Base):
    """Management API / console tokens (hashed)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)


class GatewayKey(TimestampMixin, Base):
    """Gateway keys for applications (hashed), optionally bound to use cases."""

    __tablename__ = "gateway_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    key_hash: Mapped[str] = mapped_column(String(128), unique=True, nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    use_cases: Mapped[list[Any]] = mapped_column(JSON, default=list, nullable=False)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)


class AgentDecision(TimestampMixin, Base):
    """One decision the agent took or declined (evaluate, skip, deploy, switch ...), with its rule,
    numbers and evidence; ``fingerprint`` is what the candidate looked like (price, version, live
    model) when it was decided, so a failed candidate is re-tested only after one of them changed."""

    __tablename__ = "agent_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_run_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    use_case_id: Mapped[int | None] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"), nullable=True)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    taken: Mapped[bool] = mapped_column(Boolean, nullable=False)
    model_id: Mapped[str | None] = mapped_column(String(300), nullable=True)
    rule: Mapped[str] = mapped_column(String(100), nullable=False)
    summary: Mapped[str] = mapped_column(Text, default="", nullable=False)
    numbers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    evidence: Mapped[list[Any]] = mapped_column(JSON, default=list, nullable=False)
    fingerprint: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)


class RealisedGain(TimestampMixin, Base):
    """The gain a promotion actually brought: a window of logs before against one after, per metric
    (before, after, difference and its interval), against the gain stated when it was promoted."""

    __tablename__ = "realised_gains"
    __table_args__ = (UniqueConstraint("use_case_id", "rollout_id", name="uc_rollout"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    use_case_id: Mapped[int] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"), nullable=False)
    rollout_id: Mapped[int] = mapped_column(Integer, nullable=False)
    model_id: Mapped[str] = mapped_column(String(300), nullable=False)
    previous_model_id: Mapped[str | None] = mapped_column(String(300), nullable=True)
    promoted_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    window_hours: Mapped[float] = mapped_column(Float, nullable=False)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    stated: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    verdict: Mapped[str] = mapped_column(String(20), nullable=False)  # gain | loss | mixed | no_change | pending
    contradicts: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    note: Mapped[str] = mapped_column(Text, default="", nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow, nullable=False)


class ControlLease(Base):
    """Who runs the control loop: one row per lease name, held until ``expires_at`` (renewed by
    its holder; anyone may take it over once expired).  ``term`` grows by one with every change of
    holder, so a takeover is a compare-and-swap on (holder, term)."""

    __tablename__ = "control_leases"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200), nullable=False)
    term: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    acquired_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    renewed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)


class ControlState(Base):
    """Small named values of the control loop kept in the registry (notification cursors, the
    agent schedule's anchor), so that they survive restarts and leader changes."""

    __tablename__ = "control_state"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow, nullable=False)


class Notification(TimestampMixin, Base):
    """The notification outbox: one row per event (``key`` makes it once), delivered by the leader
    to every configured target; ``delivered`` lists the targets (hashed) already reached."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    event: Mapped[str] = mapped_column(String(40), nullable=False)
    use_case: Mapped[str | None] = mapped_column(String(100), nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    status: Mapped[str] = mapped_column(String(20), default="pending", nullable=False)  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    delivered: Mapped[list[Any]] = mapped_column(JSON, default=list, nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class ModelUseCaseStatus(Base):
    """A model's status for one use case (``storage/status.py`` owns every change); the model's own
    ``status`` is the summary over these rows."""

    __tablename__ = "model_use_case_status"
    __table_args__ = (UniqueConstraint("model_id", "use_case_id", name="model_use_case"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), nullable=False)
    use_case_id: Mapped[int] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow, nullable=False)


class ModelStatusEvent(TimestampMixin, Base):
    """The audit trail of model status changes: one row per named event (``storage/status.py``).
    ``use_case`` is kept by name too, so the trail outlives a deleted use case."""

    __tablename__ = "model_status_events"
    __table_args__ = (Index("ix_model_status_events_model", "model_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[str] = mapped_column(String(300), nullable=False)
    use_case_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    use_case: Mapped[str | None] = mapped_column(String(100), nullable=True)
    event: Mapped[str] = mapped_column(String(40), nullable=False)
    from_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    to_status: Mapped[str] = mapped_column(String(20), nullable=False)
    global_status: Mapped[str] = mapped_column(String(20), nullable=False)  # the model's summary afterwards
    actor: Mapped[str] = mapped_column(String(200), default="system", nullable=False)
    reason: Mapped[str] = mapped_column(Text, default="", nullable=False)
