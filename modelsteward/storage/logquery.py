"""Reading the request logs with DuckDB: the ``logs`` view, analytics and read-only SQL.

Every connection is an in-memory DuckDB whose views list the store's valid segment files
explicitly: a corrupt segment is skipped with a warning naming it, and segments already merged
into a compacted file are left out.  After the views are made the connection locks itself down
(no external access beyond the store, configuration locked), and ``query`` accepts one SELECT only.
Every connection has a memory limit (``STEWARD_QUERY_MEMORY``, nothing spills to disk) and ``query``
a statement timeout (``STEWARD_QUERY_TIMEOUT_S``, enforced with ``interrupt``); both fail with an
error naming the setting.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import posixpath
import re
import threading
import uuid
import warnings
from pathlib import Path
from typing import Any

import orjson

from modelsteward.errors import ConfigError, InvalidInput, ReadOnlyViolation
from modelsteward.storage.segments import ROLLUP_FIELDS, ROLLUP_KEY
from modelsteward.timeutil import window_start

__all__ = ["LogReader", "CorruptSegmentWarning"]

log = logging.getLogger(__name__)

_EMPTY_LOGS = (
    "SELECT NULL::TIMESTAMP AS ts, NULL::VARCHAR AS request_id, NULL::VARCHAR AS model_id, NULL::VARCHAR AS role, "
    "NULL::VARCHAR AS messages, NULL::VARCHAR AS response, NULL::BIGINT AS input_tokens, "
    "NULL::BIGINT AS output_tokens, NULL::DOUBLE AS latency_ms, NULL::DOUBLE AS cost_usd, NULL::VARCHAR AS status, "
    "NULL::VARCHAR AS error, NULL::DOUBLE AS feedback, NULL::VARCHAR AS metadata, NULL::VARCHAR AS request, NULL::VARCHAR AS answer, "
    "NULL::VARCHAR AS origin, NULL::VARCHAR AS date, "
    "NULL::VARCHAR AS use_case WHERE false"
)
_EMPTY_FEEDBACK = (
    "SELECT NULL::TIMESTAMP AS ts, NULL::VARCHAR AS request_id, NULL::DOUBLE AS score, NULL::VARCHAR AS comment "
    "WHERE false"
)
_LOG_COLS = (
    "r.ts, r.request_id, r.use_case, r.model_id, r.role, r.messages, r.response, r.input_tokens, r.output_tokens, "
    "r.latency_ms, r.cost_usd, r.status, r.error, COALESCE(f.score, r.feedback) AS feedback, r.metadata, "
    "r.request, r.answer, r.origin"
)


def _log_cols(con: Any) -> str:
    """The ``logs`` view's select list; a column that no segment has yet (written before it was
    added, ``LATER_COLUMNS``) reads as NULL."""
    from modelsteward.storage.logrows import LATER_COLUMNS

    have = {d[0] for d in con.execute("SELECT * FROM raw_logs LIMIT 0").description}
    missing = [c for c in LATER_COLUMNS if c not in have]
    if not missing:
        return _LOG_COLS
    return ", ".join(f"NULL::VARCHAR AS {c[2:]}" if c[2:] in missing else c for c in _LOG_COLS.split(", "))


def query_timeout() -> float:
    """Seconds a ``query`` (user SQL) may run: ``STEWARD_QUERY_TIMEOUT_S``, default 30."""
    raw = os.environ.get("STEWARD_QUERY_TIMEOUT_S", "30")
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86400:
        raise ConfigError(f"STEWARD_QUERY_TIMEOUT_S={raw!r} must be a number of seconds in (0, 86400].")
    return value


def query_memory() -> str:
    """DuckDB memory limit of log queries: ``STEWARD_QUERY_MEMORY`` (like 512MB, 2GB), default 2GB."""
    raw = os.environ.get("STEWARD_QUERY_MEMORY", "2GB").strip()
    if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", raw, flags=re.IGNORECASE):
        raise ConfigError(f"STEWARD_QUERY_MEMORY={raw!r} must be a size like 512MB or 2GB.")
    return raw


def build_memory() -> str:
    """DuckDB memory limit of bulk work that may spill (dataset builds, imports, compaction):
    ``STEWARD_BUILD_MEMORY``, default 15 % of the machine's physical memory (at least 1 GiB): the
    build shares the machine with the gateway and the server, and spilling beyond it costs little
    (on a 24 GB machine a 10M-row build at 20 % plateaued at 5.2-5.5 GB RSS: the limit plus
    ~0.6 GB).  Ad-hoc queries keep the hard, no-spill ``query_memory`` limit (issue 28)."""
    raw = os.environ.get("STEWARD_BUILD_MEMORY", "").strip()
    if raw:
        if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", raw, flags=re.IGNORECASE):
            raise ConfigError(f"STEWARD_BUILD_MEMORY={raw!r} must be a size like 4GB or 12GB.")
        return raw
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return "4GB"
    return f"{max(1024, int(total * 0.15 / 2**20))}MiB"


class CorruptSegmentWarning(UserWarning):
    """A Parquet segment could not be read and was left out of queries."""


class LogReader:
    """Builds DuckDB connections over a log store: its segments (a folder or a bucket) and its
    not-yet-converted write-ahead files (``storage/wal.py``).  Reading never writes."""

    def __init__(self, root: Path | str, wal_dir: Path | None = None, objects: Any = None) -> None:
        if objects is None:
            from modelsteward.storage.objectstore import ObjectStore, parse_log_location

            objects = ObjectStore(parse_log_location(root if isinstance(root, str) else Path(root)))
        self.objects = objects
        self.remote = bool(objects.remote)
        self.root = Path(root) if not self.remote else root
        self.wal_dir = Path(wal_dir) if wal_dir is not None else (None if self.remote else Path(root) / "wal")
        self._valid: dict[str, tuple[tuple[int, int], list[str] | None]] = {}
        self._rollups: dict[str, list[list[Any]]] = {}  # file -> its footer's per-(model, role) rollup
        self._bad: set[tuple[str, int, int]] = set()

    def close(self) -> None:
        self._valid.clear()
        self._rollups.clear()

    # ------------------------------------------------------------------ files
    def _listing(self, sub: str) -> list[tuple[str, int, int]]:
        if self.remote:
            return self.objects.list_files(sub)
        base = Path(self.root) / sub
        out = []
        for p in sorted(base.glob("**/*.parquet")) if base.exists() else []:
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            out.append((str(p), st.st_size, st.st_mtime_ns))
        return out

    def _files(self, sub: str, seen: set[tuple[str, str]] | None = None, con: Any = None) -> list[str]:
        """The valid segment files under ``sub``; ``seen`` collects (partition, name) of every segment
        there, merged-away ones included (to drop write-ahead rows already in a segment)."""
        keep: list[str] = []
        merged_away: set[str] = set()
        listing = self._listing(sub)
        footers = self._local_footers([p for p, size, mtime in listing
                                       if (c := self._valid.get(p)) is None or c[0] != (size, mtime)], con)
        for p, size, mtime in listing:
            sig = (size, mtime)
            cached = self._valid.get(p)
            if cached is None or cached[0] != sig:
                try:
                    meta = footers[p] if p in footers else (self.objects.read_metadata(p).metadata or {})
                    raw = meta.get(b"steward.sources")
                    sources = orjson.loads(raw) if raw else None
                    rollup = _read_rollup(meta.get(ROLLUP_KEY))
                except FileNotFoundError:
                    continue  # merged away between the listing and now
                except Exception as exc:  # noqa: BLE001 - any unreadable footer is a corrupt segment
                    key = (p, *sig)
                    if key not in self._bad:
                        self._bad.add(key)
                        warnings.warn(f"skipping corrupt log segment {p}: {exc}", CorruptSegmentWarning, stacklevel=3)
                        log.warning("skipping corrupt log segment %s: %s", p, exc)
                    continue
                self._valid[p] = (sig, sources)
                if rollup is None:
                    self._rollups.pop(p, None)
                else:
                    self._rollups[p] = rollup
                cached = self._valid[p]
            parent, name = posixpath.split(p)
            if cached[1]:
                merged_away.update(posixpath.join(parent, s) for s in cached[1])
                if seen is not None:
                    seen.update((_partition(parent), s) for s in cached[1])
            if seen is not None:
                seen.add((_partition(parent), name))
            keep.append(p)
        return [p for p in keep if p not in merged_away]

    def _local_footers(self, paths: list[str], con: Any = None) -> dict[str, dict[bytes, bytes]]:
        """The key-value footers of local segment files, read in one DuckDB call (pyarrow, ~0.3 s
        of CPU at import, is then not needed to answer ``logs stats``); empty for a bucket, or when
        any file fails to read (each is then read on its own, as before, to name the bad one).  ``con``:
        a DuckDB connection to use (opening one costs ~40 ms)."""
        if self.remote or not paths:
            return {}
        import duckdb

        out: dict[str, dict[bytes, bytes]] = {p: {} for p in paths}
        own = con is None
        try:
            con = duckdb.connect(":memory:") if own else con
            try:
                rows = con.execute("SELECT file_name, key, value FROM parquet_kv_metadata(?)", [paths]).fetchall()
            finally:
                if own:
                    con.close()
        except duckdb.Error:
            return {}
        for name, key, value in rows:
            if name in out:
                out[name][bytes(key)] = bytes(value)
        return out

    def _wal(self) -> tuple[Any, Any]:
        """The write-ahead rows of both streams (read before the segments are listed)."""
        from modelsteward.storage.logrows import FEEDBACK_COLUMNS, LOG_COLUMNS
        from modelsteward.storage.segments import _schema
        from modelsteward.storage.wal import WalRows, read_wal

        if self.wal_dir is None:
            return WalRows("requests", []), WalRows("feedback", [])

        def int_ts():  # type: ignore[no-untyped-def]
            import pyarrow as pa

            return pa.int64()

        # the schemas as factories: an empty write-ahead folder is read without importing pyarrow
        req = read_wal(self.wal_dir, "requests",
                       lambda: _schema({**LOG_COLUMNS, "use_case": "string"}, ts_type=int_ts()))
        fb = read_wal(self.wal_dir, "feedback", lambda: _schema(FEEDBACK_COLUMNS, ts_type=int_ts()))
        return req, fb

    # ------------------------------------------------------------------ connections
    def connect(self, *, lock_down: bool = True, spill_dir: Path | None = None):  # type: ignore[no-untyped-def]
        """An in-memory DuckDB with views ``raw_logs``, ``feedback_events`` and ``logs``.

        ``spill_dir`` (bulk work: dataset builds) lifts the ad-hoc memory limit to ``build_memory()``
        and lets DuckDB spill to that folder instead of failing with an out-of-memory error."""
        con = self._open(lock_down)[0]
        if spill_dir is not None:
            Path(spill_dir).mkdir(parents=True, exist_ok=True)
            con.execute(f"SET memory_limit='{_esc(build_memory())}'")
            con.execute(f"SET temp_directory='{_esc(str(spill_dir))}'")
            con.execute("SET preserve_insertion_order=false")
        return con

    def _open(self, lock_down: bool) -> tuple[Any, list[str], bool, bool]:
        return _retry_vanished(lambda: self._open_once(lock_down))

    def _open_once(self, lock_down: bool) -> tuple[Any, list[str], bool, bool]:
        """``connect``, plus the request files it reads and whether any feedback event exists.

        The connection also has ``wal_requests`` (the write-ahead rows not yet in a segment) when
        there are any; ``self.relation(con, files)`` names a relation over some request files.
        """
        import duckdb

        con = duckdb.connect(":memory:")
        try:
            return self._build(con, lock_down)
        except BaseException:
            con.close()
            raise

    def _build(self, con: Any, lock_down: bool) -> tuple[Any, list[str], bool, bool]:
        con.execute("SET threads TO 2")
        con.execute(f"SET memory_limit='{_esc(query_memory())}'")
        con.execute("SET temp_directory=''")  # nothing spills to disk: over the limit is an error
        wal_req, wal_fb = self._wal()  # first: see storage/wal.py for why the order matters
        seen_req: set[tuple[str, str]] = set()
        seen_fb: set[tuple[str, str]] = set()
        req = self._files("requests", seen_req, con)
        fb = self._files("feedback", seen_fb, con)
        wreq = wal_req.table(seen_req)
        wfb = wal_fb.table(seen_fb)
        if wreq is not None:
            con.register("wal_requests", wreq)
        sources = ([f"SELECT * FROM {self.relation(con, req)}"] if req else []) + \
            (["SELECT * FROM wal_requests"] if wreq is not None else [])
        con.execute(f"CREATE VIEW raw_logs AS {' UNION ALL BY NAME '.join(sources) if sources else _EMPTY_LOGS}")
        fsrc = []
        if fb:
            fsrc.append(f"SELECT ts, request_id, score, comment FROM {self.relation(con, fb, 'feedback')}")
        if wfb is not None:
            con.register("wal_feedback", wfb)
            fsrc.append("SELECT ts, request_id, score, comment FROM wal_feedback")
        con.execute(f"CREATE VIEW feedback_events AS {' UNION ALL '.join(fsrc) if fsrc else _EMPTY_FEEDBACK}")
        con.execute(
            "CREATE VIEW latest_feedback AS SELECT request_id, arg_max(score, ts) AS score FROM feedback_events "
            "GROUP BY request_id"
        )
        con.execute(
            f"CREATE VIEW logs AS SELECT {_log_cols(con)} FROM raw_logs r LEFT JOIN latest_feedback f "
            "ON r.request_id = f.request_id AND r.role <> 'shadow'"
        )
        if lock_down:
            if not self.remote:
                root = str(Path(self.root).resolve())
                con.execute(f"SET allowed_directories=['{_esc(root)}/']")
            con.execute("SET enable_external_access=false")
            con.execute("SET lock_configuration=true")
        return con, req, bool(fb) or wfb is not None, wreq is not None

    def relation(self, con: Any, files: list[str], sub: str = "requests") -> str:
        """SQL naming a relation over ``files``: ``read_parquet`` for a folder, a registered pyarrow
        dataset for a bucket (DuckDB scans it with projection and filter pushdown)."""
        if not self.remote:
            return _scan(files) if sub == "requests" else f"read_parquet({_sql_list(files)})"
        name = f"seg_{sub}_{uuid.uuid4().hex[:8]}"
        parts = ["date", "use_case"] if sub == "requests" else ["date"]
        con.register(name, self.objects.dataset(files, sub, parts, schema=_dataset_schema(sub)))
        return name

    def query(self, sql: str, params: list[Any] | None = None, *, limit: int | None = None) -> list[dict[str, Any]]:
        """One read-only SELECT (or WITH ... SELECT) over ``logs``; rows as dicts."""
        check_read_only(sql)
        return _retry_vanished(lambda: self._query_once(sql, params, limit))

    def _query_once(self, sql: str, params: list[Any] | None, limit: int | None) -> list[dict[str, Any]]:
        import duckdb

        timeout = query_timeout()
        con = self.connect()
        timer = threading.Timer(timeout, con.interrupt)
        timer.daemon = True
        timer.start()
        try:
            try:
                cur = con.execute(sql, params or [])
                cols = [d[0] for d in cur.description or []]
                rows = cur.fetchmany(limit) if limit else cur.fetchall()
            except duckdb.InterruptException as exc:
                raise InvalidInput(f"Query stopped after {timeout:g}s (STEWARD_QUERY_TIMEOUT_S); narrow it "
                                   "(a WHERE on ts or use_case, fewer joins) or raise the limit.") from exc
            except duckdb.OutOfMemoryException as exc:
                raise InvalidInput(f"Query needs more than {query_memory()} of memory (STEWARD_QUERY_MEMORY); "
                                   "narrow it or raise the limit.") from exc
            except duckdb.CatalogException as exc:
                raise InvalidInput(_catalog_error(exc)) from exc
            except duckdb.Error as exc:
                raise InvalidInput(f"Query failed: {exc}") from exc
            return [dict(zip(cols, r, strict=True)) for r in rows]
        finally:
            timer.cancel()
            con.close()

    def stats(self, *, use_case: str | None = None, since: str | dt.timedelta | None = "7d") -> list[dict[str, Any]]:
        """See ``_stats_once``; retried when a compaction removed a segment while it was read."""
        return _retry_vanished(lambda: self._stats_once(use_case=use_case, since=since))

    def _stats_once(self, *, use_case: str | None = None,
                    since: str | dt.timedelta | None = "7d") -> list[dict[str, Any]]:
        """Per (use case, model, role): counts, error rate, p50/p95 latency, tokens, cost, feedback.

        Segments written by this store carry a rollup in their footer (``with_rollup``): counts,
        sums and first/last ``ts`` per (model, role).  A file wholly inside the window contributes
        its rollup, and only its ``latency_ms``/``status`` columns are scanned (for the quantiles,
        which do not merge); files that straddle the cut-off, or have no rollup (written by
        something else), are aggregated in full.  Everything is exact: rollups are sums of
        immutable files.  Then -- only when feedback events exist -- a join pass corrects the
        feedback sums: an event replaces the request's inline feedback, as in the ``logs`` view.
        The join over every request id costs as much as the aggregate itself, so a store without
        feedback events does not pay for it.
        """
        cutoff = window_start(since)
        filters = [(col, op, v) for col, op, v in (("ts", ">=", cutoff), ("use_case", "=", use_case or None))
                   if v is not None]
        params = [v for _, _, v in filters]

        def where(alias: str = "") -> str:
            return ("WHERE " + " AND ".join(f"{alias}{col} {op} ?" for col, op, _ in filters)) if filters else ""

        con, req, has_feedback, has_wal = self._open(lock_down=True)
        try:
            rolled, scan = self._split_by_rollup(req, use_case, cutoff)
            scan_src = None
            if scan or has_wal:
                parts = ([f"SELECT * FROM {self.relation(con, scan)}"] if scan else []) + \
                    (["SELECT * FROM wal_requests"] if has_wal else [])
                scan_src = f"({' UNION ALL BY NAME '.join(parts)})"
            acc: dict[tuple[str, str, str], list[Any]] = {}
            for _, uc, groups in rolled:
                for mid, role, n, errors, tin, tout, cost, fb_sum, fb_n, first, last in groups:
                    _merge(acc, (uc, mid, role), [n, errors, tin, tout, cost, fb_sum, fb_n, _us(first), _us(last)])
            sums = """count(*), count(*) FILTER (WHERE status = 'error'), sum(input_tokens), sum(output_tokens),
                      sum(cost_usd), sum(feedback), count(feedback), min(ts), max(ts)"""
            quantiles: dict[tuple[str, str, str], Any] = {}
            q = "quantile_cont(latency_ms, [0.5, 0.95]) FILTER (WHERE status = 'ok')"
            if not rolled:  # one pass over everything
                for uc, mid, role, qs, *vals in con.execute(
                        f"SELECT use_case, model_id, role, {q}, {sums} FROM raw_logs {where()} GROUP BY ALL",
                        params).fetchall():
                    quantiles[(uc, mid, role)] = qs
                    _merge(acc, (uc, mid, role), vals)
            else:
                if scan_src:
                    for uc, mid, role, *vals in con.execute(
                            f"SELECT use_case, model_id, role, {sums} FROM {scan_src} {where()} GROUP BY ALL",
                            params).fetchall():
                        _merge(acc, (uc, mid, role), vals)
                cols = "use_case, model_id, role, latency_ms, status"
                union = f"SELECT {cols} FROM {self.relation(con, [f for f, _, _ in rolled])}"
                if scan_src:
                    union += f" UNION ALL SELECT {cols} FROM {scan_src} {where()}"
                for uc, mid, role, qs in con.execute(
                        f"SELECT use_case, model_id, role, {q} FROM ({union}) GROUP BY ALL",
                        params if scan_src else []).fetchall():
                    quantiles[(uc, mid, role)] = qs
            fix: dict[tuple[str, str, str], tuple[float, int]] = {}
            if acc and has_feedback:
                for uc, mid, role, dsum, dn in con.execute(f"""
                    SELECT r.use_case, r.model_id, r.role,
                           sum(f.score) - coalesce(sum(r.feedback), 0), count(*) - count(r.feedback)
                    FROM raw_logs r JOIN latest_feedback f ON r.request_id = f.request_id AND r.role <> 'shadow'
                    {where("r.")} GROUP BY ALL""", params).fetchall():
                    fix[(uc, mid, role)] = (float(dsum or 0.0), int(dn))
        finally:
            con.close()
        out = []
        for (uc, mid, role), (n, errors, tin, tout, cost, fb_sum, fb_n, first, last) in acc.items():
            dsum, dn = fix.get((uc, mid, role), (0.0, 0))
            fsum, fn = float(fb_sum or 0.0) + dsum, int(fb_n) + dn
            qs = quantiles.get((uc, mid, role))
            out.append({
                "use_case": uc, "model_id": mid, "role": role, "count": n, "errors": errors,
                "error_rate": errors / n if n else 0.0,
                "p50_ms": qs[0] if qs else None, "p95_ms": qs[1] if qs else None,
                "input_tokens": tin or 0, "output_tokens": tout or 0, "cost_usd": cost or 0,
                "mean_feedback": fsum / fn if fn else None, "feedback_count": fn,
                "first_ts": first, "last_ts": last,
            })
        out.sort(key=lambda r: (r["use_case"] or "", r["role"] or "", r["model_id"] or ""))
        return out

    def _split_by_rollup(self, files: list[str], use_case: str | None, cutoff: dt.datetime | None,
                         ) -> tuple[list[tuple[str, str, list[list[Any]]]], list[str]]:
        """([(file, use case, rollup)] for files wholly inside the window; the files to scan in full)."""
        cut_us = None if cutoff is None else (cutoff - _EPOCH) // dt.timedelta(microseconds=1)
        rolled: list[tuple[str, str, list[list[Any]]]] = []
        scan: list[str] = []
        for f in files:
            folder = Path(f).parent.name
            uc = folder.split("=", 1)[1] if folder.startswith("use_case=") else None
            if use_case and uc is not None and uc != use_case:
                continue
            groups = self._rollups.get(f)
            if uc is not None and groups is not None and (
                    cut_us is None or min((g[9] for g in groups), default=cut_us) >= cut_us):
                rolled.append((f, uc, groups))
            else:
                scan.append(f)
        return rolled, scan


_ALLOWED_TYPES = ("SELECT",)


LOGS_VIEW_COLUMNS = ("ts, request_id, use_case, model_id, role, messages, response, input_tokens, output_tokens, "
                     "latency_ms, cost_usd, status, error, feedback, metadata, request, answer, origin")
_NO_TABLE = re.compile(r'Table with name "?([^"!\s]+)"? does not exist')


def _catalog_error(exc: Exception) -> str:
    """An unknown table points to the ``logs`` view and its columns, not to DuckDB's own catalog
    ("Did you mean pg_sequences?"); other catalog errors keep DuckDB's message."""
    text = str(exc)
    m = _NO_TABLE.search(text)
    if m:
        return (f"Query failed: there is no table {m.group(1)!r}; the request logs are the view `logs` "
                f"(columns: {LOGS_VIEW_COLUMNS}), e.g. SELECT model_id, count(*) FROM logs GROUP BY model_id.")
    return f"Query failed: {text}"


def check_read_only(sql: str) -> None:
    """Refuse anything but a single SELECT (INSERT, UPDATE, DELETE, COPY, ATTACH, SET, PRAGMA ...)."""
    import duckdb

    try:
        stmts = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise InvalidInput(f"Could not parse the query: {exc}") from exc
    if len(stmts) != 1:
        raise ReadOnlyViolation(f"Give exactly one SELECT statement (got {len(stmts)}).")
    kind = str(stmts[0].type).rsplit(".", 1)[-1]
    if kind not in _ALLOWED_TYPES:
        raise ReadOnlyViolation(f"Only read-only SELECT queries are allowed over the logs; refused a {kind} statement.")


_EPOCH = dt.datetime(1970, 1, 1)


def _us(value: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=value)


def _merge(acc: dict[tuple[str, str, str], list[Any]], key: tuple[str, str, str], vals: list[Any]) -> None:
    """Add one partial aggregate (count, errors, tokens in/out, cost, fb sum, fb count, first, last)."""
    cur = acc.get(key)
    if cur is None:
        acc[key] = list(vals)
        return
    for i in range(7):
        if vals[i] is not None:
            cur[i] = vals[i] if cur[i] is None else cur[i] + vals[i]
    cur[7] = vals[7] if cur[7] is None or (vals[7] is not None and vals[7] < cur[7]) else cur[7]
    cur[8] = vals[8] if cur[8] is None or (vals[8] is not None and vals[8] > cur[8]) else cur[8]


def _read_rollup(raw: bytes | None) -> list[list[Any]] | None:
    """The footer's rollup groups, or None when absent or of another version."""
    if not raw:
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("v") != 1 or tuple(data.get("fields", ())) != ROLLUP_FIELDS:
        return None
    return data["groups"]


_VANISHED = ("No files found that match", "No such file", "NoSuchKey", "NOT_FOUND", "Path does not exist")


def _retry_vanished(fn: Any, attempts: int = 5) -> Any:
    """``fn()``, again when a segment listed a moment ago was removed (merged by a compaction, or a
    write-ahead file sealed) before DuckDB opened it: the next listing no longer names it."""
    for i in range(attempts):
        try:
            return fn()
        except Exception as exc:
            chain = f"{exc} {exc.__cause__ or ''}"
            if i == attempts - 1 or not any(v in chain for v in _VANISHED):
                raise
            log.debug("log segment vanished while reading (%s); reading again", exc)
    raise AssertionError("unreachable")


def _partition(parent: str) -> str:
    """``.../requests/date=D/use_case=U`` -> ``date=D/use_case=U`` (``date=D`` for feedback)."""
    tail = parent.rsplit("/", 2)
    return "/".join(t for t in tail[-2:] if "=" in t)


def _dataset_schema(sub: str):  # type: ignore[no-untyped-def]
    import pyarrow as pa

    from modelsteward.storage.logrows import FEEDBACK_COLUMNS, LOG_COLUMNS
    from modelsteward.storage.segments import _schema

    cols = LOG_COLUMNS if sub == "requests" else FEEDBACK_COLUMNS
    base = _schema(cols)
    parts = ["date", "use_case"] if sub == "requests" else ["date"]
    return pa.schema(list(base) + [pa.field(p, pa.string()) for p in parts])


def _scan(paths: list[str]) -> str:
    return (f"read_parquet({_sql_list(paths)}, hive_partitioning=true, hive_types_autocast=false, "
            "union_by_name=true)")


def _sql_list(paths: list[str]) -> str:
    return "[" + ", ".join(f"'{_esc(p)}'" for p in paths) + "]"


def _esc(s: str) -> str:
    return s.replace("'", "''")
