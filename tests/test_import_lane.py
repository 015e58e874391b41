"""Issue 25 item 3: imported history stays in its lane.  Reproduced first: `--use-case support`
wrote rows into any other use case a row named; imported rows kept their file's feedback and any
timestamp (2036 accepted); a 1000-deep nested JSON ended in RecursionError; a 40 MB row was
accepted; and imported rows counted as rollout evidence and evaluation references."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from modelsteward.errors import InvalidInput
from modelsteward.tools import call_tool
from modelsteward.tools.base import ToolContext


@pytest.fixture
def ctx(steward: Any) -> ToolContext:
    c = ToolContext(steward=steward)
    for name in ("support", "billing"):
        call_tool("usecase_add", {"name": name, "description": name}, c)
    return c


def _row(i: int, **kw: Any) -> dict[str, Any]:
    now = dt.datetime.now(dt.timezone.utc)
    return {"ts": (now - dt.timedelta(minutes=5)).isoformat(), "request_id": f"imp-{i}", "use_case": "support",
            "model_id": "openai:gpt-4o-mini", "messages": [{"role": "user", "content": f"question {i}"}],
            "response": f"answer {i}", "status": "ok", "latency_ms": 100.0, "feedback": 1.0, **kw}


def _file(tmp_path: Path, rows: list[dict[str, Any]], name: str = "rows.jsonl") -> str:
    p = tmp_path / name
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return str(p)


def _imp(ctx: ToolContext, path: str, **kw: Any) -> Any:
    return call_tool("logs_import", {"path": path, "use_case": "support", **kw}, ctx)


def _count(ctx: ToolContext) -> int:
    return int(ctx.steward.logs.query("SELECT count(*) AS n FROM logs")[0]["n"])


def test_a_bounded_import_refuses_rows_of_another_use_case_whole(ctx: ToolContext, tmp_path: Path) -> None:
    path = _file(tmp_path, [_row(1), _row(2, use_case="billing")])
    with pytest.raises(InvalidInput, match="names use case 'billing'.*bounded to --use-case support"):
        _imp(ctx, path)
    assert _count(ctx) == 0


@pytest.mark.parametrize(("row", "match"), [
    (_row(1, ts="2036-01-01T00:00:00Z"), "in the future"),
    (_row(1, response="x" * 1_100_000), "over the 1,048,576 a request may carry"),
])
def test_future_rows_and_oversized_rows_are_refused(ctx: ToolContext, tmp_path: Path, row: dict[str, Any],
                                                    match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        _imp(ctx, _file(tmp_path, [_row(0), row]))
    assert _count(ctx) == 0


def test_deep_nesting_is_one_clear_error(ctx: ToolContext, tmp_path: Path) -> None:
    row = json.dumps(_row(1))
    p = tmp_path / "deep.jsonl"
    p.write_text(row[:-1] + ', "metadata": ' + '{"a": ' * 1000 + '"x"' + "}" * 1000 + "}\n")
    with pytest.raises(InvalidInput, match="nested more than 64 levels"):
        _imp(ctx, str(p))


def test_imported_rows_are_marked_without_feedback_and_are_no_evidence(ctx: ToolContext, tmp_path: Path) -> None:
    from modelsteward.rollout.metrics import window_metrics

    out = _imp(ctx, _file(tmp_path, [_row(i) for i in range(5)]))
    assert out.origin == "import:steward" and out.feedback_dropped == 5
    got = ctx.steward.logs.query("SELECT origin, feedback FROM logs")
    assert {(r["origin"], r["feedback"]) for r in got} == {("import:steward", None)}
    since = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(hours=1)
    assert window_metrics(ctx.steward, "support", since).requests == 0  # not rollout / guardrail evidence
    # opted in: the operator says this history is the application's own traffic
    out = _imp(ctx, _file(tmp_path, [_row(i) for i in range(10, 13)], "b.jsonl"), keep_feedback=True,
               as_evidence=True)
    assert out.origin == "import-evidence:steward" and out.feedback_dropped == 0
    assert window_metrics(ctx.steward, "support", since).requests == 3
