"""Parquet segments of the request-log store: the atomic write, the footer rollup and compaction.

A segment is immutable once renamed into place.  Request segments (and the compacted files that
merge them) carry a rollup in their footer: per (model, role) the sums ``stats`` needs, so a
reader can add them up instead of scanning the columns (see ``logquery.LogReader.stats``).
"""

from __future__ import annotations

import fcntl
import os
import uuid
from pathlib import Path
from typing import Any

import orjson

__all__ = ["ROLLUP_FIELDS", "ROLLUP_KEY", "compact_partition", "with_rollup"]


def _schema(cols: dict[str, str], ts_type: Any = None):  # type: ignore[no-untyped-def]
    import pyarrow as pa

    types = {"timestamp": ts_type or pa.timestamp("us"), "string": pa.string(), "int64": pa.int64(),
             "float64": pa.float64()}
    return pa.schema([(name, types[t]) for name, t in cols.items()])


ROLLUP_KEY = b"steward.rollup"
# one row per (model_id, role) of a request segment, in this order
ROLLUP_FIELDS = ("model_id", "role", "count", "errors", "input_tokens", "output_tokens", "cost_usd",
                 "fb_sum", "fb_n", "min_ts", "max_ts")


def with_rollup(table: Any) -> Any:
    """The table with its per-(model, role) partial aggregates in the schema metadata (the footer).

    Counts, errors, token and cost sums, inline-feedback sum and count, and the first and last
    ``ts`` (integer microseconds): everything ``stats`` needs except the latency quantiles, which do
    not merge.  Segments are immutable, so a footer never goes stale; ``stats`` adds the rollups of
    files wholly inside its window and scans only the latency column there.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    parts = pa.table({
        "model_id": table.column("model_id"), "role": table.column("role"),
        "err": pc.fill_null(pc.equal(table.column("status"), "error"), False).cast(pa.int64()),
        "tin": table.column("input_tokens"), "tout": table.column("output_tokens"),
        "cost": table.column("cost_usd"), "fb": table.column("feedback"),
        "ts": table.column("ts").cast(pa.timestamp("us")).cast(pa.int64()),
    })
    agg = parts.group_by(["model_id", "role"], use_threads=False).aggregate([
        ([], "count_all"), ("err", "sum"), ("tin", "sum"), ("tout", "sum"), ("cost", "sum"),
        ("fb", "sum"), ("fb", "count"), ("ts", "min"), ("ts", "max"),
    ])
    cols = ["model_id", "role", "count_all", "err_sum", "tin_sum", "tout_sum", "cost_sum", "fb_sum", "fb_count",
            "ts_min", "ts_max"]
    rows = [list(r) for r in zip(*(agg.column(c).to_pylist() for c in cols), strict=True)]
    meta = dict(table.schema.metadata or {})
    meta[ROLLUP_KEY] = orjson.dumps({"v": 1, "fields": ROLLUP_FIELDS, "groups": rows})
    return table.replace_schema_metadata(meta)


def _atomic_parquet(target: Path, table: Any) -> None:
    import pyarrow.parquet as pq

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:6]}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, target)


def _merged_sources(part: Path) -> set[str]:
    """Names of the segments the partition's compacted files already hold (from their footers)."""
    import pyarrow.parquet as pq

    names: set[str] = set()
    for cmp in part.glob("cmp-*.parquet"):
        try:
            raw = (pq.read_metadata(cmp).metadata or {}).get(b"steward.sources")
        except Exception:  # noqa: BLE001 - a corrupt compacted file is the reader's to report
            continue
        if raw:
            names.update(orjson.loads(raw))
    return names


def _readable(segs: list[Any], read: Any) -> tuple[list[Any], list[Any]]:
    """(tables, their paths) of the segments ``read`` can read; corrupt ones stay for the reader to report."""
    tables, used = [], []
    for p in segs:
        try:
            tables.append(read(p))
            used.append(p)
        except Exception:  # noqa: BLE001 - see the docstring
            continue
    return tables, used


def compact_partition(part: Path) -> int:
    """Merge a partition's ``seg-*`` files into one ``cmp-*`` file that names its sources.

    Readers ignore any segment a compacted file lists, so a crash between writing the merged file
    and deleting its sources never double-counts; the next compaction deletes those leftovers
    (never merging them again, which would count their rows twice).
    """
    import pyarrow.parquet as pq

    lock_path = part / ".compact.lock"
    with open(lock_path, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0
        merged_before = _merged_sources(part)
        segs = []
        for p in sorted(part.glob("seg-*.parquet")):
            if p.name in merged_before:  # left by a compaction that crashed before deleting its sources
                p.unlink(missing_ok=True)
            else:
                segs.append(p)
        if len(segs) < 2:
            return 0
        tables, used = _readable(segs, pq.read_table)
        if len(used) < 2:
            return 0
        import pyarrow as pa

        merged = pa.concat_tables(tables, promote_options="default")
        meta = dict(merged.schema.metadata or {})
        meta[b"steward.sources"] = orjson.dumps([p.name for p in used])
        merged = merged.replace_schema_metadata(meta)
        if "latency_ms" in merged.column_names:  # a request partition (feedback has no rollup)
            merged = with_rollup(merged)
        target = part / f"cmp-{uuid.uuid4().hex[:12]}.parquet"
        tmp = part / f".{target.name}.tmp"
        pq.write_table(merged, tmp, compression="zstd", row_group_size=1_000_000)
        os.replace(tmp, target)
        for p in used:
            p.unlink(missing_ok=True)
        return len(used)


def compact_remote(objects: Any, part_rel: str) -> int:
    """``compact_partition`` for a bucket (no file locks there: only the control-loop leader calls it).

    The merged file's name is derived from the names it merges (``content_name``), so two
    compactions of the same segments -- a leader change mid-way -- write the same object once; it
    is uploaded atomically (``ObjectStore.write_parquet``) before its sources are deleted.
    """
    import posixpath

    import pyarrow as pa

    from modelsteward.storage.objectstore import content_name

    files = objects.list_files(part_rel)
    merged_before: set[str] = set()
    for path, _size, _mtime in files:
        if posixpath.basename(path).startswith("cmp-"):
            try:
                raw = (objects.read_metadata(path).metadata or {}).get(b"steward.sources")
            except Exception:  # noqa: BLE001 - a corrupt compacted file is the reader's to report
                continue
            if raw:
                merged_before.update(orjson.loads(raw))
    segs = []
    for path, _size, _mtime in files:
        name = posixpath.basename(path)
        if not name.startswith("seg-"):
            continue
        if name in merged_before:
            objects.delete(path)
        else:
            segs.append(path)
    if len(segs) < 2:
        return 0
    tables, used = _readable(segs, objects.read_table)
    if len(used) < 2:
        return 0
    names = [posixpath.basename(p) for p in used]
    merged = pa.concat_tables(tables, promote_options="default")
    # the hive columns of a dataset read are not part of the stored file
    merged = merged.drop_columns([c for c in ("date", "use_case") if c in merged.column_names])
    meta = dict(merged.schema.metadata or {})
    meta[b"steward.sources"] = orjson.dumps(names)
    merged = merged.replace_schema_metadata(meta)
    if "latency_ms" in merged.column_names:
        merged = with_rollup(merged)
    objects.write_parquet(posixpath.join(part_rel, content_name("cmp", names)), merged, row_group_size=1_000_000)
    for p in used:
        objects.delete(p)
    return len(used)
