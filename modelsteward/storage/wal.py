"""Reading the write-ahead files: rows acknowledged by ``append()`` but not yet in Parquet.

Readers (the ``logs`` view, ``stats``) see these rows as well as the segments, so a row is visible
to every process sharing the WAL folder as soon as ``append()`` returns, and reading never converts
anything (reads never write).

A WAL file ``requests-<writer>.<seq>.jsonl`` becomes segments named ``seg-requests-<writer>.<seq>.parquet``
in each (date, use case) partition its rows fall in.  A reader reads the WAL files *first*, then
lists the segments; rows of a WAL whose segment already exists in a partition (or was already
merged into a compacted file there) are dropped for that partition -- so a conversion running
concurrently is counted exactly once: either from the WAL or from the segment.

A live WAL is a memory-mapped file grown with zeros beyond its rows; a killed writer's may end in a
torn line.  Both are cut at the last newline; a line that still does not parse is skipped.
"""

from __future__ import annotations

import logging
import mmap
import os
from pathlib import Path
from typing import Any

import orjson

__all__ = ["WalRows", "read_wal", "seg_name", "find_request"]

log = logging.getLogger(__name__)


def seg_name(wal_file: str) -> str:
    """The segment name a WAL file's rows are written under (in every partition they fall in)."""
    return f"seg-{wal_file.rsplit('.', 1)[0]}.parquet"


class WalRows:
    """The rows of the WAL files of one stream, per file (until deduplicated against the segments)."""

    def __init__(self, stream: str, parts: list[tuple[str, Any]]) -> None:
        self.stream = stream
        self.parts = parts  # (segment name, arrow table with ts as timestamp and the partition columns)

    def table(self, existing: set[tuple[str, str]]):  # type: ignore[no-untyped-def]
        """One arrow table of the rows not already in a segment; ``existing`` holds (partition, seg name)."""
        if not self.parts:
            return None
        import pyarrow as pa
        import pyarrow.compute as pc

        keep = []
        for seg, t in self.parts:
            done = {part for part, name in existing if name == seg}
            if done:
                key = t.column("date")
                key = pc.binary_join_element_wise(pc.binary_join_element_wise("date=", key, ""),
                                                  pc.binary_join_element_wise("use_case=", t.column("use_case"), ""),
                                                  "/") if self.stream == "requests" else \
                    pc.binary_join_element_wise("date=", key, "")
                t = t.filter(pc.invert(pc.is_in(key, value_set=pa.array(sorted(done), pa.string()))))
            if t.num_rows:
                keep.append(t)
        if not keep:
            return None
        return pa.concat_tables(keep)


def read_wal(wal_dir: Path, stream: str, schema: Any) -> WalRows:
    """Every WAL file of ``stream`` (``requests`` or ``feedback``) in ``wal_dir``; ``schema`` is the
    WAL's (``ts`` as int64 microseconds), or a function that makes it.  Files that vanish while listed are skipped (converted)."""
    parts: list[tuple[str, Any]] = []
    if not wal_dir.is_dir():
        return WalRows(stream, parts)
    for path in sorted(wal_dir.glob(f"{stream}-*.jsonl")):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        end = data.rfind(b"\n") + 1  # the rows end with a newline; zeros or a torn line follow
        if end <= 0:
            continue
        import pyarrow as pa  # only for rows to read: an empty write-ahead folder needs no pyarrow
        import pyarrow.compute as pc
        import pyarrow.json as pj

        if callable(schema):  # given as a factory: building it needs pyarrow
            schema = schema()
        buf = data[:end]
        try:
            table = pj.read_json(
                pa.BufferReader(buf),
                read_options=pj.ReadOptions(block_size=1 << 24, use_threads=False),
                parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore",
                                              newlines_in_values=False),
            )
        except pa.ArrowInvalid:
            table = _by_line(buf, schema, path)
        if table.num_rows == 0:
            continue
        ts = table.column("ts").cast(pa.timestamp("us"))
        table = table.set_column(table.schema.get_field_index("ts"), "ts", ts)
        table = table.append_column("date", pc.strftime(ts, format="%Y-%m-%d"))
        parts.append((seg_name(path.name), table))
    return WalRows(stream, parts)


def _by_line(buf: bytes, schema: Any, path: Path):  # type: ignore[no-untyped-def]
    import pyarrow as pa

    rows = []
    for n, line in enumerate(buf.split(b"\n"), 1):
        if not line.strip(b"\0 \r"):
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            log.debug("write-ahead file %s: line %d unreadable (being written or torn); skipped", path, n)
            continue
        if isinstance(obj, dict):
            rows.append(obj)
    return pa.Table.from_pylist(rows, schema=schema)


def find_request(wal_dir: Path, request_id: str) -> dict[str, Any] | None:
    """The row logged as ``request_id`` in a ``requests`` WAL file of ``wal_dir`` (any writer's: this
    process's, other replicas' sharing the folder), or None when no WAL file holds it (never written,
    or already in a segment).  Each file is searched as bytes through a read-only memory map, without
    parsing its other rows."""
    needle = b'"request_id":' + orjson.dumps(request_id)
    for path in sorted(wal_dir.glob("requests-*.jsonl")):
        try:
            with open(path, "rb") as fh:
                if not os.fstat(fh.fileno()).st_size:
                    continue
                with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                    at = mm.find(needle)
                    if at < 0:
                        continue
                    start = mm.rfind(b"\n", 0, at) + 1
                    end = mm.find(b"\n", at)
                    line = mm[start:end if end >= 0 else len(mm)].rstrip(b"\0")
        except (FileNotFoundError, ValueError, OSError):
            continue  # converted and removed meanwhile (then it is in a segment), or unreadable
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # a torn line (its writer was killed mid-append)
        if isinstance(row, dict) and row.get("request_id") == request_id:
            return row
    return None
