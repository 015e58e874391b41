"""``steward logs import`` of the logs teams already have (issue 17 item 2, issue 19 item 7).

Each format's fixture (tests/fixtures/import/, provenance in tests/fixtures/README.md) imports the
right rows; ``auto`` recognises each; importing again adds nothing; bad input (a malformed span, an
unknown format, a file mixing formats, a folder, an unknown use case) is one line on stderr with
exit 2 through the installed console script, naming the file and line, and nothing is imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelsteward.errors import InvalidInput
from modelsteward.tools import call_tool
from modelsteward.tools.base import ToolContext

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name("steward")
FIX = REPO / "tests" / "fixtures" / "import"


@pytest.fixture
def ctx(steward):  # type: ignore[no-untyped-def]
    c = ToolContext(steward=steward)
    call_tool("usecase_add", {"name": "support", "description": "support bot"}, c)
    return c


def imp(ctx: ToolContext, name: str, **kw: object):  # type: ignore[no-untyped-def]
    return call_tool("logs_import", {"path": str(FIX / name), **kw}, ctx)


def rows(ctx: ToolContext, prefix: str) -> dict[str, dict]:
    got = ctx.steward.logs.query("SELECT * FROM logs WHERE request_id LIKE ? ORDER BY ts", [prefix + "%"])
    return {r["request_id"]: r for r in got}


def test_otel_spans_become_rows(ctx: ToolContext) -> None:
    out = imp(ctx, "otel_genai.jsonl", use_case="support")
    assert out.format == "otel" and out.rows == 4 and out.read == 7
    assert out.skipped == {"not_a_chat_span": 3}  # the HTTP span, the embeddings span, the tool span
    got = rows(ctx, "otel:")
    new = got["otel:eee19b7ec3c1b174"]  # v1.37 gen_ai.input/output.messages as JSON strings
    assert new["model_id"] == "openai:gpt-4o-mini" and new["use_case"] == "support"
    assert (new["input_tokens"], new["output_tokens"]) == (24, 9)
    assert new["latency_ms"] == pytest.approx(1234.0)
    assert json.loads(new["messages"]) == [{"role": "user", "content": "Where is my order #1234?"}]
    assert new["response"] == "It shipped yesterday and arrives Friday." and new["status"] == "ok"
    old = got["otel:b7ad6b7169203331"]  # older gen_ai.system + per-message events
    assert old["model_id"] == "anthropic:claude-3-5-haiku-20241022" and old["latency_ms"] == pytest.approx(850.0)
    assert [m["role"] for m in json.loads(old["messages"])] == ["system", "user"]
    assert old["response"] == "Yes, until the parcel ships."
    err = got["otel:b7ad6b7169203332"]  # status code ERROR + error.type
    assert err["status"] == "error" and err["error"] == "Request timed out." and err["latency_ms"] == pytest.approx(20000)
    structured = got["otel:b7ad6b7169203333"]  # messages as structured (arrayValue/kvlistValue) attributes
    assert json.loads(structured["messages"])[1] == {"role": "user", "content": "Capital of France?"}
    assert structured["response"] == "Paris"
    assert json.loads(new["metadata"])["trace_id"] == "5b8efff798038103d269b633813fc60c"


def test_langfuse_generations_become_rows(ctx: ToolContext) -> None:
    out = imp(ctx, "langfuse_observations.json", use_case="support")  # for the one whose metadata names none
    assert out.format == "langfuse" and out.rows == 2 and out.skipped == {"langfuse_span": 1}
    got = rows(ctx, "langfuse:")
    ok = got["langfuse:7c3a4f1e-52d1-4f5e-9d3b-0f3c2a1b9e01"]
    assert ok["model_id"] == "openai:gpt-4o-mini" and (ok["input_tokens"], ok["output_tokens"]) == (41, 2)
    assert ok["latency_ms"] == pytest.approx(900.0) and ok["cost_usd"] == pytest.approx(7.35e-06)
    assert json.loads(ok["messages"])[1]["content"] == "My card was charged twice." and ok["response"] == "billing"
    bad = got["langfuse:9e8d7c6b-2222-4b3c-8d4e-5f6a7b8c9d0e"]
    assert bad["status"] == "error" and "APITimeoutError" in bad["error"]
    assert bad["model_id"] == "anthropic:claude-3-5-sonnet-20241022"
    assert json.loads(bad["messages"]) == [{"role": "user", "content": "Draft a refund email."}]


def test_litellm_spend_logs_become_rows(ctx: ToolContext) -> None:
    out = imp(ctx, "litellm_spend_logs.json")
    assert out.format == "litellm" and out.rows == 2 and out.skipped == {"litellm_aembedding": 1}
    got = rows(ctx, "litellm:")
    ok = got["litellm:chatcmpl-9f1c2b3a-5d6e-4f70-8a9b-0c1d2e3f4a5b"]
    assert ok["model_id"] == "openai:gpt-4o-mini" and (ok["input_tokens"], ok["output_tokens"]) == (130, 25)
    assert ok["latency_ms"] == pytest.approx(735.0) and ok["cost_usd"] == pytest.approx(0.000135)
    assert json.loads(ok["messages"]) == [{"role": "user", "content": "How do I reset my password?"}]
    assert ok["response"] == "Use 'Forgot password' on the sign-in page."
    fail = got["litellm:c3d4e5f6-1111-4b2c-8d9e-0f1a2b3c4d5e"]
    assert fail["status"] == "error" and "rate limit" in fail["error"] and fail["messages"] is None
    assert fail["model_id"] == "anthropic:claude-3-5-haiku-20241022"


def test_openai_batch_input_joined_with_output(ctx: ToolContext) -> None:
    out = imp(ctx, "openai_batch_input.jsonl", output_file=str(FIX / "openai_batch_output.jsonl"), use_case="support")
    assert out.format == "openai-batch" and out.rows == 2 and out.skipped == {"no_output": 1}
    got = rows(ctx, "openai-batch:")
    r = got["openai-batch:batch_req_6762f4c5d6e48190b1e1b7c4a2d3e4f5"]  # custom_id request-2
    assert json.loads(r["messages"]) == [{"role": "user", "content": "Translate 'thank you' to French."}]
    assert r["response"] == "Merci." and (r["input_tokens"], r["output_tokens"]) == (17, 3)
    assert r["model_id"] == "openai:gpt-4o-mini" and json.loads(r["metadata"])["custom_id"] == "request-2"
    with pytest.raises(InvalidInput, match="unknown use case 'nosuch'"):  # refused even though no row needs it
        imp(ctx, "litellm_spend_logs.json", use_case="nosuch")
    with pytest.raises(InvalidInput, match="--output-file"):
        imp(ctx, "openai_batch_input.jsonl", use_case="support")
    with pytest.raises(InvalidInput, match="output line"):  # the two files swapped
        imp(ctx, "openai_batch_output.jsonl", output_file=str(FIX / "openai_batch_input.jsonl"), use_case="support")


@pytest.mark.parametrize(("name", "fmt"), [("otel_genai.jsonl", "otel"), ("langfuse_observations.json", "langfuse"),
                                           ("litellm_spend_logs.json", "litellm"), ("steward_rows.jsonl", "steward")])
def test_auto_recognises_the_format_and_reimport_adds_nothing(ctx: ToolContext, name: str, fmt: str) -> None:
    first = imp(ctx, name, use_case="support")
    assert first.format == fmt and first.rows > 0 and first.duplicates == 0
    n = ctx.steward.logs.query("SELECT count(*) AS n FROM logs")[0]["n"]
    again = imp(ctx, name, use_case="support", format=fmt)
    assert again.rows == 0 and again.duplicates == first.rows and again.skipped == first.skipped
    assert ctx.steward.logs.query("SELECT count(*) AS n FROM logs")[0]["n"] == n


def test_repeated_ids_in_one_file_and_unknown_models_are_reported(ctx: ToolContext, tmp_path: Path) -> None:
    line = (FIX / "steward_rows.jsonl").read_text().splitlines()[0]
    f = tmp_path / "twice.jsonl"
    f.write_text(line + "\n" + line + "\n")
    out = call_tool("logs_import", {"path": str(f)}, ctx)
    assert out.rows == 1 and out.duplicates == 1 and out.unknown_models == ["openai:gpt-4o-mini"]
    call_tool("models_register", {"provider": "openai", "model_id": "gpt-4o-mini"}, ctx)
    out = imp(ctx, "litellm_spend_logs.json")
    assert out.unknown_models == ["anthropic:claude-3-5-haiku-20241022"]


def test_parquet_steward_rows(ctx: ToolContext, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    recs = [json.loads(x) for x in (FIX / "steward_rows.jsonl").read_text().splitlines()]
    for r in recs:
        r["messages"] = json.dumps(r["messages"])
    pq.write_table(pa.Table.from_pylist(recs), tmp_path / "rows.parquet")
    out = call_tool("logs_import", {"path": str(tmp_path / "rows.parquet")}, ctx)
    assert out.format == "steward" and out.rows == 2
    assert call_tool("logs_import", {"path": str(tmp_path / "rows.parquet")}, ctx).duplicates == 2


# ---------------------------------------------------------------- bad input, through the console script
def steward_cli(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.exists(), f"the console script {SCRIPT} is missing: install the project (make install)"
    env = {**os.environ, "STEWARD_HOME": str(ws), "PYTHONPATH": str(REPO)}
    for k in ("STEWARD_DATABASE_URL", "STEWARD_LOG_DIR", "STEWARD_DEBUG"):
        env.pop(k, None)
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=120, cwd=ws.parent)


def one_line(p: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert "Traceback" not in p.stderr, p.stderr
    assert p.returncode == 2, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_bad_input_is_one_line_exit_2_and_nothing_is_imported(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert steward_cli(ws, "init").returncode == 0
    assert steward_cli(ws, "usecase", "add", "support", "--description", "d").returncode == 0
    good, second = (FIX / "otel_genai.jsonl").read_text().splitlines()
    # a malformed chat span on line 2 (its end time is no number): line 1's rows must not be imported either
    broken = second.replace('"endTimeUnixNano":"1764633700850000000"', '"endTimeUnixNano":"soon"', 1)
    assert broken != second
    cases = {
        "malformed.jsonl": (good + "\n" + broken + "\n", ["line 2", "endTimeUnixNano", "spans[0]"]),
        "unknown.jsonl": (json.dumps({"event": "click", "user": 3}) + "\n", ["line 1", "no known format"]),
        "mixed.jsonl": (good + "\n" + json.dumps(json.loads((FIX / "langfuse_observations.json").read_text())["data"][0])
                        + "\n", ["line 2", "one format", "langfuse"]),
        "truncated.jsonl": (good + "\n" + second[:100] + "\n", ["line 2", "malformed JSON"]),
        "ghost.jsonl": ((FIX / "steward_rows.jsonl").read_text().replace('"support"', '"ghost"'),
                        ["line 1", "names use case 'ghost'", "bounded to --use-case support"]),
    }
    for name, (text, needles) in cases.items():
        f = tmp_path / name
        f.write_text(text)
        one_line(steward_cli(ws, "logs", "import", str(f), "--use-case", "support"), str(f), *needles)
    one_line(steward_cli(ws, "logs", "import", str(FIX / "otel_genai.jsonl"), "--use-case", "nosuch"),
             "--use-case", "unknown use case 'nosuch'", "steward usecase add")
    one_line(steward_cli(ws, "logs", "import", str(FIX / "otel_genai.jsonl")), "otel_genai.jsonl", "--use-case")
    one_line(steward_cli(ws, "logs", "import", str(FIX / "otel_genai.jsonl"), "--format", "litellm", "--use-case",
                         "support"), "line 1", "expected a litellm record")
    one_line(steward_cli(ws, "logs", "import", str(tmp_path)), "is a directory", str(tmp_path))
    q = steward_cli(ws, "logs", "query", "SELECT count(*) AS n FROM logs", "--json")
    assert q.returncode == 0 and json.loads(q.stdout) == [{"n": 0}], q.stdout + q.stderr  # nothing half-imported

    p = steward_cli(ws, "logs", "import", str(FIX / "otel_genai.jsonl"), "--use-case", "support")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("imported 4 rows from") and "{" not in p.stdout  # a summary, not a Python dict
    assert "skipped 3: not a chat span" in p.stdout and "not in the registry" in p.stdout
    p = steward_cli(ws, "logs", "import", str(FIX / "otel_genai.jsonl"), "--use-case", "support", "--json")
    out = json.loads(p.stdout)
    assert out["rows"] == 0 and out["duplicates"] == 4 and out["format"] == "otel"


def test_one_pretty_printed_document_and_json_lines_of_a_list_format(ctx: ToolContext, tmp_path: Path) -> None:
    doc = json.loads((FIX / "otel_genai.jsonl").read_text().splitlines()[1])
    f = tmp_path / "trace.json"
    f.write_text(json.dumps(doc, indent=2))  # one ExportTraceServiceRequest over many lines
    out = call_tool("logs_import", {"path": str(f)}, ctx)  # its resource names the use case
    assert out.format == "otel" and out.rows == 3 and out.skipped == {"not_a_chat_span": 1}
    obs = json.loads((FIX / "langfuse_observations.json").read_text())["data"]
    g = tmp_path / "observations.jsonl"
    g.write_text("".join(json.dumps(o) + "\n" for o in obs))  # the same observations, one per line
    out = call_tool("logs_import", {"path": str(g), "use_case": "support"}, ctx)
    assert out.format == "langfuse" and out.rows == 2
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(InvalidInput, match="empty"):
        call_tool("logs_import", {"path": str(empty)}, ctx)
