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
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from modelsteward.catalog.base import Scanner, SourceResult
from modelsteward.catalog.scanners import get_scanner, known_providers
from modelsteward.errors import InvalidInput
from modelsteward.storage.catalogscans import record_scan

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


def apply_result(steward: Steward, res: SourceResult) -> SourceReport:
    """Upsert one source's models and write its ``catalog_scans`` row, in one transaction
    (``storage/catalogscans.py``)."""
    report = SourceReport(
        provider=res.provider, status=res.status, skipped=res.skipped, skipped_examples=res.skipped_examples,
        filtered=res.filtered, pages=res.pages, error=res.error, error_kind=res.error_kind,
        http_status=res.http_status, retry_after=res.retry_after, notes=list(res.notes),
    )
    ok = res.status == "ok"
    rec = record_scan(steward.registry, res.provider, ok=ok, error=res.error if ok else f"{res.error_kind}: {res.error}",
                      skipped=res.skipped, models=res.models)
    report.scan_id = rec.scan_id
    if ok:
        report.seen, report.new, report.gone, report.repriced = rec.seen, rec.new, rec.gone, rec.repriced
        report.first_scan = rec.first_scan
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
