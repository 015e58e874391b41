"""The command line end to end in a temp workspace (subprocesses, --json parsed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

STEWARD = [sys.executable, "-m", "modelsteward"]


def run(ws: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STEWARD_HOME": str(ws)}
    env.pop("STEWARD_DATABASE_URL", None)
    env.pop("STEWARD_LOG_DIR", None)
    proc = subprocess.run([*STEWARD, *args], capture_output=True, text=True, env=env, timeout=120)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_init_twice_is_a_noop(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    first = json.loads(run(ws, "init", "--json").stdout)
    second = json.loads(run(ws, "init", "--json").stdout)
    assert first == second
    assert first["schema_revision"] and Path(first["workspace"]) == ws.resolve()
    assert (ws / "steward.db").exists()


def test_usecase_models_logs_flow(tmp_path: Path, hosted_upstream: Any) -> None:  # the fallback answers its check
    ws = tmp_path / "ws"
    run(ws, "init")
    m = json.loads(run(ws, "models", "register", "openrouter", "openai/gpt-4o-mini", "--price-in", "0.15",
                       "--price-out", "0.60", "--context", "128000", "--json").stdout)
    assert m["id"] == "openrouter:openai/gpt-4o-mini" and m["price_in_per_m"] == "0.15"
    run(ws, "models", "register", "local", "smollm2-135m-instruct")
    uc = json.loads(run(ws, "usecase", "add", "story_teller", "--description", "tells stories",
                        "--model", "local:smollm2-135m-instruct", "--fallback", "openrouter:openai/gpt-4o-mini",
                        "--budget-usd", "25", "--weights", "quality=.6,cost=.2,latency=.2",
                        "--min-context", "4096", "--requires", "json", "--json").stdout)
    assert uc["allocations"] == [{"model_id": "local:smollm2-135m-instruct", "weight": 100.0, "role": "primary"}]
    assert uc["fallback"] == ["openrouter:openai/gpt-4o-mini"] and uc["deployment_version"] == 1
    assert uc["requirements"] == {"min_context": 4096, "requires": ["json"]}
    listed = json.loads(run(ws, "usecase", "list", "--json").stdout)
    assert [u["name"] for u in listed] == ["story_teller"]
    models = json.loads(run(ws, "models", "list", "--status", "current", "--json").stdout)
    assert [x["id"] for x in models] == ["local:smollm2-135m-instruct"]
    shown = json.loads(run(ws, "models", "show", "openrouter:openai/gpt-4o-mini", "--json").stdout)
    assert shown["context_length"] == 128000

    logs = tmp_path / "logs.jsonl"
    now = time.time()
    lines = [json.dumps({"ts": now - i, "request_id": f"q{i}", "use_case": "story_teller",
                         "model_id": "local:smollm2-135m-instruct", "role": "primary",
                         "messages": [{"role": "user", "content": "hi"}], "response": "hello",
                         "latency_ms": 100 + i, "input_tokens": 5, "output_tokens": 7, "cost_usd": 0.0,
                         "status": "ok", "feedback": 1 if i % 2 else None}) for i in range(20)]
    logs.write_text("\n".join(lines) + "\n")
    imp = json.loads(run(ws, "logs", "import", str(logs), "--keep-feedback", "--json").stdout)  # the file's ratings kept
    assert imp["rows"] == 20 and imp["use_cases"] == {"story_teller": 20}
    stats = json.loads(run(ws, "logs", "stats", "--use-case", "story_teller", "--json").stdout)
    assert stats["rows"][0]["count"] == 20 and stats["rows"][0]["feedback_count"] == 10
    q = json.loads(run(ws, "logs", "query", "SELECT count(*) AS n FROM logs WHERE latency_ms >= 110", "--json").stdout)
    assert q == [{"n": 10}]


def test_bad_input_exits_nonzero_with_one_line(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    run(ws, "init")
    run(ws, "usecase", "add", "chat", "--description", "d")
    p = run(ws, "usecase", "show", "chatt", ok=False)
    assert p.returncode != 0 and "Did you mean: chat" in p.stderr
    p = run(ws, "models", "register", "openai", "gpt-x", "--price-in", "-2", ok=False)
    assert p.returncode != 0 and "non-negative" in p.stderr
    p = run(ws, "models", "register", "openai", "gpt-x", "--price-out", "cheap", ok=False)
    assert p.returncode != 0 and "not a number" in p.stderr
    p = run(ws, "models", "register", "openia", "gpt-x", ok=False)
    assert p.returncode != 0 and "openai" in p.stderr
    p = run(ws, "logs", "query", "DELETE FROM logs", ok=False)
    assert p.returncode != 0 and "read-only" in p.stderr
    bad = tmp_path / "bad.jsonl"
    good = json.dumps({"request_id": "a", "use_case": "chat", "model_id": "m"})
    good2 = json.dumps({"request_id": "b", "use_case": "chat", "model_id": "m"})
    bad.write_text(good + "\n" + good2 + "\n{not json\n")
    p = run(ws, "logs", "import", str(bad), ok=False)
    assert p.returncode != 0 and "line 3" in p.stderr
    stats = json.loads(run(ws, "logs", "stats", "--since", "all", "--json").stdout)
    assert stats["rows"] == []  # nothing half-imported
    assert len(p.stderr.strip().splitlines()) <= 2


def test_help_is_fast_and_light(tmp_path: Path) -> None:
    code = ("import sys, time; t = time.time(); import modelsteward.cli; "
            "heavy = [m for m in ('torch', 'transformers', 'mlflow', 'langchain_core', 'langgraph', 'duckdb') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_fail_exits_nonzero() -> None:
    code = ("import typer\nfrom modelsteward.cli.common import fail, run_cli\n"
            "app = typer.Typer()\n@app.command()\ndef x() -> None:\n    fail('nope', code=3)\n"
            "@app.command()\ndef y() -> None:\n    pass\nrun_cli(app)\n")
    p = subprocess.run([sys.executable, "-c", code, "x"], capture_output=True, text=True)
    assert p.returncode == 3 and "nope" in p.stderr
