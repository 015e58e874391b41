"""Discovery: catalog scanners (paid and self-hosted), the compatibility filter and the ranker."""

from modelsteward.catalog.base import (
    SCANNERS,
    MissingField,
    ScannedModel,
    Scanner,
    SourceError,
    SourceResult,
    get_scanner,
    known_providers,
    register_scanner,
)
from modelsteward.catalog.compat import Requirements, check_compatibility
from modelsteward.catalog.rank import RankedModel, Ranking, rank_use_case
from modelsteward.catalog.scan import ScanReport, SourceReport, run_scan

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
