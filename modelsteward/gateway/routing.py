"""The gateway's in-memory routing table, rebuilt from the registry in the background.

``load_snapshot`` reads use cases, live allocations, the models they name and the gateway keys
in one short read; the gateway swaps the new snapshot in atomically, so requests never touch the
database.  ``fingerprint`` is a one-row query that tells whether anything changed (deployment
versions, use-case and model ``updated_at``, key count), so an idle refresh costs one query.

Decisions: a shadow allocation's ``weight`` is the percent of requests mirrored to it (0 mirrors
nothing); sticky routing hashes ``use_case:user`` onto the cumulative weights of the live
(primary + canary) models sorted by id, so a user stays on one model while weights are unchanged
and moves only when their bucket's model changes.
"""

from __future__ import annotations

import random
import time
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from modelsteward.storage.read.routing import RoutedUseCase, routing_fingerprint, routing_rows
from modelsteward.storage.registry import ModelRegistry

__all__ = ["ModelInfo", "Route", "KeyInfo", "RoutingSnapshot", "load_snapshot", "fingerprint", "model_info"]

_MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class ModelInfo:
    """A registry model as the gateway needs it (the registry's row kept for provider building)."""

    id: str
    provider: str
    price_in: Decimal | None
    price_out: Decimal | None
    row: Any = field(repr=False, compare=False)  # what providers.factory.get_provider reads

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """USD for this call from the registry's Decimal prices per million tokens (0 when unpriced)."""
        total = Decimal(0)
        if self.price_in and input_tokens:
            total += self.price_in * input_tokens
        if self.price_out and output_tokens:
            total += self.price_out * output_tokens
        return float(total / _MILLION) if total else 0.0


def model_info(m: Any) -> ModelInfo:
    return ModelInfo(id=m.id, provider=m.provider, price_in=m.price_in_per_m, price_out=m.price_out_per_m, row=m)


@dataclass(frozen=True)
class Route(RoutedUseCase):
    """One use case's live routing (its fields are the stored ``RoutedUseCase``'s: weighted
    primary/canary models, shadows, fallback chain) and how a request picks from it."""

    @property
    def total(self) -> float:
        return sum(w for _, w, _ in self.live)

    def pick(self, user: str | None = None) -> tuple[str, str] | None:
        """(model_id, role) by weight; deterministic per user when the use case is sticky."""
        live = [x for x in self.live if x[1] > 0]
        if not live:
            return None
        total = sum(w for _, w, _ in live)
        if self.sticky and user:
            point = (zlib.crc32(f"{self.name}:{user}".encode()) % 1_000_000) / 1_000_000 * total
        else:
            point = random.random() * total
        acc = 0.0
        for mid, w, role in live:
            acc += w
            if point < acc:
                return mid, role
        return live[-1][0], live[-1][2]

    def role_of(self, model_id: str) -> str | None:
        for mid, _, role in self.live:
            if mid == model_id:
                return role
        return None

    def chain(self, first: str) -> list[str]:
        """Models to try in order: the picked one, the other live models by weight, then ``fallback``."""
        order = [first]
        for mid, _, _ in sorted(self.live, key=lambda x: (x[2] != "primary", -x[1], x[0])):
            if mid not in order:
                order.append(mid)
        for mid in self.fallback:
            if mid not in order:
                order.append(mid)
        return order


@dataclass(frozen=True)
class KeyInfo:
    name: str
    use_cases: frozenset[str]  # empty: every use case


@dataclass
class RoutingSnapshot:
    routes: dict[str, Route]
    models: dict[str, ModelInfo]
    keys: dict[str, KeyInfo]  # sha256 hex -> key
    any_keys: bool
    fingerprint: tuple[Any, ...] = ()
    loaded_at: float = field(default_factory=time.monotonic)

    @classmethod
    def empty(cls) -> RoutingSnapshot:
        return cls(routes={}, models={}, keys={}, any_keys=False)


def fingerprint(registry: ModelRegistry) -> tuple[Any, ...]:
    """A cheap summary that changes whenever routing, use cases, models or keys change."""
    return routing_fingerprint(registry)


def load_snapshot(registry: ModelRegistry) -> RoutingSnapshot:
    """Read the whole routing state in one transaction."""
    fp = fingerprint(registry)
    rows = routing_rows(registry)
    routes = {uc.name: Route(**vars(uc)) for uc in rows.use_cases}
    models = {m.id: model_info(m) for m in rows.models}
    # a revoked key still means "keys are in use": loopback stops being open
    keys = {k.key_hash: KeyInfo(name=k.name, use_cases=k.use_cases) for k in rows.keys if not k.revoked}
    return RoutingSnapshot(routes=routes, models=models, keys=keys, any_keys=bool(rows.keys), fingerprint=fp)
