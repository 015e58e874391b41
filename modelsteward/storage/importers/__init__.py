"""Import request logs a team already has: our own rows, OpenTelemetry GenAI traces (OTLP/JSON),
Langfuse observations, LiteLLM spend logs, OpenAI Batch input + output files.

``import_file`` streams the file (JSON lines, one JSON document, or Parquet for our own rows) in two
passes, so a bad record anywhere leaves the store untouched:

1. read and convert every record, validate each row (``normalise_row``), check its use case, drop
   ``request_id``s already in the store (one query per batch of rows) or repeated in the file, and
   spool the surviving rows to a temporary file;
2. only when the whole file passed: append the spooled rows (``LogStore.append_many``) and flush.

Each row's ``request_id`` comes from the source's id (``otel:<spanId>``, ``langfuse:<id>``,
``litellm:<request_id>``, ``openai-batch:<batch_req id>``, our own ``request_id``), so importing a
file again adds nothing, and an import killed during step 2 is finished by running it again.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, Field

from modelsteward.errors import InvalidInput, NotFound
from modelsteward.storage.importers import langfuse, litellm, openai_batch, otel, steward
from modelsteward.storage.importers.base import RecordError, Skip

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
    read: int = Field(description="source items read: rows, spans, observations or batch output lines")
    rows: int = Field(description="rows appended to the log store now")
    duplicates: int = Field(description="rows whose request_id was already in the store or earlier in the file")
    skipped: dict[str, int] = Field(description="items left out, by reason (not_a_chat_span, langfuse_span, ...)")
    use_cases: dict[str, int] = Field(description="appended rows per use case")
    models: dict[str, int] = Field(description="appended rows per model id")
    unknown_models: list[str] = Field(description="model ids of appended rows that the registry does not know")
    seconds: float


def detect(record: Any) -> str | None:
    for name, mod in MODULES.items():
        if mod.sniff(record):
            return name
    return None


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
) -> ImportReport:
    """Import one file into ``store`` (a ``LogStore``: only ``query``, ``append_many``, ``flush`` are used)."""
    t0 = time.perf_counter()
    if fmt != "auto" and fmt not in MODULES:
        raise InvalidInput(f"Unknown format {fmt!r}; use one of auto, {', '.join(FORMATS)}.")
    _check_path(path, "FILE")
    if output_file is not None:
        _check_path(output_file, "--output-file")
    parquet = path.suffix.lower() == ".parquet"
    if parquet and fmt not in ("auto", "steward"):
        raise InvalidInput(f"{path}: Parquet files are read as steward rows only, not {fmt}.")
    counter = [0]
    records = _iter_parquet(path, counter) if parquet else _iter_json(path, counter)
    size = max(1, path.stat().st_size)

    # the format: given, or that of the first record; every record must have it
    first = next(records, None)
    if first is None:
        raise InvalidInput(f"{path}: no rows to import (the file is empty).")
    loc: str | None
    rec: Any
    loc, rec = first
    first_loc = loc
    found = "steward" if parquet else detect(rec)
    if fmt == "auto":
        if found is None:
            raise InvalidInput(f"{path}: {loc}: {_describe(rec)}; the formats read are {', '.join(FORMATS)} "
                               "(see README, 'Importing logs'). Nothing was imported.")
        fmt = found
    mod = MODULES[fmt]

    requests: dict[str, dict[str, Any]] = {}
    if fmt == "openai-batch":
        if output_file is None:
            raise InvalidInput(f"{path} is an OpenAI Batch input file: give its output file with --output-file FILE.")
        requests = _read_batch_inputs(path, loc, rec, records)
        counter = [0]
        size = max(1, output_file.stat().st_size)
        records = _iter_json(output_file, counter)
        nxt = next(records, None)
        if nxt is None:
            raise InvalidInput(f"{output_file}: the batch output file is empty. Nothing was imported.")
        loc, rec = nxt
        first_loc = loc
        src = output_file
    else:
        if output_file is not None:
            raise InvalidInput(f"--output-file is for --format openai-batch only ({path} is {fmt}).")
        src = path

    skipped: Counter[str] = Counter()
    use_cases: Counter[str] = Counter()
    models: Counter[str] = Counter()
    unknown: set[str] = set()
    known_uc: set[str] = set()
    model_known: dict[str, bool] = {}
    seen: set[str] = set()
    duplicates = 0
    read = 0
    spooled = 0
    batch: list[dict[str, Any]] = []
    from modelsteward.storage.logstore import normalise_row

    def report(msg: str, frac: float) -> None:
        if progress is not None:
            progress(msg, min(1.0, frac))

    spool = tempfile.TemporaryFile(prefix="steward-import-")
    try:
        def drain() -> None:
            nonlocal duplicates, spooled
            if not batch:
                return
            ids = [r["request_id"] for r in batch]
            existing = {r["request_id"] for r in store.query(
                "SELECT request_id FROM logs WHERE request_id IN (SELECT unnest(?::VARCHAR[]))", [ids])}
            out = []
            for r in batch:
                if r["request_id"] in existing:
                    duplicates += 1
                    continue
                out.append(orjson.dumps(r))
                use_cases[r["use_case"]] += 1
                models[r["model_id"]] += 1
            if out:
                spool.write(b"\n".join(out) + b"\n")
                spooled += len(out)
            batch.clear()
            report(f"read {read:,} items from {src.name}", 0.9 * counter[0] / size)

        last = 0
        while rec is not None or loc is not None:
            if fmt == "openai-batch":
                it = openai_batch.rows(rec, requests) if isinstance(rec, dict) else None
            elif not mod.sniff(rec):
                it = None
            else:
                it = mod.rows(rec)
            if it is None:
                if found == fmt and loc != first_loc:
                    hint = f"a file must hold one format ({first_loc} is {fmt})"
                else:
                    hint = "check --format (auto recognises the format)"
                raise InvalidInput(f"{src}: {loc}: expected {'an' if fmt[0] in 'aeiou' else 'a'} {fmt} record, found {_describe(rec)}; {hint}. "
                                   "Nothing was imported.")
            try:
                for r in it:
                    read += 1
                    if isinstance(r, Skip):
                        skipped[r.reason] += 1
                        continue
                    if not r.get("use_case"):
                        if not use_case:
                            raise RecordError(f"{r.get('request_id') or 'the row'} names no use case; give --use-case NAME.")
                        r["use_case"] = use_case
                    uc = r["use_case"]
                    if uc not in known_uc:
                        check_use_case(str(uc))
                        known_uc.add(uc)
                    row = normalise_row(r)
                    rid = row["request_id"]
                    if rid in seen:
                        duplicates += 1
                        continue
                    seen.add(rid)
                    mid = row["model_id"]
                    if mid not in model_known:
                        model_known[mid] = known_model(mid)
                        if not model_known[mid]:
                            unknown.add(mid)
                    batch.append(row)
            except (RecordError, InvalidInput, NotFound) as exc:
                raise type(exc)(f"{src}: {loc}: {exc.message.rstrip('.')}. Nothing was imported.") from None
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise InvalidInput(f"{src}: {loc}: malformed {fmt} record ({type(exc).__name__}: {exc}). "
                                   "Nothing was imported.") from None
            if len(batch) >= BATCH_ROWS:
                drain()
            elif progress is not None and counter[0] - last > (1 << 22):
                last = counter[0]
                report(f"read {read:,} items from {src.name}", 0.9 * counter[0] / size)
            nxt = next(records, None)
            loc, rec = nxt if nxt is not None else (None, None)
        drain()
        if fmt == "openai-batch" and requests:
            skipped["no_output"] += len(requests)

        # pass 2: the whole file passed; append what is new
        spool.seek(0)
        done = 0
        chunk: list[dict[str, Any]] = []
        for line in spool:
            chunk.append(orjson.loads(line))
            if len(chunk) >= BATCH_ROWS:
                store.append_many(chunk)
                done += len(chunk)
                chunk = []
                report(f"appended {done:,} of {spooled:,} rows", 0.9 + 0.1 * done / max(1, spooled))
        if chunk:
            store.append_many(chunk)
            done += len(chunk)
        if done:
            store.flush()
        report(f"imported {done:,} rows", 1.0)
    finally:
        spool.close()
    return ImportReport(
        path=str(path), output_file=str(output_file) if output_file else None, format=fmt, read=read, rows=done,
        duplicates=duplicates, skipped=dict(skipped), use_cases=dict(use_cases), models=dict(models),
        unknown_models=sorted(m for m in unknown if models.get(m)), seconds=round(time.perf_counter() - t0, 3))


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

