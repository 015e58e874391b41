"""The steward's own log rows (the columns of DESIGN.md), as JSON lines or Parquet: imported as they
are; ``request_id`` is the row's own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from modelsteward.storage.importers.base import Skip

NAME = "steward"


def sniff(record: Any) -> bool:
    return (isinstance(record, dict) and "request_id" in record and ("model_id" in record or "use_case" in record)
            and "call_type" not in record)


def rows(record: dict[str, Any]) -> Iterator[dict[str, Any] | Skip]:
    yield record
