"""Import request logs a team already has: our own rows, OpenTelemetry GenAI traces (OTLP/JSON),
Langfuse observations, LiteLLM spend logs, OpenAI Batch input + output files.

``import_file`` streams the file (JSON lines, one JSON document, or Parquet for our own rows) in two
passes, so a bad record anywhere leaves the store untouched:

1. read and convert every record, validate each row (``normalise_row``), check its use case, drop
   ``request_id``s already in the store (one query per batch of rows) or repeated in the file, and
   spool the surviving rows to a temporary file;
2. only when the whole file passed: append the spooled rows (``LogStore.append_many``) and flush.

Every row is written in the canonical shape (``modelsteward/exchange.py``): messages with the
assistant's ``tool_calls`` and the tool turns' ``tool_call_id``, the request's tools / tool choice /
response format / sampling parameters where the source has them, the whole answer (text, tool
calls, finish reason), and ``origin`` ``import:<format>``.  Messages and request are checked like
any file input (``exchange.check_messages`` / ``check_request``: tool-call arguments that are not
JSON, a response format whose schema is not a JSON Schema are refused, naming the line); an answer
is kept as the source logged it (a model's broken arguments are the scorers' business, as in the
gateway's log).

Each row's ``request_id`` comes from the source's id (``otel:<spanId>``, ``langfuse:<id>``,
``litellm:<request_id>``, ``openai-batch:<batch_req id>``, our own ``request_id``), so importing a
file again adds nothing, and an import killed during step 2 is finished by running it again.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, Field

from modelsteward.errors import InvalidInput, NotFound
from modelsteward.exchange import check_messages, check_request, loads_json
from modelsteward.storage.importers import langfuse, litellm, openai_batch, otel, otlp_proto, steward
from modelsteward.storage.importers.base import RecordError, Skip
from modelsteward.storage.logrows import ts_us

__all__ = ["FORMATS", "ImportReport", "import_file", "detect"]

# detection order: the most specific shapes first (a steward row is any object with request_id + model_id)
MODULES = {m.NAME: m for m in (otel, openai_batch, langfuse, litellm, steward)}
FORMATS = ("steward", "otel", "langfuse", "litellm", "openai-batch")
BATCH_ROWS = 50_000


class ImportReport(BaseModel):
    """What one ``logs import`` did (the ``--json`` shape)."""

    path: str
    output_file: str | None = Field(None, description="openai-batch: the output file joined on custom_id")
    format: str = Field(description="the format read (detected when --format auto)")
    read: int = Field(description="source items read: rows, spans, observations, or batch output lines and "
                                  "requests without output; "
                                  "read = rows + duplicates + sum(skipped)")
    rows: int = Field(description="rows appended to the log store now")
    duplicates: int = Field(description="rows whose request_id was already in the store or earlier in the file")
    skipped: dict[str, int] = Field(description="items left out, by reason: not_a_chat_span, no_content (a chat "
                                                "span whose prompt and answer were not captured), no_model, "
                                                "langfuse_<type>, litellm_<call type>, no_input, no_output, "
                                                "endpoint_<url>")
    use_cases: dict[str, int] = Field(description="appended rows per use case")
    models: dict[str, int] = Field(description="appended rows per model id")
    unknown_models: list[str] = Field(description="model ids of appended rows that the registry does not know")
    seconds: float
    origin: str | None = Field(None, description="the origin the appended rows carry: import:<format> (kept out "
                                                 "of training targets, references and rollout/guardrail "
                                                 "evidence), or import-evidence:<format> with --as-evidence")
    feedback_dropped: int = Field(0, description="rows whose feedback was dropped (kept only with --keep-feedback)")


def detect(record: Any) -> str | None:
    for name, mod in MODULES.items():
        if mod.sniff(record):
            return name
    return None


MAX_DEPTH = 64  # JSON nesting of one source record (OTLP documents nest about 12 deep)
MAX_CLOCK_SKEW_S = 300.0  # a row may be this far in the future (clock skew), no further


def max_row_bytes() -> int:
    """Text one imported row may carry: ``STEWARD_MAX_REQUEST_BYTES`` (default 1 MB, the gateway's body cap)."""
    raw = os.environ.get("STEWARD_MAX_REQUEST_BYTES", "").strip()
    try:
        return int(raw) if raw else 1_048_576
    except ValueError:
        raise InvalidInput(f"STEWARD_MAX_REQUEST_BYTES={raw!r} must be a number of bytes.") from None


def nesting_depth(value: Any, limit: int) -> int:
    """Nesting depth of a parsed JSON value, counted without recursion; stops once past ``limit``."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            v = v.values()
        elif not isinstance(v, list):
            continue
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        stack.extend((c, d + 1) for c in v if isinstance(c, (dict, list)))
    return deepest


def _describe(record: Any) -> str:
    if openai_batch.sniff_output(record):
        return "an OpenAI Batch output line (give the batch input file as FILE and this one as --output-file)"
    name = detect(record)
    if name is None:
        return "a record of no known format"
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name} record"


def _iter_json(path: Path, counter: list[int]) -> Iterator[tuple[str, Any]]:
    """(location, record) of a JSON-lines file or of one JSON document; counter[0] = bytes read."""
    with open(path, "rb") as fh:
        first = fh.readline()
        stripped = first.strip()
        one_doc = False
        if stripped[:1] in (b"{", b"["):
            try:
                orjson.loads(stripped)
            except orjson.JSONDecodeError:
                one_doc = True  # a pretty-printed document spans several lines
        if one_doc:
            data = first + fh.read()
            counter[0] = len(data)
            try:
                doc = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                raise InvalidInput(f"{path}: malformed JSON ({exc}). Nothing was imported.") from None
            del data
            items = doc.get("data") if isinstance(doc, dict) and isinstance(doc.get("data"), list) else doc
            if isinstance(items, list):
                for i, rec in enumerate(items, 1):
                    yield f"record {i}", rec
            else:
                yield "record 1", items
            return
        n = 0
        line = first
        while line:
            n += 1
            counter[0] += len(line)
            if line.strip():
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise InvalidInput(f"{path}: line {n}: malformed JSON ({exc}). Nothing was imported.") from None
                if isinstance(obj, dict) and isinstance(obj.get("data"), list) and "resourceSpans" not in obj:
                    for i, rec in enumerate(obj["data"], 1):
                        yield f"line {n} item {i}", rec
                elif isinstance(obj, list):
                    for i, rec in enumerate(obj, 1):
                        yield f"line {n} item {i}", rec
                else:
                    yield f"line {n}", obj
            line = fh.readline()


def _iter_parquet(path: Path, counter: list[int]) -> Iterator[tuple[str, Any]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        n = 0
        size = max(1, pf.metadata.num_rows)
        total = path.stat().st_size
        for batch in pf.iter_batches(batch_size=10_000):
            for r in batch.to_pylist():
                n += 1
                yield f"row {n}", r
            counter[0] = total * n // size
    except (OSError, ValueError) as exc:  # pyarrow's errors subclass these
        raise InvalidInput(f"{path}: not a readable Parquet file ({exc}). Nothing was imported.") from None


def _check_path(path: Path, what: str) -> None:
    if not path.exists():
        raise NotFound(f"No such file: {path} ({what}).")
    if path.is_dir():
        raise InvalidInput(f"{path} is a directory; {what} must be a file.")


@dataclass
class _Source:
    """The record stream of one import, once its format is known."""

    path: Path
    src: Path  # the file the rows come from (the batch output file for openai-batch)
    fmt: str
    found: str | None  # the format of the first record
    records: Iterator[tuple[str, Any]]
    first: tuple[str, Any]
    counter: list[int]  # bytes read so far
    size: int
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)  # openai-batch: input lines by custom_id


def _open_source(path: Path, fmt: str, output_file: Path | None) -> _Source:
    """Check the paths, read the first record and settle the format (given, or that of the first record)."""
    if fmt != "auto" and fmt not in MODULES:
        raise InvalidInput(f"Unknown format {fmt!r}; use one of auto, {', '.join(FORMATS)}.")
    _check_path(path, "FILE")
    if output_file is not None:
        _check_path(output_file, "--output-file")
    parquet = path.suffix.lower() == ".parquet"
    if parquet and fmt not in ("auto", "steward"):
        raise InvalidInput(f"{path}: Parquet files are read as steward rows only, not {fmt}.")
    counter = [0]
    proto = not parquet and otlp_proto.is_binary(path)
    if proto and fmt not in ("auto", "otel"):
        raise InvalidInput(f"{path}: an OTLP protobuf file is read as otel only, not {fmt}.")
    records = (_iter_parquet(path, counter) if parquet else otlp_proto.iter_proto(path, counter) if proto
               else _iter_json(path, counter))
    first = next(records, None)
    if first is None:
        raise InvalidInput(f"{path}: no rows to import (the file is empty).")
    loc, rec = first
    found = "steward" if parquet else detect(rec)
    if fmt == "auto":
        if found is None:
            raise InvalidInput(f"{path}: {loc}: {_describe(rec)}; the formats read are {', '.join(FORMATS)} "
                               "(see README, 'Importing logs'). Nothing was imported.")
        fmt = found
    if fmt != "openai-batch":
        if output_file is not None:
            raise InvalidInput(f"--output-file is for --format openai-batch only ({path} is {fmt}).")
        return _Source(path, path, fmt, found, records, first, counter, max(1, path.stat().st_size))
    if output_file is None:
        raise InvalidInput(f"{path} is an OpenAI Batch input file: give its output file with --output-file FILE.")
    requests = _read_batch_inputs(path, loc, rec, records)
    counter = [0]
    out_records = _iter_json(output_file, counter)
    nxt = next(out_records, None)
    if nxt is None:
        raise InvalidInput(f"{output_file}: the batch output file is empty. Nothing was imported.")
    return _Source(path, output_file, fmt, found, out_records, nxt, counter, max(1, output_file.stat().st_size),
                   requests)


class _FirstPass:
    """Pass 1: convert and validate every record, drop ids already stored or repeated, spool the rest."""

    def __init__(self, store: Any, source: _Source, spool: Any, *, use_case: str | None,
                 check_use_case: Callable[[str], None], known_model: Callable[[str], bool],
                 progress: Callable[[str, float], None] | None, keep_feedback: bool = False,
                 as_evidence: bool = False, spill_dir: Path | None = None) -> None:
        self.store, self.source, self.spool, self.spill_dir = store, source, spool, spill_dir
        self.use_case, self.check_use_case, self.known_model, self.progress = (
            use_case, check_use_case, known_model, progress)
        self.skipped: Counter[str] = Counter()
        self.use_cases: Counter[str] = Counter()
        self.models: Counter[str] = Counter()
        self.unknown: set[str] = set()
        self.known_uc: set[str] = set()
        self.model_known: dict[str, bool] = {}
        self.seen: set[str] = set()
        self.duplicates = self.read = self.spooled = 0
        self.batch: list[dict[str, Any]] = []
        self.origin = f"{'import-evidence' if as_evidence else 'import'}:{source.fmt}"
        self.keep_feedback, self.feedback_dropped = keep_feedback, 0
        self.max_bytes = max_row_bytes()
        self.latest_us = ts_us(None) + int(MAX_CLOCK_SKEW_S * 1e6)
        mod = MODULES[source.fmt]
        self.reader = mod.Reader() if hasattr(mod, "Reader") else None  # formats that join records
        self.checked: dict[bytes, None] = {}  # request parts already checked (most rows share their tools)

    def report(self, msg: str, frac: float) -> None:
        if self.progress is not None:
            self.progress(msg, min(1.0, frac))

    def run(self) -> None:
        src = self.source
        mod = MODULES[src.fmt]
        last = 0
        loc, rec = src.first
        while True:
            self._convert(mod, loc, rec)
            if len(self.batch) >= BATCH_ROWS:
                self.drain()
            elif self.progress is not None and src.counter[0] - last > (1 << 22):
                last = src.counter[0]
                self.report(f"read {self.read:,} items from {src.src.name}", 0.9 * src.counter[0] / src.size)
            nxt = next(src.records, None)
            if nxt is None:
                break
            loc, rec = nxt
        if self.reader is not None:
            self._take(self.reader.finish(), "end of file")
        self.drain()
        if src.fmt == "openai-batch" and src.requests:  # requests are items too: read = rows + duplicates + skipped
            self.skipped["no_output"] += len(src.requests)
            self.read += len(src.requests)

    def _rows_of(self, mod: Any, loc: str, rec: Any) -> Iterator[Any]:
        src = self.source
        it: Iterator[Any] | None
        if src.fmt == "openai-batch":
            it = openai_batch.rows(rec, src.requests) if isinstance(rec, dict) else None
        elif self.reader is not None:
            it = self.reader.rows(rec) if mod.sniff(rec) else None
        else:
            it = mod.rows(rec) if mod.sniff(rec) else None
        if it is None:
            fmt = src.fmt
            if src.found == fmt and loc != src.first[0]:
                hint = f"a file must hold one format ({src.first[0]} is {fmt})"
            else:
                hint = "check --format (auto recognises the format)"
            raise InvalidInput(f"{src.src}: {loc}: expected {'an' if fmt[0] in 'aeiou' else 'a'} {fmt} record, "
                               f"found {_describe(rec)}; {hint}. Nothing was imported.")
        return it

    def _convert(self, mod: Any, loc: str, rec: Any) -> None:
        depth = nesting_depth(rec, MAX_DEPTH)
        if depth > MAX_DEPTH:
            raise InvalidInput(f"{self.source.src}: {loc}: nested more than {MAX_DEPTH} levels deep; no log format "
                               "nests that far. Nothing was imported.")
        self._take(self._rows_of(mod, loc, rec), loc)

    def _take(self, it: Iterator[Any], loc: str) -> None:
        src = self.source
        try:
            for r in it:
                self.read += 1
                if isinstance(r, Skip):
                    self.skipped[r.reason] += 1
                else:
                    self._accept(r)
        except (RecordError, InvalidInput, NotFound) as exc:
            raise type(exc)(f"{src.src}: {loc}: {exc.message.rstrip('.')}. Nothing was imported.") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInput(f"{src.src}: {loc}: malformed {src.fmt} record ({type(exc).__name__}: {exc}). "
                               "Nothing was imported.") from None

    def _accept(self, r: dict[str, Any]) -> None:
        from modelsteward.storage.logstore import normalise_row

        if not r.get("use_case"):
            if not self.use_case:
                raise RecordError(f"{r.get('request_id') or 'the row'} names no use case; give --use-case NAME.")
            r["use_case"] = self.use_case
        elif self.use_case and r["use_case"] != self.use_case:  # --use-case bounds where a file may write
            raise RecordError(f"{r.get('request_id') or 'the row'} names use case {r['use_case']!r}, but this import "
                              f"is bounded to --use-case {self.use_case}; import each use case's rows on their own")
        if r.get("feedback") is not None and not self.keep_feedback:
            r["feedback"] = None  # another system's ratings are not this application's users' (--keep-feedback)
            self.feedback_dropped += 1
        uc = r["use_case"]
        if uc not in self.known_uc:
            self.check_use_case(str(uc))
            self.known_uc.add(uc)
        self._check_exchange(r)
        row = normalise_row(r)
        if row["ts"] > self.latest_us:
            raise RecordError(f"{row['request_id']}: its time {row['ts'] // 1_000_000} (epoch s) lies in the future; "
                              "fix the source's clock or timestamps")
        size = sum(len(row[k]) for k in ("messages", "response", "request", "answer", "metadata", "error")
                   if isinstance(row.get(k), str))
        if size > self.max_bytes:
            raise RecordError(f"{row['request_id']}: {size:,} bytes of text, over the {self.max_bytes:,} a request may "
                              "carry (STEWARD_MAX_REQUEST_BYTES)")
        rid = row["request_id"]
        if rid in self.seen:
            self.duplicates += 1
            return
        self.seen.add(rid)
        mid = row["model_id"]
        if mid not in self.model_known:
            self.model_known[mid] = self.known_model(mid)
            if not self.model_known[mid]:
                self.unknown.add(mid)
        self.batch.append(row)

    def _check_exchange(self, r: dict[str, Any]) -> None:
        """Messages and request in the canonical shape, checked; the row marked as imported."""
        where = str(r.get("request_id") or "the row")
        msgs = loads_json(r.get("messages")) if isinstance(r.get("messages"), str) else r.get("messages")
        if msgs is not None:
            r["messages"] = check_messages(msgs, where)
        req = r.get("request")
        if req is not None:
            key = req.encode() if isinstance(req, str) else orjson.dumps(req)
            if key not in self.checked:
                check_request(loads_json(req) if isinstance(req, str) else req, where)
                if len(self.checked) < 4096:
                    self.checked[key] = None
        origin = r.get("origin")
        r["origin"] = self.origin

    def _stored(self, ids: list[str]) -> set[str]:
        """The ids already in the store: bulk work, so with ``spill_dir`` it runs on a connection that
        may spill there (issue 28) rather than under the ad-hoc query's memory limit and timeout."""
        sql = "SELECT request_id FROM logs WHERE request_id IN (SELECT unnest(?::VARCHAR[]))"
        if self.spill_dir is None:
            return {r["request_id"] for r in self.store.query(sql, [ids])}
        con = self.store.reader.connect(lock_down=False, spill_dir=self.spill_dir)
        try:
            return {rid for (rid,) in con.execute(sql, [ids]).fetchall()}
        finally:
            con.close()

    def drain(self) -> None:
        """Drop the batch's ids already in the store; spool the rest."""
        if not self.batch:
            return
        existing = self._stored([r["request_id"] for r in self.batch])
        out = []
        for r in self.batch:
            if r["request_id"] in existing:
                self.duplicates += 1
                continue
            out.append(orjson.dumps(r))
            self.use_cases[r["use_case"]] += 1
            self.models[r["model_id"]] += 1
        if out:
            self.spool.write(b"\n".join(out) + b"\n")
            self.spooled += len(out)
        self.batch.clear()
        src = self.source
        self.report(f"read {self.read:,} items from {src.src.name}", 0.9 * src.counter[0] / src.size)


def _append_spooled(store: Any, spool: Any, first: _FirstPass) -> int:
    """Pass 2 (the whole file passed): append the spooled rows in batches, then flush."""
    spool.seek(0)
    done = 0
    chunk: list[dict[str, Any]] = []
    for line in spool:
        chunk.append(orjson.loads(line))
        if len(chunk) >= BATCH_ROWS:
            store.append_many(chunk)
            done += len(chunk)
            chunk = []
            first.report(f"appended {done:,} of {first.spooled:,} rows", 0.9 + 0.1 * done / max(1, first.spooled))
    if chunk:
        store.append_many(chunk)
        done += len(chunk)
    if done:
        store.flush()
    first.report(f"imported {done:,} rows", 1.0)
    return done


def import_file(
    store: Any,
    path: Path,
    *,
    fmt: str = "auto",
    use_case: str | None = None,
    output_file: Path | None = None,
    check_use_case: Callable[[str], None] = lambda name: None,
    known_model: Callable[[str], bool] = lambda mid: True,
    progress: Callable[[str, float], None] | None = None,
    keep_feedback: bool = False,
    as_evidence: bool = False,
    spill_dir: Path | None = None,
) -> ImportReport:
    """Import one file into ``store`` (a ``LogStore``: only ``query``, ``append_many``, ``flush`` are used;
    with ``spill_dir``, ``reader.connect`` too: the duplicate check then runs as bulk work that may
    spill to that folder instead of under ``STEWARD_QUERY_MEMORY`` / ``STEWARD_QUERY_TIMEOUT_S``)."""
    t0 = time.perf_counter()
    source = _open_source(path, fmt, output_file)
    with tempfile.TemporaryFile(prefix="steward-import-") as spool:
        first = _FirstPass(store, source, spool, use_case=use_case, check_use_case=check_use_case,
                           known_model=known_model, progress=progress, keep_feedback=keep_feedback,
                           as_evidence=as_evidence, spill_dir=spill_dir)
        first.run()
        done = _append_spooled(store, spool, first)
    return ImportReport(
        path=str(path), output_file=str(output_file) if output_file else None, format=source.fmt, read=first.read,
        rows=done, duplicates=first.duplicates, skipped=dict(first.skipped), use_cases=dict(first.use_cases),
        models=dict(first.models), unknown_models=sorted(m for m in first.unknown if first.models.get(m)),
        seconds=round(time.perf_counter() - t0, 3), origin=first.origin, feedback_dropped=first.feedback_dropped)


def _read_batch_inputs(path: Path, loc: str, rec: Any, records: Iterator[tuple[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    while True:
        if not openai_batch.sniff(rec):
            raise InvalidInput(f"{path}: {loc}: expected an OpenAI Batch input line ({{custom_id, method, url, body}}), "
                               f"found {_describe(rec)}. Nothing was imported.")
        try:
            cid, req = openai_batch.request(rec)
        except RecordError as exc:
            raise InvalidInput(f"{path}: {loc}: {exc.message} Nothing was imported.") from None
        if cid in out:
            raise InvalidInput(f"{path}: {loc}: custom_id {cid!r} appears twice in the batch input. "
                               "Nothing was imported.")
        out[cid] = req
        nxt = next(records, None)
        if nxt is None:
            return out
        loc, rec = nxt

