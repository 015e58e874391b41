"""Run scanners, upsert what they found into the registry, record what changed since the last scan.

Each source's scan writes one ``catalog_scans`` row: ``new`` (ids seen now that the previous
successful scan of that provider did not see; on a first scan every id), ``gone`` (seen last time,
not now), ``repriced`` (input or output price differs from the stored one), ``seen``, ``skipped``.
The previous scan's ids are the provider's models whose ``last_seen_scan_id`` is that scan.
A failed source writes a row with ``status="error"`` and changes no model (nothing is marked gone).

Decisions: gone models keep their status (a live model is never retired by a catalog blip); they get
``metadata.catalog_gone_since_scan`` which is removed when they reappear.  New models are stored with
status ``discovered``; known ones keep theirs.  Sources run concurrently (threads).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from sqlalchemy import select

from modelsteward.catalog.base import Scanner, ScannedModel, SourceResult
from modelsteward.catalog.scanners import get_scanner, known_providers
from modelsteward.errors import InvalidInput
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import CatalogScan, Model

if TYPE_CHECKING:
    from modelsteward.context import Steward

__all__ = ["SourceReport", "ScanReport", "run_scan", "resolve_providers", "apply_result"]


class SourceReport(BaseModel):
    """One source's outcome."""

    provider: str
    status: str = Field(description="ok | error | no_key")
    scan_id: int | None = None
    seen: int = 0
    skipped: int = 0
    skipped_examples: list[str] = Field(default_factory=list)
    filtered: int = 0
    pages: int = 0
    new: list[str] = Field(default_factory=list)
    gone: list[str] = Field(default_factory=list)
    repriced: list[dict[str, Any]] = Field(default_factory=list)
    error: str | None = None
    error_kind: str | None = None
    http_status: int | None = None
    retry_after: float | None = None
    notes: list[str] = Field(default_factory=list)
    first_scan: bool = False


class ScanReport(BaseModel):
    sources: list[SourceReport]

    @property
    def ok(self) -> list[SourceReport]:
        return [s for s in self.sources if s.status == "ok"]

    def source(self, provider: str) -> SourceReport:
        for s in self.sources:
            if s.provider == provider:
                return s
        raise KeyError(provider)


def resolve_providers(provider: str | Sequence[str] | None) -> list[str]:
    """``None``/``"all"`` -> every registered scanner; unknown names -> InvalidInput listing known ones."""
    known = known_providers()
    if provider is None or provider == "all":
        return known
    names = [provider] if isinstance(provider, str) else list(provider)
    out: list[str] = []
    for name in names:
        for part in str(name).split(","):
            part = part.strip().lower()
            if part == "all":
                return known
            if part:
                get_scanner(part)  # raises with the known list
                out.append(part)
    if not out:
        raise InvalidInput(f"No provider given; known providers: {', '.join(known)}, all.")
    return list(dict.fromkeys(out))


def _price_str(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def _same_price(a: Decimal | None, b: Decimal | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return Decimal(a) == Decimal(b)


def apply_result(steward: Steward, res: SourceResult) -> SourceReport:
    """Upsert one source's models and write its ``catalog_scans`` row, in one transaction."""
    report = SourceReport(
        provider=res.provider, status=res.status, skipped=res.skipped, skipped_examples=res.skipped_examples,
        filtered=res.filtered, pages=res.pages, error=res.error, error_kind=res.error_kind,
        http_status=res.http_status, retry_after=res.retry_after, notes=list(res.notes),
    )
    with session_scope(steward.sessions) as s:
        prev = s.scalar(
            select(CatalogScan).where(CatalogScan.provider == res.provider, CatalogScan.status == "ok")
            .order_by(CatalogScan.id.desc()).limit(1)
        )
        row = CatalogScan(provider=res.provider, status="ok" if res.status == "ok" else "error",
                          error=res.error if res.status == "ok" else f"{res.error_kind}: {res.error}",
                          seen=0, skipped=res.skipped)
        s.add(row)
        s.flush()
        report.scan_id = row.id
        if res.status != "ok":
            return report
        existing = {m.id: m for m in s.scalars(select(Model).where(Model.provider == res.provider))}
        prev_ids = {mid for mid, m in existing.items() if prev is not None and m.last_seen_scan_id == prev.id}
        seen: dict[str, ScannedModel] = {}
        for sm in res.models:
            seen.setdefault(sm.id, sm)  # a catalog listing one id twice counts once
        repriced: list[dict[str, Any]] = []
        for mid, sm in seen.items():
            old = existing.get(mid)
            if old is not None and not (_same_price(old.price_in_per_m, sm.price_in_per_m)
                                        and _same_price(old.price_out_per_m, sm.price_out_per_m)):
                repriced.append({
                    "id": mid,
                    "in": [_price_str(old.price_in_per_m), _price_str(sm.price_in_per_m)],
                    "out": [_price_str(old.price_out_per_m), _price_str(sm.price_out_per_m)],
                })
            m = steward.registry.register_model(
                sm.provider, sm.model, kind=sm.kind if old is None else None,
                price_in_per_m=sm.price_in_per_m if sm.price_in_per_m is not None else "",
                price_out_per_m=sm.price_out_per_m if sm.price_out_per_m is not None else "",
                context_length=sm.context_length, capabilities=sm.capabilities or None,
                display_name=sm.display_name or None, base_url=sm.base_url, metadata=sm.metadata, session=s,
            )
            if m.meta and "catalog_gone_since_scan" in m.meta:
                m.meta = {k: v for k, v in m.meta.items() if k != "catalog_gone_since_scan"}
            m.last_seen_scan_id = row.id
        gone = sorted(prev_ids - set(seen))
        for mid in gone:
            m = existing[mid]
            m.meta = {**(m.meta or {}), "catalog_gone_since_scan": row.id}
        new = sorted(set(seen) - prev_ids)
        row.seen, row.new, row.gone, row.repriced = len(seen), new, gone, repriced
        report.seen, report.new, report.gone, report.repriced = len(seen), new, gone, repriced
        report.first_scan = prev is None
        return report


def build_scanner(name: str, steward: Steward, timeout: float, limit: int | None,
                  overrides: dict[str, dict[str, Any]] | None = None) -> Scanner:
    cls = get_scanner(name)
    kwargs: dict[str, Any] = {"timeout": timeout, "limit": limit, **((overrides or {}).get(name, {}))}
    if name == "local":
        kwargs["registry"] = steward.registry
    return cls(**kwargs)


def run_scan(
    steward: Steward,
    provider: str | Sequence[str] | None = "all",
    *,
    timeout: float = 20.0,
    limit: int | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> ScanReport:
    """Scan the given providers (``"all"`` by default); each source's failure is in its report."""
    names = resolve_providers(provider)
    scanners = [build_scanner(n, steward, timeout, limit, overrides) for n in names]
    with ThreadPoolExecutor(max_workers=max(1, len(scanners)), thread_name_prefix="scan") as pool:
        results = list(pool.map(lambda sc: sc.scan(), scanners))
    return ScanReport(sources=[apply_result(steward, r) for r in results])
