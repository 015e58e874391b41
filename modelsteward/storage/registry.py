"""The model registry: use cases, models and their status machine, live routing tables.

All writes happen in one transaction each (``session_scope``).  What the public methods return are
read-only ``RowView`` copies (``storage/views.py``), never ORM rows: a caller outside ``storage/``
changes the registry only through a method.  The ``*_in(s, ...)`` helpers (and ``session=``) are for
transactions inside ``storage/``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from modelsteward.errors import Conflict, IllegalTransition, InvalidInput, NotFound, close_matches
from modelsteward.storage.db import make_sessionmaker, session_scope
from modelsteward.storage.status import EVENTS, REGISTER_STATUSES, apply_status_event, event_for, status_for, statuses_on
from modelsteward.storage.views import RowView, view, view_of, view_with, views
from modelsteward.storage.models import (
    MODEL_KINDS,
    MODEL_STATUSES,
    ROLES,
    Allocation,
    Deployment,
    DeploymentHistory,
    Model,
    ModelSnapshot,
    UseCase,
)

__all__ = ["ModelRegistry", "STATUS_TRANSITIONS", "parse_price", "split_model_id", "normalise_weights"]

# The model status machine lives in ``storage/status.py`` (named events); this is its picture as
# status -> reachable statuses, kept for readers that only need to know what can follow what.
STATUS_TRANSITIONS: dict[str, tuple[str, ...]] = {
    st: tuple(dict.fromkeys(
        t for e, table in EVENTS.items() if e not in ("restored", "registered") and st in table
        for t in ((table[st],) if isinstance(table[st], str) else table[st]) if t != st
    ))
    for st in MODEL_STATUSES
}

KNOWN_PROVIDERS = ("openrouter", "openai", "anthropic", "google", "huggingface", "ollama", "local", "vllm", "custom")


def split_model_id(model_id: str) -> tuple[str, str]:
    """``"provider:model"`` -> ``("provider", "model")``; the model part may contain ``:`` and ``/``."""
    provider, sep, rest = model_id.partition(":")
    if not sep or not provider or not rest:
        raise InvalidInput(
            f"Model id {model_id!r} is not of the form provider:model (e.g. openrouter:openai/gpt-4o-mini, "
            "local:smollm2-135m-instruct)."
        )
    return provider, rest


def parse_price(value: Any, what: str = "price") -> Decimal | None:
    """A price in USD per million tokens as Decimal; refuses negatives and non-numbers."""
    if value is None or value == "":
        return None
    try:
        price = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise InvalidInput(f"{what} {value!r} is not a number; give USD per million tokens, e.g. 0.15.") from exc
    if not price.is_finite() or price < 0:
        raise InvalidInput(f"{what} {value!r} must be a non-negative number of USD per million tokens.")
    return price


def normalise_weights(weights: dict[str, float]) -> tuple[dict[str, float], str | None]:
    """Ranking weights normalised to sum 1; negative weights refused.  Returns (weights, warning)."""
    allowed = {"quality", "cost", "latency"}
    unknown = set(weights) - allowed
    if unknown:
        raise InvalidInput(f"Unknown ranking weight(s) {sorted(unknown)}; use quality, cost, latency.")
    for key, val in weights.items():
        if val < 0:
            raise InvalidInput(f"Weight {key}={val} is negative; weights must be >= 0.")
    full = {k: float(weights.get(k, 0.0)) for k in ("quality", "cost", "latency")}
    total = sum(full.values())
    if total <= 0:
        raise InvalidInput("Ranking weights sum to 0; give at least one positive weight.")
    warning = None
    if abs(total - 1.0) > 1e-9:
        warning = f"weights summed to {total:g}, normalised to 1"
        full = {k: v / total for k, v in full.items()}
    return full, warning


class ModelRegistry:
    """Use cases, models, statuses and routing tables over one SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions: sessionmaker[Session] = make_sessionmaker(engine)
        from modelsteward.storage.lease import install_fence

        install_fence(self.sessions)  # a leader's writes need its lease (storage/lease.py, fencing)

    # ------------------------------------------------------------------ use cases
    def use_case_in(self, s: Session, name: str) -> UseCase:
        """The use case called ``name`` within the caller's session (``NotFound`` with suggestions)."""
        uc = s.scalar(select(UseCase).where(UseCase.name == name))
        if uc is None:
            names = list(s.scalars(select(UseCase.name)))
            raise NotFound(f"Unknown use case {name!r}." + close_matches(name, names), kind="use_case", name=name)
        return uc

    def get_use_case(self, name: str) -> RowView:
        with session_scope(self.sessions) as s:
            return view_of(self.use_case_in(s, name))

    def list_use_cases(self) -> list[RowView]:
        with session_scope(self.sessions) as s:
            return views(s.scalars(select(UseCase).order_by(UseCase.name)))

    def add_use_case(
        self,
        name: str,
        *,
        description: str = "",
        requirements: dict[str, Any] | None = None,
        weights: dict[str, float] | None = None,
        monthly_budget_usd: Any = None,
        fallback: Sequence[str] = (),
        model: str | None = None,
        sticky: bool = False,
        quality_floor: float = 0.95,
        golden_set_path: str | None = None,
        initial_data_path: str | None = None,
        actor: str = "cli",
    ) -> RowView:
        """Create a use case; with ``model`` that model goes live at 100% at once (first deployment)."""
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise InvalidInput(f"Use case name {name!r} must be letters, digits, '-' or '_'.")
        if "@" in name:
            raise InvalidInput("Use case names may not contain '@' (it pins a model in gateway requests).")
        norm, _warn = normalise_weights(weights or {"quality": 0.5, "cost": 0.3, "latency": 0.2})
        budget = parse_price(monthly_budget_usd, "budget") if monthly_budget_usd is not None else None
        with session_scope(self.sessions) as s:
            if s.scalar(select(UseCase).where(UseCase.name == name)) is not None:
                raise Conflict(f"Use case {name!r} already exists; use `steward usecase show {name}`.")
            for mid in fallback:
                self.model_in(s, mid)
            uc = UseCase(
                name=name,
                description=description,
                requirements=dict(requirements or {}),
                weights=norm,
                monthly_budget_usd=budget,
                fallback=list(fallback),
                sticky=sticky,
                quality_floor=quality_floor,
                golden_set_path=golden_set_path,
                initial_data_path=initial_data_path,
            )
            s.add(uc)
            s.flush()
            s.add(Deployment(use_case_id=uc.id, version=0))
            s.flush()
            if model:
                m = self.model_in(s, model)
                apply_status_event(s, m, "promoted", uc, actor=actor,
                                   reason="first model of the use case (usecase add --model)")
                self.write_routing(
                    s, uc, [{"model_id": m.id, "weight": 100.0, "role": "primary"}],
                    action="initial", actor=actor, reason="first model of the use case (usecase add --model)",
                )
            s.flush()
            return view_of(uc)

    def update_use_case(self, name: str, **fields: Any) -> RowView:
        allowed = {
            "description", "requirements", "weights", "monthly_budget_usd", "fallback", "sticky",
            "quality_floor", "golden_set_path", "initial_data_path", "config",
        }
        bad = set(fields) - allowed
        if bad:
            raise InvalidInput(f"Cannot update use-case field(s) {sorted(bad)}; allowed: {sorted(allowed)}.")
        with session_scope(self.sessions) as s:
            uc = self.use_case_in(s, name)
            if "weights" in fields:
                fields["weights"], _ = normalise_weights(fields["weights"])
            if "monthly_budget_usd" in fields:
                fields["monthly_budget_usd"] = parse_price(fields["monthly_budget_usd"], "budget")
            if "fallback" in fields:
                for mid in fields["fallback"]:
                    self.model_in(s, mid)
            for key, val in fields.items():
                setattr(uc, key, val)
            s.flush()
            return view_of(uc)

    def delete_use_case(self, name: str) -> dict[str, int]:
        """Delete a use case and what belongs to it (one transaction; the database cascades).
        Returns the number of rows removed per table (models stay; their link to it is cleared)."""
        from sqlalchemy import func

        from modelsteward.storage.models import (
            EvalHoldout,
            GuardrailViolation,
            ModelUseCaseStatus,
            Rollout,
            TestResult,
        )

        with session_scope(self.sessions) as s:
            uc = self.use_case_in(s, name)
            counts: dict[str, int] = {}
            for label, table in (("allocations", None), ("snapshots", ModelSnapshot), ("history", DeploymentHistory),
                                 ("rollouts", Rollout), ("evaluations", TestResult), ("eval_holdouts", EvalHoldout),
                                 ("violations", GuardrailViolation), ("model_statuses", ModelUseCaseStatus)):
                if table is None:
                    n = s.scalar(select(func.count(Allocation.id)).join(Deployment)
                                 .where(Deployment.use_case_id == uc.id))
                else:
                    n = s.scalar(select(func.count()).select_from(table).where(table.use_case_id == uc.id))
                counts[label] = int(n or 0)
            # rows that point at this use case's snapshots go first (no cascade between them)
            s.query(DeploymentHistory).filter(DeploymentHistory.use_case_id == uc.id).delete(synchronize_session=False)
            s.query(Rollout).filter(Rollout.use_case_id == uc.id).delete(synchronize_session=False)
            s.query(Model).filter(Model.use_case_id == uc.id).update({Model.use_case_id: None},
                                                                     synchronize_session=False)
            s.delete(uc)
            s.flush()
            return counts

    # ------------------------------------------------------------------ models
    def model_in(self, s: Session, model_id: str) -> Model:
        """The model ``model_id`` within the caller's session (``NotFound`` with suggestions)."""
        m = s.get(Model, model_id)
        if m is None:
            ids = list(s.scalars(select(Model.id)))
            raise NotFound(f"Unknown model {model_id!r}." + close_matches(model_id, ids), kind="model", id=model_id)
        return m

    def get_model(self, model_id: str) -> RowView:
        with session_scope(self.sessions) as s:
            return view_of(self.model_in(s, model_id))

    def find_model(self, model_id: str) -> RowView | None:
        with session_scope(self.sessions) as s:
            return view(s.get(Model, model_id))

    def register_model(
        self,
        provider: str,
        provider_model_id: str,
        *,
        kind: str | None = None,
        price_in_per_m: Any = None,
        price_out_per_m: Any = None,
        context_length: int | None = None,
        capabilities: Iterable[str] | None = None,
        display_name: str | None = None,
        base_url: str | None = None,
        parent_model_id: str | None = None,
        adapter_path: str | None = None,
        mlflow_model_uri: str | None = None,
        use_case: str | None = None,
        status: str | None = None,
        metadata: dict[str, Any] | None = None,
        session: Session | None = None,
        actor: str = "system",
        pending: bool | None = None,
    ) -> Any:
        """Idempotent upsert on (provider, provider model id): given fields overwrite, others stay.

        ``pending`` (the caller's egress verdict, ``providers.egress``): True puts a new, discovered or
        candidate model in status ``pending`` (its host is not approved; it receives nothing); False
        brings a pending model back to the status it had (``host_approved``); None leaves it.

        ``status`` may only be discovered or candidate (event ``registered`` for a new model;
        ``marked_candidate`` from discovered and ``reinstated`` from a global retired or rejected for a
        known one); a model further along keeps its status.  Nothing here makes a model current.
        Returns a ``RowView``; with ``session`` (the caller's open transaction) the ORM row itself."""
        if not provider or not provider_model_id:
            raise InvalidInput("Both provider and model id are required.")
        if provider not in KNOWN_PROVIDERS:
            raise InvalidInput(f"Unknown provider {provider!r}." + close_matches(provider, list(KNOWN_PROVIDERS)))
        if kind is not None and kind not in MODEL_KINDS:
            raise InvalidInput(f"Unknown model kind {kind!r}; use one of {', '.join(MODEL_KINDS)}.")
        if status is not None and status not in REGISTER_STATUSES:
            raise InvalidInput(
                f"status {status!r}: a model is registered as {' or '.join(REGISTER_STATUSES)} only; later statuses "
                "come from its evaluations and rollouts (a model becomes current only through a rollout).",
                field="status")
        if context_length is not None and context_length <= 0:
            raise InvalidInput(f"Context length {context_length} must be a positive number of tokens.")
        pin = parse_price(price_in_per_m, "input price")
        pout = parse_price(price_out_per_m, "output price")

        def _do(s: Session) -> Model:
            mid = f"{provider}:{provider_model_id}"
            m = s.get(Model, mid)
            uc_id = self.use_case_in(s, use_case).id if use_case else None
            if parent_model_id:
                self.model_in(s, parent_model_id)
            if m is None:
                default_kind = "self_hosted" if provider in ("local", "ollama", "huggingface", "vllm") else "paid"
                m = Model(
                    id=mid, provider=provider, provider_model_id=provider_model_id,
                    kind=kind or default_kind, status=status or "discovered", capabilities=[], meta={},
                )
                s.add(m)
                s.flush()
                if pending:
                    m.meta = {"status_after_host_approval": status or "discovered"}
                apply_status_event(s, m, "registered", to="pending" if pending else status or "discovered",
                                   actor=actor)
            else:
                if kind:
                    m.kind = kind
                if status == "candidate" and m.status in ("discovered", "retired", "rejected"):
                    # never backwards, never past candidate: a live or evaluated model keeps its status
                    event = "marked_candidate" if m.status == "discovered" else "reinstated"
                    apply_status_event(s, m, event, actor=actor, reason="registered again as a candidate")
            if pin is not None or price_in_per_m == "":
                m.price_in_per_m = pin
            if pout is not None or price_out_per_m == "":
                m.price_out_per_m = pout
            for attr, val in (
                ("context_length", context_length), ("display_name", display_name), ("base_url", base_url),
                ("parent_model_id", parent_model_id), ("adapter_path", adapter_path),
                ("mlflow_model_uri", mlflow_model_uri), ("use_case_id", uc_id),
            ):
                if val is not None:
                    setattr(m, attr, val)
            if capabilities is not None:
                m.capabilities = sorted(set(capabilities))
            if metadata:
                m.meta = {**(m.meta or {}), **metadata}
            _egress_status(s, m, pending, actor)
            s.flush()
            return m

        if session is not None:
            return _do(session)
        with session_scope(self.sessions) as s:
            return view_of(_do(s))

    def set_egress_status(self, model_id: str, pending: bool, actor: str, s: Session) -> None:
        """``register_model``'s ``pending`` for a stored model (an admin approved its host)."""
        _egress_status(s, self.model_in(s, model_id), pending, actor)

    def list_models(
        self, *, use_case: str | None = None, status: str | None = None, provider: str | None = None,
        kind: str | None = None,
    ) -> list[RowView]:
        if status is not None and status not in MODEL_STATUSES:
            raise InvalidInput(f"Unknown status {status!r}; use one of {', '.join(MODEL_STATUSES)}.")
        with session_scope(self.sessions) as s:
            q = select(Model).order_by(Model.id)
            if use_case:
                uc = self.use_case_in(s, use_case)
                from modelsteward.storage.models import ModelUseCaseStatus

                live = select(Allocation.model_id).join(Deployment).where(Deployment.use_case_id == uc.id)
                rated = select(ModelUseCaseStatus.model_id).where(ModelUseCaseStatus.use_case_id == uc.id)
                q = q.where((Model.use_case_id == uc.id) | Model.id.in_(live) | Model.id.in_(rated))
            if status and not use_case:
                q = q.where(Model.status == status)
            if provider:
                q = q.where(Model.provider == provider)
            if kind:
                q = q.where(Model.kind == kind)
            out = list(s.scalars(q))
            if status and use_case:  # the status on that use case, not the global summary
                out = [m for m in out if status_for(s, m, uc.id) == status]
            return views(out)

    def set_status(
        self, model_id: str, status: str, *, use_case: str | None = None, actor: str = "system", reason: str = "",
        session: Session | None = None,
    ) -> Any:
        """Move a model to ``status`` through the named event that leads there (``storage/status.py``;
        globally, or on ``use_case``); ``IllegalTransition`` names the events allowed instead."""

        def _do(s: Session) -> Model:
            m = self.model_in(s, model_id)
            uc = self.use_case_in(s, use_case) if use_case else None
            current = status_for(s, m, uc.id) if uc is not None else m.status
            if current != status:
                try:
                    event = event_for(current, status)
                except IllegalTransition as exc:
                    raise IllegalTransition(f"Model {m.id}: {exc.message}", model=m.id, **exc.details) from None
                apply_status_event(s, m, event, uc, actor=actor, reason=reason)
            return m

        if session is not None:
            return _do(session)
        with session_scope(self.sessions) as s:
            out = _do(s)
            s.flush()
            return view_of(out)

    def status_on(self, model_id: str, use_case: str) -> str:
        """The model's status on one use case (``storage/status.py`` ``status_for``)."""
        with session_scope(self.sessions) as s:
            return status_for(s, self.model_in(s, model_id), self.use_case_in(s, use_case).id)

    def statuses_on(self, use_case: str, models: Sequence[Any]) -> dict[str, str]:
        """``{model id: its status on use_case}`` (``storage/status.py``) for ``models``."""
        with session_scope(self.sessions) as s:
            return statuses_on(s, self.use_case_in(s, use_case).id, list(models))

    def use_case_statuses(self, model_ids: Sequence[str] | None = None) -> dict[str, dict[str, str]]:
        """``{model id: {use case: status}}`` from the per-use-case rows (all models, or these)."""
        from modelsteward.storage.models import ModelUseCaseStatus

        with session_scope(self.sessions) as s:
            q = select(ModelUseCaseStatus.model_id, UseCase.name, ModelUseCaseStatus.status).join(
                UseCase, UseCase.id == ModelUseCaseStatus.use_case_id)
            if model_ids is not None:
                q = q.where(ModelUseCaseStatus.model_id.in_(list(model_ids)))
            out: dict[str, dict[str, str]] = {}
            for mid, name, st in s.execute(q.order_by(UseCase.name)).all():
                out.setdefault(mid, {})[name] = st
            return out

    def update_metadata(self, model_id: str, **values: Any) -> RowView:
        with session_scope(self.sessions) as s:
            m = self.model_in(s, model_id)
            m.meta = {**(m.meta or {}), **values}
            s.flush()
            return view_of(m)

    # ------------------------------------------------------------------ routing
    def deployment(self, use_case: str) -> RowView:
        """The use case's routing table (its ``allocations`` as row views)."""
        with session_scope(self.sessions) as s:
            uc = self.use_case_in(s, use_case)
            dep = s.scalar(
                select(Deployment).where(Deployment.use_case_id == uc.id).options(selectinload(Deployment.allocations))
            )
            if dep is None:
                return RowView("Deployment", {"id": None, "use_case_id": uc.id, "version": 0, "allocations": []})
            return view_with(dep, allocations=views(dep.allocations))

    def current_model(self, use_case: str) -> RowView | None:
        """The stable model: the primary with the largest weight."""
        dep = self.deployment(use_case)
        prim = [a for a in dep.allocations if a.role == "primary"]
        if not prim:
            return None
        return self.get_model(max(prim, key=lambda a: a.weight).model_id)

    def candidate_models(self, use_case: str) -> list[RowView]:
        with session_scope(self.sessions) as s:
            uc_id = self.use_case_in(s, use_case).id
            models = self.list_models(use_case=use_case)
            here = statuses_on(s, uc_id, models)
            return [m for m in models if here[m.id] in ("candidate", "evaluating", "discovered")]

    @staticmethod
    def routing_table(dep: Any) -> list[dict[str, Any]]:
        return sorted(
            ({"model_id": a.model_id, "weight": float(a.weight), "role": a.role} for a in dep.allocations),
            key=lambda r: (r["role"], r["model_id"]),
        )

    @staticmethod
    def config_of(uc: Any) -> dict[str, Any]:
        return {
            "fallback": list(uc.fallback or []), "sticky": bool(uc.sticky), "config": dict(uc.config or {}),
        }

    def write_routing(
        self,
        s: Session,
        uc: UseCase,
        allocations: Sequence[dict[str, Any]],
        *,
        action: str,
        actor: str,
        reason: str,
        rollout_id: int | None = None,
        details: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
    ) -> tuple[Deployment, ModelSnapshot, DeploymentHistory]:
        """Replace the routing table inside the caller's transaction: snapshot, allocations, history.

        The caller's ``session_scope`` makes the three writes one transaction, so a crash leaves the
        old table or the new one, never a mix.
        """
        validate_allocations(allocations)
        dep = s.scalar(
            select(Deployment).where(Deployment.use_case_id == uc.id).options(selectinload(Deployment.allocations))
            .with_for_update()
        )
        if dep is None:
            dep = Deployment(use_case_id=uc.id, version=0)
            s.add(dep)
            s.flush()
        for a in allocations:
            self.model_in(s, a["model_id"])
        snap = ModelSnapshot(
            use_case_id=uc.id, deployment_version=dep.version, allocations=self.routing_table(dep),
            config=self.config_of(uc), reason=f"before {action}: {reason}",
        )
        s.add(snap)
        s.flush()
        old_version = dep.version
        dep.allocations.clear()
        s.flush()
        for a in allocations:
            dep.allocations.append(Allocation(model_id=a["model_id"], weight=float(a["weight"]), role=a["role"]))
        dep.version = old_version + 1
        if config is not None:
            uc.fallback = list(config.get("fallback", uc.fallback))
            uc.sticky = bool(config.get("sticky", uc.sticky))
            uc.config = dict(config.get("config", uc.config))
        hist = DeploymentHistory(
            use_case_id=uc.id, action=action, from_version=old_version, to_version=dep.version,
            snapshot_id=snap.id, rollout_id=rollout_id, actor=actor, reason=reason,
            details={"allocations": sorted(allocations, key=lambda r: (r["role"], r["model_id"])), **(details or {})},
        )
        s.add(hist)
        s.flush()
        return dep, snap, hist


def validate_allocations(allocations: Sequence[dict[str, Any]]) -> None:
    """A routing table is valid when live (primary + canary) weights sum to 100 and roles are known."""
    seen: set[tuple[str, str]] = set()
    live = 0.0
    for a in allocations:
        if a.get("role") not in ROLES:
            raise InvalidInput(f"Unknown role {a.get('role')!r}; use one of {', '.join(ROLES)}.")
        w = float(a.get("weight", -1))
        if not 0 <= w <= 100:
            raise InvalidInput(f"Weight {w} for {a.get('model_id')} must be within 0..100 percent.")
        key = (a["model_id"], a["role"])
        if key in seen:
            raise InvalidInput(f"Model {a['model_id']} appears twice as {a['role']}.")
        seen.add(key)
        if a["role"] != "shadow":
            live += w
    if allocations and abs(live - 100.0) > 1e-6:
        raise InvalidInput(f"Primary and canary weights sum to {live:g}%, not 100%.")


def _egress_status(s: Session, m: Model, pending: bool | None, actor: str) -> None:
    """Move ``m`` into ``pending`` (its host is not approved) or back out of it (see ``register_model``)."""
    if pending and m.status in ("discovered", "candidate"):
        m.meta = {**(m.meta or {}), "status_after_host_approval": m.status}
        apply_status_event(s, m, "host_pending", actor=actor, reason="its host is not approved")
    elif pending is False and m.status == "pending":
        meta = dict(m.meta or {})
        after = meta.pop("status_after_host_approval", None)
        m.meta = meta
        apply_status_event(s, m, "host_approved", to=after if after in REGISTER_STATUSES else "discovered",
                           actor=actor, reason="its host is approved")
