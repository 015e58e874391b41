"""Registry tools: use cases and models (create, update, read)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from modelsteward.tools.base import InputModel, ToolContext, tool

if TYPE_CHECKING:  # the read tools answer through the read model, without the ORM (bench/cli_latency.py)
    from modelsteward.storage.models import Model, UseCase

__all__ = [
    "UseCaseInfo", "ModelInfo", "UseCaseView", "ModelView", "UseCaseAddInput", "ModelRegisterInput", "use_case_info",
    "model_info", "ListUseCasesInput", "UseCaseList", "ListModelsInput", "ModelList", "UseCaseUpdateInput",
    "UseCaseDeleteInput", "UseCaseDeleted", "CLEARABLE",
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
    golden_set_path: str | None = None
    initial_data_path: str | None = None
    deployment_version: int = 0
    allocations: list[dict[str, Any]] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    changed: list[str] = Field(default_factory=list, description="usecase_update: the fields it changed")
    inferred_requirements: dict[str, Any] | None = Field(
        default=None, description="usecase show: what recent traffic needs of a model (catalog.compat."
        "infer_requirements): requests read, window, and per capability (tools, json, vision, audio) its "
        "requests and share; every candidate must have these")


UseCaseView = UseCaseInfo  # the typed view of a use case that the use-case tools return


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
    use_case_statuses: dict[str, str] = Field(
        default_factory=dict, description="The model's status per use case it was evaluated or deployed on; "
        "`status` is the summary (storage/status.py).")


ModelView = ModelInfo  # the typed view of a model (global status + per-use-case statuses)


def model_info(m: Model, use_case_statuses: dict[str, str] | None = None) -> ModelInfo:
    return ModelInfo(
        id=m.id, provider=m.provider, provider_model_id=m.provider_model_id, kind=m.kind, status=m.status,
        price_in_per_m=m.price_in_per_m, price_out_per_m=m.price_out_per_m, context_length=m.context_length,
        capabilities=list(m.capabilities or []), base_url=m.base_url, parent_model_id=m.parent_model_id,
        adapter_path=m.adapter_path, mlflow_model_uri=m.mlflow_model_uri, display_name=m.display_name or "",
        metadata=dict(m.meta or {}), use_case_statuses=dict(use_case_statuses or {}),
    )


def model_view(ctx: ToolContext, m: Model) -> ModelInfo:
    """``model_info`` with the model's per-use-case statuses read from the registry."""
    return model_info(m, ctx.steward.registry.use_case_statuses([m.id]).get(m.id, {}))


def use_case_info(ctx: ToolContext, uc: UseCase, warnings: list[str] | None = None,
                  infer: bool = False) -> UseCaseInfo:
    """The use case's view; ``infer`` also reads its recent traffic's capability needs (a log query)."""
    from modelsteward.catalog.compat import infer_requirements

    reg = ctx.steward.registry
    dep = reg.deployment(uc.name)
    return UseCaseInfo(
        inferred_requirements=infer_requirements(ctx.steward, uc.name) if infer else None,
        name=uc.name, description=uc.description, requirements=dict(uc.requirements or {}),
        weights=dict(uc.weights or {}), monthly_budget_usd=uc.monthly_budget_usd, quality_floor=uc.quality_floor,
        fallback=list(uc.fallback or []), sticky=uc.sticky, golden_set_path=uc.golden_set_path,
        initial_data_path=uc.initial_data_path, deployment_version=dep.version,
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
    no_check: bool = Field(default=False, description="Skip the check of model and fallback models before they take "
                           "traffic (one tiny completion each; tools/checks.py).")

    @field_validator("requires")
    @classmethod
    def _known_requirements(cls, v: list[str]) -> list[str]:
        return _requirements(v)


def _requirements(v: list[str]) -> list[str]:
    bad = sorted(set(v) - {"tools", "json", "vision", "reasoning"})
    if bad:
        raise ValueError(f"unknown requirement(s) {bad}; use tools, json, vision, reasoning")
    return sorted(set(v))


def _check_add(ctx: ToolContext, inp: UseCaseAddInput) -> None:
    """The first model and the fallback models pass their check before they take traffic (tools/checks.py)."""
    from modelsteward.tools.checks import require_checks

    require_checks(ctx, [inp.model], f"live on new use case {inp.name!r}", inp.no_check)
    require_checks(ctx, inp.fallback, f"a fallback of new use case {inp.name!r}", inp.no_check)


@tool("usecase_add", input_model=UseCaseAddInput, output_model=UseCaseInfo, mutating=True, check=_check_add)
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
    inp = _with_data_paths(ctx, inp)
    if inp.golden_set:
        _check_golden_set(inp.golden_set)
    uc = ctx.steward.registry.add_use_case(
        inp.name, description=inp.description, requirements=req, weights=inp.weights,
        monthly_budget_usd=inp.budget_usd, fallback=inp.fallback, model=inp.model, sticky=inp.sticky,
        golden_set_path=inp.golden_set, initial_data_path=inp.initial_data, actor=ctx.actor,
    )
    return use_case_info(ctx, uc, warnings)


_Files = TypeVar("_Files", "UseCaseAddInput", "UseCaseUpdateInput")


def _with_data_paths(ctx: ToolContext, inp: _Files) -> _Files:
    """``golden_set`` / ``initial_data`` as absolute paths the server will read.  From the API or the
    agent they must lie inside the workspace (a relative path is taken from there): a remote caller
    cannot point the server at ``/etc/passwd`` (issue 25).  From the command line on the server host
    any file the operator names is accepted (a relative one from the current folder)."""
    from pathlib import Path

    from modelsteward.errors import InvalidInput

    local = ctx.actor.startswith("cli:")
    ws = ctx.steward.settings.workspace
    update: dict[str, str] = {}
    for field in ("golden_set", "initial_data"):
        raw = getattr(inp, field)
        if not raw:
            continue
        p = Path(raw).expanduser()
        p = (p if p.is_absolute() else (Path.cwd() if local else ws) / p).resolve()
        if not local and not p.is_relative_to(ws):
            raise InvalidInput(f"{field}: {raw!r} is outside the workspace; from the API or the agent only files "
                               f"inside it can be named (put the file under {ws}, or set it with the command line "
                               "on the server host).", field=field)
        update[field] = str(p)
    return inp.model_copy(update=update) if update else inp


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
    status: Literal["discovered", "candidate"] | None = Field(
        default=None, description="discovered or candidate only: later statuses come from evaluations and rollouts "
        "(a model becomes current only through a rollout).")
    cost_per_hour: str | None = Field(default=None, description="Self-hosted: USD per hour of the machine serving it")
    hardware: str | None = Field(default=None, description="Self-hosted: hardware profile (cpu, gpu-small, "
                                 "gpu-medium, gpu-large)")
    hosting_cost: str | None = Field(default=None, description="Self-hosted cost with its unit: 1.20/h (USD per "
                                     "hour) or 0.30/M (USD per million tokens)")
    api_key_env: str | None = Field(
        default=None, max_length=128,
        description="NAME of the environment variable holding this model's own API key (never the key); "
        "'' removes it.  Only names on the admin's allow-list (STEWARD_KEY_ENV_ALLOW, default STEWARD_MODELKEY_*), "
        "or a provider's usual key variable for that provider's configured endpoint.")

    @field_validator("base_url")
    @classmethod
    def _base_url_scheme(cls, v: str | None) -> str | None:
        from modelsteward.tools.checks import scheme_problem

        why = scheme_problem(v)
        if why:
            raise ValueError(f"base_url {v!r}: {why}")
        return v

    @field_validator("api_key_env")
    @classmethod
    def _key_reference(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v:  # provider and base_url come first in the model, so they are validated by now
            from modelsteward.providers.egress import key_env_refusal

            why = key_env_refusal(v, str(info.data.get("provider") or "custom"), info.data.get("base_url"))
            if why:
                raise ValueError(why)
        return v


@tool("models_register", input_model=ModelRegisterInput, output_model=ModelInfo, mutating=True)
def models_register(ctx: ToolContext, inp: ModelRegisterInput) -> ModelInfo:
    """Register (or update) a model; idempotent on provider + model id.  Changing the endpoint,
    prices or key reference of a model with traffic needs an approval (policy live_model_change).
    A model at a host nobody approved is registered ``pending`` and receives nothing until an admin
    approves its host (``hosts_allow``); an agent's registration waits for a person."""
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
    if ctx.actor.startswith("agent:"):
        meta["registered_by"] = ctx.actor  # policies.egress_rules: what a run brought in, a person looks at
    m = ctx.steward.registry.register_model(
        inp.provider, inp.model_id, base_url=inp.base_url, price_in_per_m=pin,
        price_out_per_m=pout, context_length=inp.context, use_case=inp.use_case, kind=inp.kind,
        capabilities=inp.capabilities, status=inp.status, metadata=meta or None, actor=ctx.actor,
        pending=_host_pending(ctx, inp),
    )
    return model_view(ctx, m)


def _host_pending(ctx: ToolContext, inp: ModelRegisterInput) -> bool:
    """Whether the model's endpoint (the given base URL, else the stored one, else the provider's)
    is at a host nobody approved (``providers.egress``)."""
    from modelsteward.errors import ConfigError
    from modelsteward.providers.egress import host_allowance
    from modelsteward.providers.endpoints import resolve_base_url
    from modelsteward.storage.hosts import approved_origins

    if inp.provider == "local":
        return False
    known = ctx.steward.registry.find_model(f"{inp.provider}:{inp.model_id}")
    try:
        url = resolve_base_url(inp.provider, inp.base_url or (known.base_url if known else None))
    except ConfigError:
        return False  # no endpoint at all: calling it fails with the provider's own error
    if host_allowance(url, ()) is not None:
        return False
    return host_allowance(url, approved_origins(ctx.steward.sessions)) is None


class ListUseCasesInput(InputModel):
    pass


class UseCaseList(BaseModel):
    use_cases: list[UseCaseInfo]


@tool("list_use_cases", input_model=ListUseCasesInput, output_model=UseCaseList, mutating=False)
def list_use_cases(ctx: ToolContext, inp: ListUseCasesInput) -> UseCaseList:
    """All use cases with their live routing tables."""
    return UseCaseList(use_cases=[UseCaseInfo(**uc) for uc in ctx.steward.reader.use_cases()])


class ListModelsInput(InputModel):
    use_case: str | None = None
    status: str | None = None
    provider: str | None = None


class ModelList(BaseModel):
    models: list[ModelInfo]


@tool("list_models", input_model=ListModelsInput, output_model=ModelList, mutating=False)
def list_models(ctx: ToolContext, inp: ListModelsInput) -> ModelList:
    """Registered models, optionally filtered by use case, status or provider."""
    if inp.status is None:  # the read model; a status filter needs the status machine (storage/status.py)
        return ModelList(models=[ModelInfo(**m) for m in ctx.steward.reader.models(use_case=inp.use_case,
                                                                                  provider=inp.provider)])
    ms = ctx.steward.registry.list_models(use_case=inp.use_case, status=inp.status, provider=inp.provider)
    per = ctx.steward.registry.use_case_statuses([m.id for m in ms])
    return ModelList(models=[model_info(m, per.get(m.id, {})) for m in ms])


# ---------------------------------------------------------------------- edit and delete use cases
CLEARABLE = ("budget_usd", "fallback", "golden_set", "initial_data", "latency_slo_ms", "min_context",
             "max_price_per_m", "requires")
Clearable = Literal["budget_usd", "fallback", "golden_set", "initial_data", "latency_slo_ms", "min_context",
                    "max_price_per_m", "requires"]


class UseCaseUpdateInput(InputModel):
    """A partial update: a field left out (or null) keeps its value; ``clear`` unsets fields."""

    use_case: str = Field(min_length=1, max_length=100)
    description: str | None = None
    fallback: list[str] | None = Field(default=None, description="The whole fallback chain (model ids, in order).")
    budget_usd: Decimal | None = Field(default=None, ge=0)
    weights: dict[str, float] | None = None
    min_context: int | None = Field(default=None, gt=0)
    latency_slo_ms: float | None = Field(default=None, gt=0)
    requires: list[str] | None = None
    max_price_per_m: Decimal | None = Field(default=None, ge=0)
    sticky: bool | None = None
    quality_floor: float | None = Field(default=None, gt=0, le=1)
    golden_set: str | None = None
    initial_data: str | None = None
    clear: list[Clearable] = Field(default_factory=list, description="Fields to unset.")
    no_check: bool = Field(default=False, description="Skip the check of fallback models new to the chain before "
                           "they take traffic (tools/checks.py).")

    @field_validator("requires")
    @classmethod
    def _known_requirements(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _requirements(v)


def _planned_changes(uc: UseCase, inp: UseCaseUpdateInput) -> tuple[dict[str, Any], list[str]]:
    """The registry fields ``inp`` changes (only what differs from the stored use case) and their names."""
    from modelsteward.errors import InvalidInput
    from modelsteward.storage.registry import normalise_weights

    given = {k for k, v in inp.model_dump(exclude={"use_case", "clear", "no_check"}).items() if v is not None}
    both = sorted(given & set(inp.clear))
    if both:
        raise InvalidInput(f"{both[0]}: given and cleared in one update; do one or the other.", field=both[0])
    if not given and not inp.clear:
        raise InvalidInput(f"Nothing to update for use case {uc.name!r}: give at least one field (or clear one).")
    fields: dict[str, Any] = {}
    names: list[str] = []

    def put(field: str, attr: str, new: Any, old: Any) -> None:
        if new != old:
            fields[attr] = new
            names.append(field)

    cleared = set(inp.clear)
    if inp.description is not None:
        put("description", "description", inp.description, uc.description)
    if inp.fallback is not None or "fallback" in cleared:
        put("fallback", "fallback", list(inp.fallback or []), list(uc.fallback or []))
    if inp.budget_usd is not None or "budget_usd" in cleared:
        old = uc.monthly_budget_usd
        put("budget_usd", "monthly_budget_usd", inp.budget_usd, None if old is None else Decimal(str(old)))
    if inp.weights is not None:
        norm, _ = normalise_weights(inp.weights)
        old_w = {k: round(float(v), 9) for k, v in (uc.weights or {}).items()}
        if {k: round(v, 9) for k, v in norm.items()} != old_w:
            fields["weights"] = inp.weights
            names.append("weights")
    if inp.sticky is not None:
        put("sticky", "sticky", inp.sticky, bool(uc.sticky))
    if inp.quality_floor is not None:
        put("quality_floor", "quality_floor", inp.quality_floor, uc.quality_floor)
    for field, attr in (("golden_set", "golden_set_path"), ("initial_data", "initial_data_path")):
        if getattr(inp, field) is not None or field in cleared:
            put(field, attr, getattr(inp, field), getattr(uc, attr))
    req = dict(uc.requirements or {})
    new_req = dict(req)
    for field in ("min_context", "latency_slo_ms", "requires", "max_price_per_m"):
        val = getattr(inp, field)
        if field in cleared:
            new_req.pop(field, None)
        elif val is not None:
            new_req[field] = str(val) if field == "max_price_per_m" else (sorted(set(val)) if field == "requires" else val)
    if new_req != req:
        fields["requirements"] = new_req
        names += [f for f in ("min_context", "latency_slo_ms", "requires", "max_price_per_m")
                  if new_req.get(f) != req.get(f)]
    return fields, names


def _check_update(ctx: ToolContext, inp: UseCaseUpdateInput) -> None:
    """Everything that can be checked before the policies: the use case, the fallback models, the
    files, and that the update changes a field."""
    from modelsteward.tools.checks import require_checks

    reg = ctx.steward.registry
    inp = _with_data_paths(ctx, inp)
    uc = reg.get_use_case(inp.use_case)
    _planned_changes(uc, inp)
    for mid in inp.fallback or []:
        reg.get_model(mid)
    if inp.golden_set:
        _check_golden_set(inp.golden_set)
    if inp.initial_data:
        _check_initial_data(inp.initial_data)
    new = [m for m in inp.fallback or [] if m not in (uc.fallback or [])]  # those already in the chain serve now
    require_checks(ctx, new, f"a fallback of {inp.use_case!r}", inp.no_check)


@tool("usecase_update", input_model=UseCaseUpdateInput, output_model=UseCaseInfo, mutating=True, check=_check_update)
def usecase_update(ctx: ToolContext, inp: UseCaseUpdateInput) -> UseCaseInfo:
    """Change a use case's settings (budget, weights, fallback, golden set, SLOs, ...): a partial
    update, validated like usecase_add, in one transaction.  Changing the fallback chain, budget or
    stickiness of a use case with live routing needs an approval (policy live_usecase_change)."""
    reg = ctx.steward.registry
    uc = reg.get_use_case(inp.use_case)
    inp = _with_data_paths(ctx, inp)
    fields, names = _planned_changes(uc, inp)
    warnings: list[str] = []
    if inp.weights is not None:
        from modelsteward.storage.registry import normalise_weights

        _, warn = normalise_weights(inp.weights)
        if warn:
            warnings.append(warn)
    if inp.golden_set:
        _check_golden_set(inp.golden_set)
    if inp.initial_data:
        _check_initial_data(inp.initial_data)
    if fields:
        uc = reg.update_use_case(inp.use_case, **fields)
    else:
        warnings.append("nothing changed: the given values are the stored ones")
    out = use_case_info(ctx, uc, warnings)
    out.changed = names
    return out


def _check_initial_data(path: str) -> None:
    from pathlib import Path

    from modelsteward.errors import InvalidInput

    p = Path(path)
    if not p.is_file():
        raise InvalidInput(f"initial_data: {path!r} is not a readable file.", field="initial_data")


class UseCaseDeleteInput(InputModel):
    use_case: str = Field(min_length=1, max_length=100)


class UseCaseDeleted(BaseModel):
    use_case: str
    deleted: bool = True
    removed: dict[str, int] = Field(default_factory=dict, description="Rows removed with it, per table.")
    note: str = ""


def _check_delete(ctx: ToolContext, inp: UseCaseDeleteInput) -> None:
    ctx.steward.registry.get_use_case(inp.use_case)


@tool("usecase_delete", input_model=UseCaseDeleteInput, output_model=UseCaseDeleted, mutating=True,
      check=_check_delete)
def usecase_delete(ctx: ToolContext, inp: UseCaseDeleteInput) -> UseCaseDeleted:
    """Delete a use case with its routing table, snapshots, history, rollouts, evaluations and
    per-use-case model statuses.  Refused while a rollout is active (usecase_in_rollout) or while
    traffic flows (usecase_has_traffic: requests logged in the last hour); an agent needs an approval."""
    removed = ctx.steward.registry.delete_use_case(inp.use_case)
    return UseCaseDeleted(
        use_case=inp.use_case, removed=removed,
        note="Its request logs stay in the log store (remove them with `steward logs purge`); models stay registered.",
    )
