"""Writes of a catalog scan (``catalog/scan.py`` runs the scanners): one source's models upserted
into the registry and its ``catalog_scans`` row, in one transaction.

What a scan records: ``new`` (ids seen now that the previous successful scan of that provider did
not see; on a first scan every id), ``gone`` (seen last time, not now), ``repriced`` (input or
output price differs from the stored one), ``seen``, ``skipped``.  The previous scan's ids are the
provider's models whose ``last_seen_scan_id`` is that scan.  A failed source writes a row with
``status="error"`` and changes no model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import select

from modelsteward.storage.db import session_scope
from modelsteward.storage.models import CatalogScan, Model
from modelsteward.storage.registry import ModelRegistry

__all__ = ["Scanned", "ScanRecord", "record_scan"]


class Scanned(Protocol):
    """One model a scanner listed (``catalog.base.ScannedModel`` is one)."""

    @property
    def id(self) -> str: ...
    provider: str
    model: str
    kind: str | None
    price_in_per_m: Decimal | None
    price_out_per_m: Decimal | None
    context_length: int | None
    capabilities: list[str]
    display_name: str
    base_url: str | None
    metadata: dict[str, Any]


@dataclass
class ScanRecord:
    """What the scan row says changed (``scan_id`` always; the rest for a successful scan)."""

    scan_id: int
    seen: int = 0
    new: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    repriced: list[dict[str, Any]] = field(default_factory=list)
    first_scan: bool = False


def _price_str(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def _same_price(a: Decimal | None, b: Decimal | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return Decimal(a) == Decimal(b)


def record_scan(reg: ModelRegistry, provider: str, *, ok: bool, error: str | None, skipped: int,
                models: Sequence[Scanned]) -> ScanRecord:
    """Write ``provider``'s scan row and, when ``ok``, upsert ``models`` (new ones ``discovered``, known
    ones keep their status; gone ones get ``metadata.catalog_gone_since_scan``, removed when they return)."""
    with session_scope(reg.sessions) as s:
        prev = s.scalar(
            select(CatalogScan).where(CatalogScan.provider == provider, CatalogScan.status == "ok")
            .order_by(CatalogScan.id.desc()).limit(1)
        )
        row = CatalogScan(provider=provider, status="ok" if ok else "error", error=error, seen=0, skipped=skipped)
        s.add(row)
        s.flush()
        if not ok:
            return ScanRecord(scan_id=row.id)
        existing = {m.id: m for m in s.scalars(select(Model).where(Model.provider == provider))}
        prev_ids = {mid for mid, m in existing.items() if prev is not None and m.last_seen_scan_id == prev.id}
        seen: dict[str, Scanned] = {}
        for sm in models:
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
            m = reg.register_model(
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
        return ScanRecord(scan_id=row.id, seen=len(seen), new=new, gone=gone, repriced=repriced, first_scan=prev is None)
