"""Log tools: import rows, window statistics, read-only SQL over the ``logs`` view."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, Field

from modelsteward.errors import InvalidInput, NotFound
from modelsteward.tools.base import InputModel, ToolContext, tool

__all__ = ["LogsImportInput", "LogsImportResult", "LogsStatsInput", "LogsStats", "LogsQueryInput", "LogsQueryResult",
           "read_log_file"]


class LogsImportInput(InputModel):
    path: str = Field(description="JSONL or Parquet file with the DESIGN.md log columns.")


class LogsImportResult(BaseModel):
    path: str
    rows: int
    use_cases: dict[str, int]


def read_log_file(path: Path) -> list[dict[str, Any]]:
    """All rows of a JSONL or Parquet file, validated; a bad row is reported with its line number."""
    from modelsteward.storage.logstore import normalise_row

    if not path.exists():
        raise NotFound(f"No such file: {path}.")
    rows: list[dict[str, Any]] = []
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            raw = pq.read_table(path).to_pylist()
        except Exception as exc:  # noqa: BLE001 - translate pyarrow errors
            raise InvalidInput(f"{path}: not a readable Parquet file ({exc}).") from exc
        for n, r in enumerate(raw, 1):
            try:
                rows.append(normalise_row(r))
            except InvalidInput as exc:
                raise InvalidInput(f"{path}: row {n}: {exc.message} Nothing was imported.") from exc
        return rows
    with open(path, "rb") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise InvalidInput(f"{path}: line {n}: malformed JSON ({exc}). Nothing was imported.") from exc
            if not isinstance(obj, dict):
                raise InvalidInput(f"{path}: line {n}: expected a JSON object. Nothing was imported.")
            try:
                rows.append(normalise_row(obj))
            except InvalidInput as exc:
                raise InvalidInput(f"{path}: line {n}: {exc.message} Nothing was imported.") from exc
    return rows


@tool("logs_import", input_model=LogsImportInput, output_model=LogsImportResult, mutating=True)
def logs_import(ctx: ToolContext, inp: LogsImportInput) -> LogsImportResult:
    """Import request-log rows from JSONL or Parquet; all rows or none."""
    path = Path(inp.path).expanduser()
    rows = read_log_file(path)
    if not rows:
        raise InvalidInput(f"{path}: no rows to import.")
    store = ctx.steward.logs
    store.append_many(rows)
    store.flush()
    per: dict[str, int] = {}
    for r in rows:
        per[r["use_case"]] = per.get(r["use_case"], 0) + 1
    return LogsImportResult(path=str(path), rows=len(rows), use_cases=per)


class LogsStatsInput(InputModel):
    use_case: str | None = None
    since: str = "7d"


class LogsStats(BaseModel):
    use_case: str | None
    since: str
    rows: list[dict[str, Any]]


@tool("logs_stats", input_model=LogsStatsInput, output_model=LogsStats, mutating=False)
def logs_stats(ctx: ToolContext, inp: LogsStatsInput) -> LogsStats:
    """Per model and role over a window: requests, error rate, p50/p95 latency, tokens, cost, feedback."""
    if inp.use_case:
        ctx.steward.registry.get_use_case(inp.use_case)
    return LogsStats(use_case=inp.use_case, since=inp.since, rows=ctx.steward.logs.stats(inp.use_case, inp.since))


class LogsQueryInput(InputModel):
    sql: str = Field(description="One read-only SELECT over the view `logs`.")
    limit: int = Field(default=1000, ge=1, le=100_000)


class LogsQueryResult(BaseModel):
    columns: list[str]
    rows: list[dict[str, Any]]
    truncated: bool


@tool("query_logs", input_model=LogsQueryInput, output_model=LogsQueryResult, mutating=False)
def query_logs(ctx: ToolContext, inp: LogsQueryInput) -> LogsQueryResult:
    """Read-only SQL over the request logs (view `logs`); writes are refused."""
    rows = ctx.steward.logs.query(inp.sql, limit=inp.limit + 1)
    cols = list(rows[0]) if rows else []
    return LogsQueryResult(columns=cols, rows=rows[: inp.limit], truncated=len(rows) > inp.limit)
