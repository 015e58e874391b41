"""The gateway's routing state as stored (``gateway/routing.py`` builds its in-memory snapshot from
it): use cases with their live allocations, the models they name, the gateway keys; and a one-row
fingerprint that changes whenever any of those does."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from modelsteward.storage.db import session_scope
from modelsteward.storage.models import Deployment, GatewayKey, Model, UseCase
from modelsteward.storage.registry import ModelRegistry

__all__ = ["RoutedUseCase", "StoredKey", "RoutingRows", "routing_fingerprint", "routing_rows"]


@dataclass(frozen=True)
class RoutedUseCase:
    """One use case's live routing as stored (the gateway's ``Route`` adds how to pick from it)."""

    name: str
    sticky: bool
    fallback: tuple[str, ...]
    budget_usd: Decimal | None
    version: int  # 0: never deployed
    live: tuple[tuple[str, float, str], ...]  # (model id, weight, role), primary and canary, sorted by model id
    shadows: tuple[tuple[str, float], ...]  # (model id, percent mirrored), by model id
    config: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class StoredKey:
    name: str
    key_hash: str
    revoked: bool
    use_cases: frozenset[str]


@dataclass(frozen=True)
class RoutingRows:
    use_cases: list[RoutedUseCase]
    models: list[Any]  # the registry's model rows the routes name (loaded, detached: providers are built from them)
    keys: list[StoredKey]


def routing_fingerprint(registry: ModelRegistry) -> tuple[str, ...]:
    """A cheap summary (one row) that changes whenever routing, use cases, models or keys change."""
    q = select(
        select(func.coalesce(func.sum(Deployment.version), 0)).scalar_subquery(),
        select(func.count(Deployment.id)).scalar_subquery(),
        select(func.max(UseCase.updated_at)).scalar_subquery(),
        select(func.count(UseCase.id)).scalar_subquery(),
        select(func.max(Model.updated_at)).scalar_subquery(),
        select(func.count(GatewayKey.id)).scalar_subquery(),
        select(func.count(GatewayKey.id)).where(GatewayKey.revoked.is_(True)).scalar_subquery(),
        select(func.max(GatewayKey.id)).scalar_subquery(),
    )
    with registry.engine.connect() as conn:
        row = conn.execute(q).one()
    return tuple(str(v) for v in row)


def routing_rows(registry: ModelRegistry) -> RoutingRows:
    """The whole routing state, read in one transaction."""
    with session_scope(registry.sessions) as s:
        deps = {d.use_case_id: d for d in s.scalars(select(Deployment).options(selectinload(Deployment.allocations)))}
        wanted: set[str] = set()
        ucs: list[RoutedUseCase] = []
        for uc in s.scalars(select(UseCase)):
            dep = deps.get(uc.id)
            allocs = list(dep.allocations) if dep is not None else []
            live = tuple(sorted(
                ((a.model_id, float(a.weight), a.role) for a in allocs if a.role != "shadow"), key=lambda x: x[0]
            ))
            shadows = tuple(sorted((a.model_id, float(a.weight)) for a in allocs if a.role == "shadow"))
            fallback = tuple(str(m) for m in (uc.fallback or []))
            wanted.update(m for m, _, _ in live)
            wanted.update(m for m, _ in shadows)
            wanted.update(fallback)
            ucs.append(RoutedUseCase(name=uc.name, sticky=bool(uc.sticky), fallback=fallback,
                                     budget_usd=uc.monthly_budget_usd, version=dep.version if dep is not None else 0,
                                     live=live, shadows=shadows, config=dict(uc.config or {})))
        models = list(s.scalars(select(Model).where(Model.id.in_(wanted)))) if wanted else []
        keys = [StoredKey(name=k.name, key_hash=k.key_hash, revoked=bool(k.revoked), use_cases=frozenset(k.use_cases or []))
                for k in s.scalars(select(GatewayKey))]
    return RoutingRows(use_cases=ucs, models=models, keys=keys)
