"""Discovery: catalog scanners (paid and self-hosted), the compatibility filter and the ranker."""

from typing import TYPE_CHECKING, Any

# Lazy (PEP 562): ``from modelsteward.catalog.compat import ...`` (the registry's requirement
# checks, on every read command) must not pay for ``rank`` (numpy) and ``scan`` (httpx).
_HOMES = {
    "base": ("SCANNERS", "MissingField", "ScannedModel", "Scanner", "SourceError", "SourceResult", "register_scanner"),
    "compat": ("Requirements", "check_compatibility"),
    "rank": ("RankedModel", "Ranking", "rank_use_case"),
    "scanners": ("get_scanner", "known_providers"),
    "scan": ("ScanReport", "SourceReport", "run_scan"),
}
_WHERE = {name: mod for mod, names in _HOMES.items() for name in names}

if TYPE_CHECKING:
    from modelsteward.catalog.base import (
        SCANNERS,
        MissingField,
        ScannedModel,
        Scanner,
        SourceError,
        SourceResult,
        register_scanner,
    )
    from modelsteward.catalog.compat import Requirements, check_compatibility
    from modelsteward.catalog.rank import RankedModel, Ranking, rank_use_case
    from modelsteward.catalog.scan import ScanReport, SourceReport, run_scan
    from modelsteward.catalog.scanners import get_scanner, known_providers


def __getattr__(name: str) -> Any:
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module 'modelsteward.catalog' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"modelsteward.catalog.{mod}"), name)
    globals()[name] = value
    return value


__all__ = [
    "SCANNERS",
    "MissingField",
    "RankedModel",
    "Ranking",
    "Requirements",
    "ScanReport",
    "ScannedModel",
    "Scanner",
    "SourceError",
    "SourceReport",
    "SourceResult",
    "check_compatibility",
    "get_scanner",
    "known_providers",
    "rank_use_case",
    "register_scanner",
    "run_scan",
]
