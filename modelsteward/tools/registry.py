"""Registry tools: use cases and models (create, update, read)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field, field_validator

from modelsteward.storage.models import Model, UseCase
from modelsteward.tools.base import InputModel, ToolContext, tool

__all__ = [
    "UseCaseInfo", "ModelInfo", "UseCaseAddInput", "ModelRegisterInput", "use_case_info", "model_info",
    "ListUseCasesInput", "UseCaseList", "ListModelsInput", "ModelList",
]


class UseCaseInfo(BaseModel):
    name: str
    description: str
    requirements: dict[str, Any]
    weights: dict[str, float]
    monthly_budget_usd: Decimal | None
    quality_floor: float
    fallback: list[str]
    sticky: bool
    deployment_version: int = 0
    allocations: list[dict[str, Any]] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class ModelInfo(BaseModel):
    id: str
    provider: str
    provider_model_id: str
    kind: str
    status: str
    price_in_per_m: Decimal | None
    price_out_per_m: Decimal | None
    context_length: int | None
    capabilities: list[str]
    base_url: str | None = None
    parent_model_id: str | None = None
    adapter_path: str | None = None
    mlflow_model_uri: str | None = None
    display_name: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


def model_info(m: Model) -> ModelInfo:
    return ModelInfo(
        id=m.id, provider=m.provider, provider_model_id=m.provider_model_id, kind=m.kind, status=m.status,
        price_in_per_m=m.price_in_per_m, price_out_per_m=m.price_out_per_m, context_length=m.context_length,
        capabilities=list(m.capabilities or []), base_url=m.base_url, parent_model_id=m.parent_model_id,
        adapter_path=m.adapter_path, mlflow_model_uri=m.mlflow_model_uri, display_name=m.display_name or "",
        metadata=dict(m.meta or {}),
    )


def use_case_info(ctx: ToolContext, uc: UseCase, warnings: list[str] | None = None) -> UseCaseInfo:
    reg = ctx.steward.registry
    dep = reg.deployment(uc.name)
    return UseCaseInfo(
        name=uc.name, description=uc.description, requirements=dict(uc.requirements or {}),
        weights=dict(uc.weights or {}), monthly_budget_usd=uc.monthly_budget_usd, quality_floor=uc.quality_floor,
        fallback=list(uc.fallback or []), sticky=uc.sticky, deployment_version=dep.version,
        allocations=reg.routing_table(dep), warnings=warnings or [],
    )


class UseCaseAddInput(InputModel):
    name: str = Field(min_length=1, max_length=100)
    description: str = ""
    model: str | None = Field(default=None, description="First model, live at 100% at once.")
    fallback: list[str] = Field(default_factory=list)
    budget_usd: Decimal | None = Field(default=None, ge=0)
    weights: dict[str, float] | None = None
    min_context: int | None = Field(default=None, gt=0)
    latency_slo_ms: float | None = Field(default=None, gt=0)
    requires: list[str] = Field(default_factory=list)
    max_price_per_m: Decimal | None = Field(default=None, ge=0)
    sticky: bool = False
    golden_set: str | None = None
    initial_data: str | None = None

    @field_validator("requires")
    @classmethod
    def _known_requirements(cls, v: list[str]) -> list[str]:
        bad = sorted(set(v) - {"tools", "json", "vision", "reasoning"})
        if bad:
            raise ValueError(f"unknown requirement(s) {bad}; use tools, json, vision, reasoning")
        return sorted(set(v))


@tool("usecase_add", input_model=UseCaseAddInput, output_model=UseCaseInfo, mutating=True)
def usecase_add(ctx: ToolContext, inp: UseCaseAddInput) -> UseCaseInfo:
    """Create a use case; with a model, that model goes live at 100% at once."""
    from modelsteward.storage.registry import normalise_weights

    warnings: list[str] = []
    if inp.weights is not None:
        _, warn = normalise_weights(inp.weights)
        if warn:
            warnings.append(warn)
    req: dict[str, Any] = {}
    if inp.min_context:
        req["min_context"] = inp.min_context
    if inp.latency_slo_ms:
        req["latency_slo_ms"] = inp.latency_slo_ms
    if inp.requires:
        req["requires"] = inp.requires
    if inp.max_price_per_m is not None:
        req["max_price_per_m"] = str(inp.max_price_per_m)
    if inp.golden_set:
        _check_golden_set(inp.golden_set)
    uc = ctx.steward.registry.add_use_case(
        inp.name, description=inp.description, requirements=req, weights=inp.weights,
        monthly_budget_usd=inp.budget_usd, fallback=inp.fallback, model=inp.model, sticky=inp.sticky,
        golden_set_path=inp.golden_set, initial_data_path=inp.initial_data, actor=ctx.actor,
    )
    return use_case_info(ctx, uc, warnings)


def _check_golden_set(path: str) -> None:
    """Read the golden set now, so a missing or malformed file fails when it is given, naming it."""
    from modelsteward.errors import InvalidInput
    from modelsteward.evals.replay import load_golden_set

    try:
        items = load_golden_set(path)
    except InvalidInput as exc:
        reason = exc.message.replace("; fix the use case's golden_set_path", "")
        raise InvalidInput(f"golden_set: {reason}", field="golden_set") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"golden_set: cannot read {path!r}: {exc}.", field="golden_set") from exc
    if not items:
        raise InvalidInput(f"golden_set: {path!r} holds no prompts (one JSON object per line: "
                           '{"prompt": ...} or {"messages": [...]}, optional "reference").', field="golden_set")


class ModelRegisterInput(InputModel):
    provider: str
    model_id: str = Field(min_length=1, description="The provider's own model id.")
    base_url: str | None = None
    price_in: Decimal | None = Field(default=None, description="USD per million input tokens")
    price_out: Decimal | None = Field(default=None, description="USD per million output tokens")
    context: int | None = None
    use_case: str | None = None
    kind: str | None = None
    capabilities: list[str] | None = None
    status: str | None = None
    cost_per_hour: str | None = Field(default=None, description="Self-hosted: USD per hour of the machine serving it")
    hardware: str | None = Field(default=None, description="Self-hosted: hardware profile (cpu, gpu-small, "
                                 "gpu-medium, gpu-large)")
    hosting_cost: str | None = Field(default=None, description="Self-hosted cost with its unit: 1.20/h (USD per "
                                     "hour) or 0.30/M (USD per million tokens)")
    api_key_env: str | None = Field(
        default=None, max_length=128,
        description="NAME of the environment variable holding this model's own API key (never the key); "
        "'' removes it.  A provider's key is only sent to that provider's configured base URL.")

    @field_validator("api_key_env")
    @classmethod
    def _key_reference(cls, v: str | None) -> str | None:
        from modelsteward.providers.factory import check_key_reference

        return v if not v else check_key_reference(v)


@tool("models_register", input_model=ModelRegisterInput, output_model=ModelInfo, mutating=True)
def models_register(ctx: ToolContext, inp: ModelRegisterInput) -> ModelInfo:
    """Register (or update) a model; idempotent on provider + model id.  Changing the endpoint,
    prices or key reference of a model with traffic needs an approval (policy live_model_change)."""
    from modelsteward.catalog.hosting import hosting_meta, parse_hosting_cost

    pin, pout, per_hour = inp.price_in, inp.price_out, inp.cost_per_hour
    if inp.hosting_cost is not None:
        unit, value = parse_hosting_cost(inp.hosting_cost, "hosting_cost")
        if unit == "hour":
            per_hour = str(value)
        else:
            pin, pout = value, value
    host = hosting_meta(cost_per_hour=per_hour, hardware=inp.hardware)
    meta: dict[str, Any] = {}
    if inp.api_key_env is not None:
        meta["api_key_env"] = inp.api_key_env or None
    if host:
        meta["hosting"] = host
    m = ctx.steward.registry.register_model(
        inp.provider, inp.model_id, base_url=inp.base_url, price_in_per_m=pin,
        price_out_per_m=pout, context_length=inp.context, use_case=inp.use_case, kind=inp.kind,
        capabilities=inp.capabilities, status=inp.status, metadata=meta or None,
    )
    return model_info(m)


class ListUseCasesInput(InputModel):
    pass


class UseCaseList(BaseModel):
    use_cases: list[UseCaseInfo]


@tool("list_use_cases", input_model=ListUseCasesInput, output_model=UseCaseList, mutating=False)
def list_use_cases(ctx: ToolContext, inp: ListUseCasesInput) -> UseCaseList:
    """All use cases with their live routing tables."""
    return UseCaseList(use_cases=[use_case_info(ctx, uc) for uc in ctx.steward.registry.list_use_cases()])


class ListModelsInput(InputModel):
    use_case: str | None = None
    status: str | None = None
    provider: str | None = None


class ModelList(BaseModel):
    models: list[ModelInfo]


@tool("list_models", input_model=ListModelsInput, output_model=ModelList, mutating=False)
def list_models(ctx: ToolContext, inp: ListModelsInput) -> ModelList:
    """Registered models, optionally filtered by use case, status or provider."""
    ms = ctx.steward.registry.list_models(use_case=inp.use_case, status=inp.status, provider=inp.provider)
    return ModelList(models=[model_info(m) for m in ms])
