"""The request-log store: append-only Parquet segments behind a write-ahead file.

Layout under the store's root (``STEWARD_LOG_DIR``, default ``<workspace>/logs``; a folder or an
S3 bucket prefix, see ``storage/objectstore.py``)::

    requests/date=YYYY-MM-DD/use_case=NAME/seg-<writer-id>.<seq>.parquet
    feedback/date=YYYY-MM-DD/seg-<writer-id>.<seq>.parquet

and, always on local disk (``STEWARD_WAL_DIR``, default ``<root>/wal``; ``<workspace>/wal`` for a bucket)::

    <stream>-<writer-id>.<seq>.jsonl     rows acknowledged but not yet in Parquet (one file per batch)

``append()`` returns once its row is in the current write-ahead file (copied into its shared memory
map, i.e. the page cache: a killed process loses nothing acknowledged; pass ``fsync=True`` to
survive power loss too).  A
background thread turns each batch into zstd Parquet segments (written to a temp name, then
renamed) and only then deletes the batch's write-ahead file, so a crash at any point leaves the
rows either in the WAL or in Parquet.  A writer holds an ``flock`` on its WAL files; opening a store
replays WAL files no live writer holds, writing segments under the same names (idempotent).
Several writers (gateway replicas) can share one root.

Reading happens through DuckDB (``modelsteward.storage.logquery``) and never writes: the ``logs``
view reads the write-ahead files too (``storage/wal.py``), so nothing is flushed before a read.
Segments in a bucket are compacted by the control-loop leader only (``compact()``).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import functools
import logging
import mmap
import os
import threading
import uuid
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from modelsteward.errors import ConfigError, InvalidInput
from modelsteward.storage.logrows import (  # noqa: F401 - re-exported: the row format lives there
    FEEDBACK_COLUMNS,
    LOG_COLUMNS,
    REQUIRED,
    _now_us,
    normalise_row,
    parse_ts,
    ts_us,
)
from modelsteward.storage.objectstore import ObjectStore, open_objects, parse_log_location
from modelsteward.storage.segments import (  # noqa: F401 - re-exported: the segment format lives there
    ROLLUP_FIELDS,
    ROLLUP_KEY,
    _atomic_parquet,
    _schema,
    compact_partition,
    compact_remote,
    with_rollup,
)

__all__ = ["LogStore", "LOG_COLUMNS", "normalise_row", "parse_ts", "ts_us", "compact_partition", "with_rollup"]

log = logging.getLogger(__name__)

_dumps = orjson.dumps
_NL = orjson.OPT_APPEND_NEWLINE


class _Stream:
    """One append-only stream (requests or feedback): the current WAL file and its row count.

    The WAL is a shared memory map of its file, so an append is a copy into the page cache rather
    than a ``write`` system call (a third of an append's cost).  What is copied there belongs to
    the kernel at once: it survives the process being killed, exactly as a ``write`` would (and, as
    with ``write``, only ``fsync=True`` -- here ``msync`` -- survives power loss).  The file's
    blocks are reserved ahead of the rows with ``posix_fallocate`` -- a full disk then fails the
    append that needed more room with an ``OSError`` instead of killing the process with SIGBUS
    on a write into an unbacked page -- and the file is cut to the rows' length when it is sealed;
    a killed writer's file ends in zero bytes, which replay drops.
    """

    INITIAL_BYTES = 4 << 20  # the requests stream; feedback starts at 1/16 of it

    def __init__(self, store: LogStore, name: str, initial_bytes: int) -> None:
        self.store = store
        self.name = name
        self.initial_bytes = max(4096, initial_bytes)
        self.count = 0
        self.seq = 0
        self.fd = -1
        self.pos = 0
        self.mm: mmap.mmap | None = None
        self.wal_path: Path = Path()
        self._use(*self._new_wal())

    def _new_wal(self) -> tuple[int, Path, mmap.mmap]:
        """Create, lock, reserve and map the next WAL file (nothing changes if this fails)."""
        path = self.store.wal_dir / f"{self.name}-{self.store.writer_id}.{self.seq + 1:06d}.jsonl"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.posix_fallocate(fd, 0, self.initial_bytes)
            return fd, path, mmap.mmap(fd, self.initial_bytes)
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise

    def _use(self, fd: int, path: Path, mm: mmap.mmap) -> None:
        self.seq += 1
        self.fd, self.wal_path, self.mm, self.count, self.pos = fd, path, mm, 0, 0

    def write(self, data: bytes, n: int) -> None:
        mm, pos = self.mm, self.pos
        end = pos + len(data)
        if end > len(mm):  # type: ignore[arg-type]
            size = max(end, 2 * len(mm))  # type: ignore[arg-type]
            os.posix_fallocate(self.fd, 0, size)  # ENOSPC here: this row is refused, earlier ones stay
            mm.resize(size)  # type: ignore[union-attr]
        mm[pos:end] = data  # type: ignore[index]
        self.pos = end
        if self.store.fsync:
            mm.flush()  # type: ignore[union-attr]
        self.count += n

    def _seal(self) -> None:
        """Unmap the current WAL and cut its file to the rows written (the fd stays open, locked)."""
        if self.mm is not None:
            self.mm.close()
            self.mm = None
        os.ftruncate(self.fd, self.pos)

    def rotate(self) -> tuple[Path, int]:
        """Swap in a fresh WAL; return the old one's path and (still locking) descriptor.

        The new file is made first: if that fails (a full disk), the current WAL stays in use.
        """
        fresh = self._new_wal()
        self._seal()
        path, fd = self.wal_path, self.fd
        self._use(*fresh)
        return path, fd

    def close(self) -> None:
        """Remove the (flushed, hence empty) current WAL and release it."""
        self._seal()
        self.wal_path.unlink(missing_ok=True)
        os.close(self.fd)


class LogStore:
    """Append-only request logs (and feedback) with a background Parquet writer.

    The WAL holds one JSON object per line with ``ts`` as integer microseconds (UTC); the writer
    turns a closed WAL file into Parquet with pyarrow's JSON reader (C++, off the GIL), so
    ``append`` costs one validation, one ``orjson.dumps`` and one copy into the mapped WAL.
    """

    def __init__(
        self,
        root: Path | str,
        *,
        wal_dir: Path | str | None = None,
        batch_rows: int = 5000,
        flush_seconds: float = 1.0,
        fsync: bool = False,
        compact_after: int = 24,
        compact_on_flush: bool | None = None,
        objects: ObjectStore | None = None,
    ) -> None:
        location = objects.location if objects is not None else (
            parse_log_location(root) if isinstance(root, str) else parse_log_location(Path(root)))
        self.objects = objects if objects is not None else open_objects(location)
        self.remote = self.objects.remote
        if self.remote:
            # segments in a bucket; the write-ahead files stay on this machine
            self.root: Any = self.objects.url
            if wal_dir is None:
                raise ConfigError("a log store in a bucket needs a local write-ahead folder (STEWARD_WAL_DIR).",
                                  variable="STEWARD_WAL_DIR")
            self.wal_dir = Path(wal_dir).expanduser().resolve()
            # no local segment folders (retention and folder compaction check ``remote`` first)
            self.requests_dir: Path = None  # type: ignore[assignment]
            self.feedback_dir: Path = None  # type: ignore[assignment]
            dirs: tuple[Path, ...] = (self.wal_dir,)
        else:
            assert location.path is not None
            self.root = location.path
            self.wal_dir = Path(wal_dir).expanduser().resolve() if wal_dir is not None else self.root / "wal"
            self.requests_dir = self.root / "requests"
            self.feedback_dir = self.root / "feedback"
            dirs = (self.wal_dir, self.requests_dir, self.feedback_dir)
        for d in dirs:
            d.mkdir(parents=True, exist_ok=True)
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        self.fsync = fsync
        self.compact_after = compact_after
        # a folder: whoever flushes compacts (file locks keep them apart); a bucket has no locks,
        # so only the control-loop leader compacts there (``compact()``)
        self.compact_on_flush = (not self.remote) if compact_on_flush is None else compact_on_flush
        self.writer_id = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._failed: list[tuple[str, Path, int]] = []  # rotated WALs whose conversion failed (still locked)
        self.replayed = self._replay_orphans()
        self._requests = _Stream(self, "requests", _Stream.INITIAL_BYTES)
        self._feedback = _Stream(self, "feedback", _Stream.INITIAL_BYTES // 16)
        self._thread = threading.Thread(target=self._run, name="logstore-writer", daemon=True)
        self._thread.start()
        self._reader: Any = None
        # a forked child shares the parent's mapped WAL: it must not write into it
        os.register_at_fork(after_in_child=functools.partial(_disown, weakref.ref(self)))

    # ------------------------------------------------------------------ writing
    def append(self, row: Mapping[str, Any]) -> None:
        """Store one row; returns once it is in the write-ahead file."""
        data = _dumps(normalise_row(row), option=_NL)
        with self._lock:
            if self._closed:
                raise RuntimeError(_CLOSED)
            self._requests.write(data, 1)
            if self._requests.count >= self.batch_rows:
                self._wake.set()

    def append_many(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Store rows (validated first: one bad row rejects the whole call); returns the count."""
        batch = [_dumps(normalise_row(r), option=_NL) for r in rows]
        if not batch:
            return 0
        data = b"".join(batch)
        with self._lock:
            if self._closed:
                raise RuntimeError(_CLOSED)
            self._requests.write(data, len(batch))
            if self._requests.count >= self.batch_rows:
                self._wake.set()
        return len(batch)

    def record_feedback(self, request_id: str, score: float, comment: str | None = None) -> None:
        """Attach user feedback (-1..1) to a logged request; the ``logs`` view shows the latest."""
        try:
            score = float(score)
        except (TypeError, ValueError):
            raise InvalidInput(f"feedback score {score!r} is not a number.") from None
        if not -1.0 <= score <= 1.0:
            raise InvalidInput(f"feedback score {score} must be within -1..1.")
        row = {"ts": _now_us(), "request_id": str(request_id), "score": score, "comment": comment}
        with self._lock:
            if self._closed:
                raise RuntimeError(_CLOSED)
            self._feedback.write(_dumps(row, option=_NL), 1)

    @property
    def pending(self) -> int:
        return self._requests.count + self._feedback.count + len(self._failed)

    def flush(self) -> None:
        """Write every acknowledged row to Parquet now."""
        with self._flush_lock:
            with self._lock:
                closed, failed = [], None
                for s in (self._requests, self._feedback):
                    if s.count:
                        try:
                            closed.append((s.name, *s.rotate()))
                        except OSError as exc:  # no new WAL (disk full): this stream keeps its current one
                            failed = exc
            # batches whose conversion failed before are retried first (they stay locked, in order)
            todo, self._failed = self._failed + closed, []
            for i, (name, path, fd) in enumerate(todo):
                try:
                    self._convert_wal(name, path)
                except Exception as exc:
                    # keep this batch and the later ones for the next flush; rows stay in their WAL
                    self._failed = todo[i:]
                    log.warning("log store: converting %s failed (%s); retried on the next flush", path, exc)
                    raise
                path.unlink(missing_ok=True)
                os.close(fd)
            if closed:
                self._maybe_compact()
            if failed is not None:
                raise failed

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - keep the writer alive; rows stay in the WAL
                log.exception("log store flush failed; rows stay in the write-ahead file")

    def close(self) -> None:
        """Flush everything and stop the writer (idempotent)."""
        if self._closed:
            return
        with self._lock:
            self._closed = True
        self._wake.set()
        self._thread.join(timeout=30)
        try:
            self.flush()
        finally:
            with self._lock:
                for s in (self._requests, self._feedback):
                    if s.count == 0:
                        s.close()
                    else:  # not flushed: keep the WAL for the next open to replay
                        s._seal()
                        os.close(s.fd)
                for _name, _path, fd in self._failed:  # unlock: the next open replays them
                    os.close(fd)
                self._failed = []
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> LogStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ segments
    def _convert_wal(self, stream: str, path: Path) -> int:
        """WAL file -> Parquet segments named after it (re-running it rewrites the same files)."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.json as pj

        cols = FEEDBACK_COLUMNS if stream == "feedback" else {**LOG_COLUMNS, "use_case": "string"}
        wal_schema = _schema(cols, ts_type=pa.int64())
        try:
            table = pj.read_json(
                path,
                read_options=pj.ReadOptions(block_size=1 << 24, use_threads=False),
                parse_options=pj.ParseOptions(explicit_schema=wal_schema, unexpected_field_behavior="ignore",
                                              newlines_in_values=False),
            )
        except pa.ArrowInvalid:
            table = _read_torn_wal(path, wal_schema)
        if table.num_rows == 0:
            return 0
        ts = table.column("ts").cast(pa.timestamp("us"))
        table = table.set_column(table.schema.get_field_index("ts"), "ts", ts)
        day = pc.strftime(ts, format="%Y-%m-%d")
        seg = f"seg-{path.name.rsplit('.', 1)[0]}.parquet"
        if stream == "feedback":
            keys = [(d,) for d in pc.unique(day).to_pylist()]
        else:
            uc = table.column("use_case")
            pairs = pa.table({"d": day, "u": uc}).group_by(["d", "u"]).aggregate([]).to_pylist()
            keys = [(p["d"], p["u"]) for p in pairs]
            table = table.drop_columns(["use_case"])
        out_schema = _schema(FEEDBACK_COLUMNS if stream == "feedback" else LOG_COLUMNS)
        for key in keys:
            mask = pc.equal(day, key[0])
            if stream == "feedback":
                folder = f"feedback/date={key[0]}"
            else:
                mask = pc.and_(mask, pc.equal(uc, key[1]))
                folder = f"requests/date={key[0]}/use_case={key[1]}"
            part = table.filter(mask).cast(out_schema)
            if stream != "feedback":
                part = with_rollup(part)
            if self.remote:
                self.objects.write_parquet(f"{folder}/{seg}", part)
            else:
                _atomic_parquet(self.root / folder / seg, part)
        return table.num_rows

    def _replay_orphans(self) -> int:
        """Turn WAL files no live writer holds into segments; returns the request rows recovered."""
        recovered = 0
        for path in sorted(self.wal_dir.glob("*.jsonl")):
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # a live writer owns it
            try:
                stream = path.name.split("-", 1)[0]
                _cut_zero_tail(fd)
                n = self._convert_wal(stream, path) if path.stat().st_size else 0
                recovered += n if stream == "requests" else 0
                path.unlink(missing_ok=True)
            finally:
                os.close(fd)
        if recovered:
            log.info("log store: recovered %d rows from write-ahead files", recovered)
        return recovered

    def _maybe_compact(self) -> None:
        if not self.compact_on_flush:
            return
        if self.remote:
            self.compact()
            return
        for part in self.requests_dir.glob("date=*/use_case=*"):
            if sum(1 for _ in part.glob("seg-*.parquet")) >= self.compact_after:
                compact_partition(part)

    def compact(self) -> int:
        """Merge the small segments of every partition; returns the number of files merged."""
        merged = 0
        if self.remote:
            return self._compact_remote()
        with self._flush_lock:
            for part in list(self.requests_dir.glob("date=*/use_case=*")) + list(self.feedback_dir.glob("date=*")):
                merged += compact_partition(part)
        return merged

    def _compact_remote(self) -> int:
        """Bucket partitions with at least two segments, merged (the control-loop leader calls this)."""
        import posixpath

        counts: dict[str, int] = {}
        for sub in ("requests", "feedback"):
            for path, _size, _mtime in self.objects.list_files(sub):
                if posixpath.basename(path).startswith("seg-"):
                    part = self.objects.rel(posixpath.dirname(path))
                    counts[part] = counts.get(part, 0) + 1
        return sum(compact_remote(self.objects, part) for part, n in sorted(counts.items()) if n >= 2)

    def check(self) -> str:
        """Readiness: the bucket answers (or the folder is there and writable) and the segments read."""
        if self.remote:
            self.objects.check()
        self.reader.query("SELECT count(*) AS n FROM logs WHERE false")
        return "bucket and segments readable" if self.remote else "segments readable"

    # ------------------------------------------------------------------ reading
    @property
    def reader(self):  # type: ignore[no-untyped-def]
        from modelsteward.storage.logquery import LogReader

        if self._reader is None:
            self._reader = LogReader(self.root, wal_dir=self.wal_dir, objects=self.objects)
        return self._reader

    # Reads never write: the ``logs`` view reads the write-ahead files too (``storage/wal.py``), so
    # every acknowledged row is visible without turning the WAL into Parquet first.
    def connect(self):  # type: ignore[no-untyped-def]
        """A fresh DuckDB connection with the ``logs`` view (segments and write-ahead rows)."""
        return self.reader.connect()

    def query(self, sql: str, params: list[Any] | None = None, *, limit: int | None = None) -> list[dict[str, Any]]:
        """Run one read-only SELECT over the ``logs`` view; anything that writes is refused."""
        return self.reader.query(sql, params, limit=limit)

    def stats(self, use_case: str | None = None, since: str | dt.timedelta | None = "7d") -> list[dict[str, Any]]:
        """Per use case x model x role over the window: counts, error rate, p50/p95, tokens, cost, feedback."""
        return self.reader.stats(use_case=use_case, since=since)

    def request_key(self, request_id: str) -> tuple[str, str | None] | None:
        """Who made the answered request ``request_id``: (use case, gateway key name, None without a
        key), or None when no answer was logged under that id -- a failed attempt (``<id>-a<n>``) or a
        shadow call (``<id>-s<n>``) is not an answer (its metadata names ``primary_request_id``).

        Looked up in the write-ahead files first (rows of every writer sharing the folder, this
        process's and other replicas', acknowledged but not yet in Parquet; no flush), then in the
        segments."""
        from modelsteward.storage.wal import find_request

        row = find_request(self.wal_dir, request_id)
        if row is None:
            rows = self.query("SELECT use_case, metadata FROM logs WHERE request_id = ? ORDER BY ts LIMIT 1",
                              [request_id])
            row = rows[0] if rows else None
        if row is None or not row.get("use_case"):
            return None
        meta = row.get("metadata")
        try:
            meta = orjson.loads(meta) if isinstance(meta, (str, bytes)) and meta else (meta or {})
        except orjson.JSONDecodeError:
            meta = {}
        if not isinstance(meta, dict) or "primary_request_id" in meta:
            return None
        key = meta.get("key")
        return str(row["use_case"]), key if isinstance(key, str) else None


_CLOSED = "log store is closed (a forked process cannot write to its parent's store: open a new LogStore)"


def _disown(ref: weakref.ref[LogStore]) -> None:
    store = ref()
    if store is not None:
        store._closed = True


def _cut_zero_tail(fd: int) -> None:
    """Truncate a killed writer's WAL to its written bytes (its mapped file was grown with zeros)."""
    size = os.fstat(fd).st_size
    if not size:
        return
    with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as mm:
        end = size
        while end > 0:  # scan back a block at a time (rows never contain NUL bytes: JSON escapes them)
            start = max(0, end - (1 << 20))
            block = mm[start:end].rstrip(b"\0")
            if block:
                end = start + len(block)
                break
            end = start
    if end < size:
        os.ftruncate(fd, end)


def _read_torn_wal(path: Path, schema: Any):  # type: ignore[no-untyped-def]
    """Line by line, skipping a torn (partially written) line left by a killed writer."""
    import pyarrow as pa

    rows = []
    with open(path, "rb") as fh:
        for n, line in enumerate(fh, 1):
            try:
                rows.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                log.warning("write-ahead file %s: unreadable line %d skipped (torn write)", path, n)
    return pa.Table.from_pylist(rows, schema=schema)
