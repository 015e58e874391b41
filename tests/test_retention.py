"""Retention: ``logs purge`` removes a use case's old rows (whole partitions and the boundary day), nothing else."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from modelsteward.errors import ApprovalRequired, InvalidInput, PolicyDenied
from modelsteward.storage.retention import parse_age, purge
from modelsteward.tools import ToolContext, call_tool
from training_helpers import log_row

NOW = dt.datetime(2026, 6, 30, 12, 0, 0)


def _rows(use_case: str, ages_h: list[float], now: dt.datetime) -> list[dict]:
    return [{**log_row(f"{use_case}-{i}", f"prompt {i} mail a{i}@example.com", "ok", use_case=use_case),
             "ts": (now - dt.timedelta(hours=h)).isoformat()} for i, h in enumerate(ages_h)]


def _count(steward, use_case: str) -> int:  # type: ignore[no-untyped-def]
    return steward.logs.query("SELECT count(*) AS n FROM logs WHERE use_case = ?", [use_case])[0]["n"]


def test_purge_removes_old_partitions_and_rewrites_the_boundary_day(steward) -> None:  # type: ignore[no-untyped-def]
    old = [24 * 200, 24 * 120, 24 * 100 + 1]           # whole days before the cut-off
    boundary = [24 * 90 + 1, 24 * 90 - 1]              # 11:00 (purged) and 13:00 (kept) on the cut-off day
    recent = [24 * 10, 2]
    steward.logs.append_many(_rows("story", old + boundary + recent, NOW) + _rows("other", old, NOW))
    steward.logs.flush()
    steward.logs.append_many(_rows("story", [24 * 90 + 2], NOW))  # a second segment on the boundary day
    steward.logs.flush()
    steward.logs.compact()
    root = steward.logs.requests_dir
    before = {p.relative_to(root) for p in root.rglob("*.parquet")}
    assert _count(steward, "story") == 8

    res = purge(steward.logs, "story", parse_age("90d"), now=NOW)

    assert res.rows_removed == 3 + 2 and len(res.partitions_removed) == 3 and res.files_rewritten == 1
    assert _count(steward, "story") == 3 and _count(steward, "other") == 3  # another use case is untouched
    left = steward.logs.query("SELECT request_id FROM logs WHERE use_case = 'story' ORDER BY ts")
    assert [r["request_id"] for r in left] == ["story-4", "story-5", "story-6"]
    after = {p.relative_to(root) for p in root.rglob("*.parquet")}
    assert not any("use_case=story" in str(p) and str(p).split("/")[0] < "date=2026-04-01" for p in after)
    assert {p for p in before if "use_case=other" in str(p)} <= after
    assert not list(steward.logs.root.glob(".purged*")) and not list(root.rglob("*.tmp"))
    # The rewritten compacted file still names its sources and its rollup agrees with the rows.
    day = (NOW - dt.timedelta(days=90)).strftime("%Y-%m-%d")
    (cmp,) = list((root / f"date={day}" / "use_case=story").glob("*.parquet"))
    meta = pq.read_schema(cmp).metadata
    assert b"steward.sources" in meta and pq.ParquetFile(cmp).metadata.num_rows == 1
    stats = steward.logs.stats("story", since=None)
    assert sum(r["count"] for r in stats) == 3
    # Running it again removes nothing.
    assert purge(steward.logs, "story", parse_age("90d"), now=NOW).rows_removed == 0


def test_purge_through_the_tool_policy_and_ttl(steward) -> None:  # type: ignore[no-untyped-def]
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    steward.registry.add_use_case("story", description="story game")
    steward.logs.append_many(_rows("story", [24 * 400, 24 * 200, 24 * 5], now))
    steward.logs.flush()
    ctx = ToolContext(steward=steward, actor="cli:tester")
    with pytest.raises(PolicyDenied, match="retention_min_age"):
        call_tool("logs_purge", {"use_case": "story", "older_than": "12h"}, ctx)
    with pytest.raises(InvalidInput, match="no retention TTL"):
        call_tool("logs_purge", {"use_case": "story"}, ctx)
    with pytest.raises(PolicyDenied, match="retention_min_age"):
        call_tool("logs_retention", {"use_case": "story", "days": 0.5}, ctx)
    assert _count(steward, "story") == 3  # every refusal changed nothing
    call_tool("logs_retention", {"use_case": "story", "days": 300}, ctx)
    with pytest.raises(ApprovalRequired, match="retention_shorter_than_ttl"):
        call_tool("logs_purge", {"use_case": "story", "older_than": "90d"}, ctx)
    out = call_tool("logs_purge", {"use_case": "story"}, ctx)  # the TTL: 300 days
    assert out.rows_removed == 1 and out.older_than == "300d"  # type: ignore[attr-defined]
    assert _count(steward, "story") == 2
    with pytest.raises(InvalidInput, match="not like 90d"):
        call_tool("logs_purge", {"use_case": "story", "older_than": "ninety days"}, ctx)


def test_cli_logs_purge_json(steward, settings) -> None:  # type: ignore[no-untyped-def]
    from modelsteward.cli import app

    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    steward.registry.add_use_case("story", description="story game")
    steward.logs.append_many(_rows("story", [24 * 200, 24 * 100, 24], now))
    steward.close()
    runner = CliRunner()
    res = runner.invoke(app, ["logs", "purge", "--use-case", "story", "--older-than", "90d", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["rows_removed"] == 2 and out["use_case"] == "story" and out["older_than"] == "90d"
    assert set(out) == {"use_case", "older_than", "cutoff", "rows_removed", "files_removed", "files_rewritten",
                        "partitions_removed"}
    res = runner.invoke(app, ["logs", "retention", "--use-case", "story", "--days", "30", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout) == {"use_case": "story", "retention_days": 30.0}
    res = runner.invoke(app, ["logs", "purge", "--use-case", "story", "--older-than", "1h"])
    assert res.exit_code != 0 and isinstance(res.exception, PolicyDenied)
    assert not Path(settings.logs_path / ".purged").exists()
