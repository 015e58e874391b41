"""Log tools: import rows, window statistics, read-only SQL over the ``logs`` view, retention and purge."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field

from modelsteward.errors import InvalidInput, NotFound
from modelsteward.storage.importers import ImportReport
from modelsteward.tools.base import InputModel, ToolContext, tool

__all__ = ["LogsImportInput", "LogsImportResult", "LogsStatsInput", "LogsStats", "LogsQueryInput", "LogsQueryResult",
           "LogsPurgeInput", "LogsPurgeResult", "LogsRetentionInput", "LogsRetentionResult", "read_log_file"]


ImportFormat = Literal["auto", "steward", "otel", "langfuse", "litellm", "openai-batch"]


class LogsImportInput(InputModel):
    path: str = Field(min_length=1, description="The file to import: JSON lines, one JSON document, or Parquet "
                                                "(steward rows); for openai-batch the batch input file.")
    format: ImportFormat = Field("auto", description="auto recognises the format from the first record.")
    use_case: str | None = Field(None, min_length=1, description="Use case of rows that name none.")
    output_file: str | None = Field(None, min_length=1, description="openai-batch: the batch output file.")
    keep_feedback: bool = Field(False, description="Keep the file's feedback scores (dropped by default: another "
                                                   "system's ratings are not this application's users').")
    as_evidence: bool = Field(False, description="Let the rows count as this application's traffic: training "
                                                 "targets, evaluation references, rollout and guardrail evidence "
                                                 "(origin import-evidence:<format>).")


LogsImportResult = ImportReport


def read_log_file(path: Path) -> list[dict[str, Any]]:
    """All rows of a steward JSONL or Parquet file, validated; a bad row is reported with its line number."""
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
    """Import request logs (steward rows, OTel GenAI traces, Langfuse, LiteLLM spend logs, OpenAI Batch
    files); validated whole before anything is appended; rows whose source id is already stored are skipped."""
    from modelsteward.storage.importers import import_file

    registry = ctx.steward.registry
    names: list[str] | None = None

    def check_use_case(name: str) -> None:
        nonlocal names
        try:
            registry.get_use_case(name)
        except NotFound:
            if names is None:
                names = [u.name for u in registry.list_use_cases()]
            raise InvalidInput(f"unknown use case {name!r} (known: {', '.join(names) or 'none'}); create it with "
                               f"`steward usecase add {name}` or give --use-case NAME for rows that name none") from None

    def known_model(mid: str) -> bool:
        return registry.find_model(mid) is not None

    if inp.use_case is not None:  # refused up front even if every row names its own
        try:
            check_use_case(inp.use_case)
        except InvalidInput as exc:
            raise InvalidInput(f"--use-case: {exc.message}; nothing was imported.") from None
    return import_file(
        ctx.steward.logs, Path(inp.path).expanduser(), fmt=inp.format, use_case=inp.use_case,
        output_file=Path(inp.output_file).expanduser() if inp.output_file else None,
        check_use_case=check_use_case, known_model=known_model, progress=ctx.progress,
        keep_feedback=inp.keep_feedback, as_evidence=inp.as_evidence,
        spill_dir=ctx.steward.settings.workspace / "tmp" / "duckdb")  # bulk work may spill (issue 28)


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
        ctx.steward.reader.use_case_id(inp.use_case)  # NotFound (with suggestions) for an unknown one
    return LogsStats(use_case=inp.use_case, since=inp.since, rows=ctx.steward.logs.stats(inp.use_case, inp.since))


class LogsQueryInput(InputModel):
    sql: str = Field(description="One read-only SELECT over the view `logs`.")
    limit: int = Field(default=1000, ge=1, le=100_000)


class LogsQueryResult(BaseModel):
    columns: list[str]
    rows: list[dict[str, Any]]
    truncated: bool


@tool("query_logs", input_model=LogsQueryInput, output_model=LogsQueryResult, mutating=False, logged_text=True)
def query_logs(ctx: ToolContext, inp: LogsQueryInput) -> LogsQueryResult:
    """Read-only SQL over the request logs (view `logs`); writes are refused."""
    rows = ctx.steward.logs.query(inp.sql, limit=inp.limit + 1)
    cols = list(rows[0]) if rows else []
    return LogsQueryResult(columns=cols, rows=rows[: inp.limit], truncated=len(rows) > inp.limit)


class LogsPurgeInput(InputModel):
    use_case: str = Field(min_length=1)
    older_than: str | None = Field(default=None, description="90d, 12h, 2w; default: the use case's retention TTL")


class LogsPurgeResult(BaseModel):
    use_case: str
    older_than: str
    cutoff: str
    rows_removed: int
    files_removed: int
    files_rewritten: int
    partitions_removed: list[str]


@tool("logs_purge", input_model=LogsPurgeInput, output_model=LogsPurgeResult, mutating=True)
def logs_purge(ctx: ToolContext, inp: LogsPurgeInput) -> LogsPurgeResult:
    """Delete a use case's logged requests (raw prompts and answers) older than an age, or its TTL."""
    from modelsteward.storage.retention import parse_age, purge, retention_days

    uc = ctx.steward.registry.get_use_case(inp.use_case)
    older = inp.older_than
    if older is None:
        days = retention_days(uc.config)
        if days is None:
            raise InvalidInput(f"Use case {uc.name!r} has no retention TTL; give --older-than (e.g. 90d) or set one "
                               f"with `steward logs retention --use-case {uc.name} --days 90`.")
        older = f"{days:g}d"
    res = purge(ctx.steward.logs, uc.name, parse_age(older))
    return LogsPurgeResult(older_than=older, **res.__dict__)


class LogsRetentionInput(InputModel):
    use_case: str = Field(min_length=1)
    days: float | None = Field(default=None, gt=0, le=36_500, description="TTL of raw prompts in days; None: keep")


class LogsRetentionResult(BaseModel):
    use_case: str
    retention_days: float | None


@tool("logs_retention", input_model=LogsRetentionInput, output_model=LogsRetentionResult, mutating=True)
def logs_retention(ctx: ToolContext, inp: LogsRetentionInput) -> LogsRetentionResult:
    """Set (or clear) how long a use case's raw prompts stay in the log store (applied by ``logs_purge``)."""
    from modelsteward.storage.retention import RETENTION_KEY

    uc = ctx.steward.registry.get_use_case(inp.use_case)
    config = {k: v for k, v in (uc.config or {}).items() if k != RETENTION_KEY}
    if inp.days is not None:
        config[RETENTION_KEY] = inp.days
    ctx.steward.registry.update_use_case(uc.name, config=config)
    return LogsRetentionResult(use_case=uc.name, retention_days=inp.days)
