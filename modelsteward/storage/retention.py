"""Retention: remove a use case's logged requests older than a cut-off from the Parquet log store.

Layout (``storage/logstore.py``): ``requests/date=YYYY-MM-DD/use_case=NAME/{seg,cmp}-*.parquet``.
- A partition whose whole day lies before the cut-off is renamed out of the tree in one
  ``os.replace`` (readers see all of it or none of it), then deleted.
- The partition of the cut-off day is rewritten file by file: rows older than the cut-off are
  dropped, the footer rollups recomputed, and the new file replaces the old one atomically under the
  same name (a compacted file keeps the list of sources it names).  A file left with no rows is
  removed.
Both steps hold the partition's ``.compact.lock`` so compaction never merges a file being
rewritten, and the store is flushed first so rows still in write-ahead files are on disk.

The per-use-case TTL lives in the use case's ``config["retention_days"]`` (no schema change);
``tools/logs.py``'s ``logs_purge`` applies it when no age is given.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelsteward.timeutil import parse_duration

__all__ = ["PurgeResult", "purge", "parse_age", "retention_days", "RETENTION_KEY"]

RETENTION_KEY = "retention_days"


@dataclass
class PurgeResult:
    use_case: str
    cutoff: str
    rows_removed: int = 0
    files_removed: int = 0
    files_rewritten: int = 0
    partitions_removed: list[str] = field(default_factory=list)


def parse_age(text: str) -> dt.timedelta:
    """``90d`` / ``12h`` / ``2w`` / ``30m`` -> a timedelta (no seconds: a purge age); anything else is
    refused with the accepted forms (``timeutil.parse_duration``)."""
    return parse_duration(text, units="mhdw", positive=True, what="Age",
                          examples="90d, 12h, 2w or 30m (a positive number and a unit)")


def _lock(part: Path) -> Any:
    fh = open(part / ".compact.lock", "w")  # noqa: SIM115 - released by the caller
    fcntl.flock(fh, fcntl.LOCK_EX)
    return fh


def _rewrite(path: Path, cutoff: dt.datetime) -> tuple[int, bool]:
    """Drop rows with ``ts < cutoff`` from one segment; returns (rows removed, file deleted)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from modelsteward.storage.segments import ROLLUP_KEY, with_rollup

    table = pq.read_table(path)
    keep = pc.greater_equal(table.column("ts"), pa.scalar(cutoff, type=table.schema.field("ts").type))
    kept = table.filter(keep)
    removed = table.num_rows - kept.num_rows
    if removed == 0:
        return 0, False
    if kept.num_rows == 0:
        path.unlink()
        return removed, True
    meta = {k: v for k, v in (table.schema.metadata or {}).items() if k != ROLLUP_KEY}
    kept = kept.replace_schema_metadata(meta)
    if "latency_ms" in kept.column_names:
        kept = with_rollup(kept)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}.tmp")
    pq.write_table(kept, tmp, compression="zstd", row_group_size=1_000_000)
    os.replace(tmp, path)
    return removed, False


def _count_rows(part: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in part.glob("*.parquet"))


def purge(store: Any, use_case: str, older_than: dt.timedelta, *, now: dt.datetime | None = None) -> PurgeResult:
    """Remove ``use_case``'s request rows older than ``now - older_than`` (see the module docstring)."""
    if getattr(store, "remote", False):
        raise InvalidInput(
            f"The log store is a bucket ({store.root}): purge its old rows with the bucket's lifecycle rules "
            f"(expire objects under requests/date=YYYY-MM-DD/use_case={use_case}/ by age); "
            "`steward logs purge` rewrites local folders only.")
    now = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    cutoff = now - older_than
    res = PurgeResult(use_case=use_case, cutoff=cutoff.isoformat(timespec="seconds"))
    store.flush()
    trash = store.root / ".purged"
    for part in sorted(store.requests_dir.glob(f"date=*/use_case={use_case}")):
        try:
            day = dt.datetime.strptime(part.parent.name.removeprefix("date="), "%Y-%m-%d")
        except ValueError:
            continue
        if day >= cutoff:
            continue  # the whole day is newer than the cut-off
        lock = _lock(part)
        try:
            if day + dt.timedelta(days=1) <= cutoff:  # the whole day is older: one rename takes it out
                rows = _count_rows(part)
                trash.mkdir(exist_ok=True)
                gone = trash / f"{part.parent.name}-{use_case}-{uuid.uuid4().hex[:6]}"
                os.replace(part, gone)
                res.rows_removed += rows
                res.files_removed += sum(1 for _ in gone.glob("*.parquet"))
                res.partitions_removed.append(f"{part.parent.name}/{part.name}")
            else:
                for path in sorted(part.glob("*.parquet")):
                    n, deleted = _rewrite(path, cutoff)
                    res.rows_removed += n
                    res.files_removed += int(deleted)
                    res.files_rewritten += int(n > 0 and not deleted)
        finally:
            lock.close()
    shutil.rmtree(trash, ignore_errors=True)
    for day_dir in store.requests_dir.glob("date=*"):
        try:
            day_dir.rmdir()  # only when empty
        except OSError:
            pass
    return res


def retention_days(config: dict[str, Any] | None) -> float | None:
    """The use case's TTL in days, or None when it keeps raw prompts indefinitely."""
    val = (config or {}).get(RETENTION_KEY)
    return float(val) if isinstance(val, (int, float)) and val > 0 else None
