"""Output a person reads (issue 19, item 9), through the installed ``steward`` console script as a
user runs it (its output piped, as in a script or ``| less``):

- money prints as ``1`` / ``0`` / ``0.15``, never ``1.0000000000`` / ``0E-10``;
- no message says a word twice ("waiting - waiting: waiting:", "openrouter: openrouter:");
- the safety check says why it passes; a shadow step says why feedback is not compared;
- no MLflow INFO lines (nor progress bars) on stderr;
- tables print at full width when piped;
- ``serve`` on a busy port: one line, exit 1, no banner first;
- a new default workspace is announced once on stderr;
- ``logs query`` on an unknown table points to the ``logs`` view, not to DuckDB's catalog.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from modelsteward.context import open_steward
from modelsteward.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name("steward")

pytestmark = pytest.mark.slow


def steward(ws: Path | None, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            code: int = 0) -> subprocess.CompletedProcess[str]:
    """The console script with this checkout first on PYTHONPATH; ``ws=None`` leaves STEWARD_HOME unset."""
    assert SCRIPT.exists(), f"the console script {SCRIPT} is missing: install the project (make install)"
    full = {**os.environ, "PYTHONPATH": str(REPO), "USER": "alice", **(env or {})}
    for k in ("STEWARD_DATABASE_URL", "STEWARD_LOG_DIR", "STEWARD_DEBUG", "STEWARD_HOME", "MLFLOW_TRACKING_URI",
              "MLFLOW_LOGGING_LEVEL", "COLUMNS"):
        full.pop(k, None)
    if ws is not None:
        full["STEWARD_HOME"] = str(ws)
    p = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=full, timeout=300,
                       cwd=cwd or (ws.parent if ws else None))
    assert "Traceback" not in p.stderr, p.stderr
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    return p


def _workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    st = open_steward(Settings(home=ws))
    st.close()
    return ws


# ------------------------------------------------------------------------------- numbers and tables
def test_money_prints_readably_and_tables_are_not_cut_when_piped(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    long_id = "a-model-with-a-rather-long-name-" + "x" * 90
    steward(ws, "models", "register", "custom", "one", "--base-url", "http://127.0.0.1:9/v1",
            "--price-in", "1", "--price-out", "0")
    steward(ws, "models", "register", "custom", long_id, "--base-url", "http://127.0.0.1:9/v1",
            "--price-in", "0.15", "--price-out", "0.600")
    # --no-check: the model's endpoint (port 9) answers nothing; this test is about how money prints
    steward(ws, "usecase", "add", "chat", "--description", "chat", "--model", "custom:one", "--budget-usd", "25",
            "--no-check")
    outs = [steward(ws, *cmd).stdout for cmd in (
        ("models", "list"), ("models", "show", "custom:one"), ("usecase", "show", "chat"), ("usecase", "list"),
        ("models", "list", "--json"), ("usecase", "show", "chat", "--json"))]
    text = "\n".join(outs)
    assert "0E-10" not in text and "1.0000000000" not in text and "0000000" not in text, text
    assert "0.15" in outs[0] and "0.6" in outs[0] and "monthly budget: $25" in outs[2]
    shown = json.loads(outs[4])
    assert {m["id"]: m["price_out_per_m"] for m in shown} == {"custom:one": "0", f"custom:{long_id}": "0.6"}
    # piped, the table is as wide as its content: the long id is on one line, uncut
    line = next(x for x in outs[0].splitlines() if long_id[-20:] in x)
    assert f"custom:{long_id}" in line and len(line) > 120


def test_the_formatting_helpers_print_decimals_as_numbers() -> None:
    """The one rule behind CLI tables (``cli.common.human``) and report cells (``formatting.fmt_value``)."""
    from decimal import Decimal

    from modelsteward.cli.common import human
    from modelsteward.formatting import fmt_value

    for raw, shown in (("1.0000000000", "1"), ("0E-10", "0"), ("0.1500000000", "0.15"), ("1E+2", "100"),
                       ("-0.0000", "0"), ("123.4500", "123.45")):
        assert human(Decimal(raw)) == shown and fmt_value(Decimal(raw)) == shown, raw


# ------------------------------------------------------------------------------- words said once
def test_rollout_and_scan_messages_say_each_thing_once(tmp_path: Path) -> None:
    from rollout_helpers import CAND, STABLE, UC, add_rows, backdate_step, pass_eval, setup_use_case

    ws = tmp_path / "ws"
    st = open_steward(Settings(home=ws))
    setup_use_case(st)
    pass_eval(st)
    st.close()
    # --no-check: CAND's endpoint is unreachable on purpose (its traffic is logged rows); this test is about messages
    steward(ws, "deploy", "--use-case", UC, "--model", CAND, "--strategy", "shadow", "--no-check")
    st = open_steward(Settings(home=ws))
    backdate_step(st, 5)
    add_rows(st, CAND, "shadow", 12)
    add_rows(st, STABLE, "primary", 12)
    st.close()
    out = steward(ws, "rollout", "advance", "--use-case", UC).stdout
    head = out.splitlines()[0]
    assert head.startswith(f"{UC}: waiting: ") and head.count("waiting") == 1, out
    assert "s of the window elapsed" in head
    # the shadow step says why feedback is not compared, instead of "feedback not judged"
    assert "users never see shadow answers" in head and "not judged (fewer" not in out

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: the source is unreachable
    scan = steward(ws, "scan", "--provider", "openrouter", "--timeout", "3",
                   env={"STEWARD_OPENROUTER_BASE_URL": f"http://127.0.0.1:{port}/api/v1"}).stdout
    line = next(x for x in scan.splitlines() if "unreachable (" in x)
    assert line.startswith("openrouter: ") and "openrouter: openrouter" not in scan, scan


def test_judge_explains_feedback_it_does_not_compare() -> None:
    """The reasons behind the CLI line: shadow (never shown to users) vs. a canary without feedback yet."""
    from modelsteward.policies.bounds import section_of
    from modelsteward.rollout.analysis import judge
    from modelsteward.rollout.metrics import WindowMetrics

    cfg = section_of({}, "rollout")
    w = WindowMetrics(requests=500, errors=0, p95_ms=100.0, cost_usd=0.5)
    _, shadow = judge(w, w, cfg, 10_000, shadow=True)
    assert any("users never see shadow answers" in r for r in shadow), shadow
    _, canary = judge(w, w, cfg, 10_000)
    assert any(r.startswith("feedback not judged yet: 0 value(s) on the candidate, 0 on the stable model")
               for r in canary), canary


# ------------------------------------------------------------------------------- evaluation output
def test_eval_gives_the_safety_reason_and_no_library_chatter(tmp_path: Path) -> None:
    from gateway_helpers import register_upstream
    from modelsteward.fakes.upstream import InstantUpstream

    ws = tmp_path / "ws"
    with InstantUpstream() as up:
        st = open_steward(Settings(home=ws))
        base = register_upstream(st, "base", up.url)
        cand = register_upstream(st, "cand", up.url)
        st.registry.add_use_case("chat", model=base)
        st.logs.append_many([{"request_id": f"r{i}", "use_case": "chat", "model_id": base, "role": "primary",
                              "messages": [{"role": "user", "content": f"question {i}"}], "response": "answer",
                              "status": "ok"} for i in range(8)])
        st.close()
        p = steward(ws, "eval", "--use-case", "chat", "--candidate", cand, "--samples", "4")
    line = next(x for x in p.stdout.splitlines() if x.strip().startswith("- safety:"))
    assert re.search(r"no more than the baseline's \d+ on the prompts both answered.*not less safe than the current model", line), line
    assert " INFO " not in p.stderr and "mlflow" not in p.stderr.lower(), p.stderr
    assert "Loading weights" not in p.stderr and "it/s]" not in p.stderr, p.stderr


# ------------------------------------------------------------------------------- serve, workspace, SQL
def test_serve_on_a_busy_port_is_one_line_before_any_banner(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        p = steward(ws, "serve", "--port", str(port), "--no-control-loop", code=1)
    assert p.stdout == ""  # no "Model Steward on http://..." banner
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error (conflict): Cannot listen on") and str(port) in lines[0]


def test_a_new_default_workspace_is_announced_once(tmp_path: Path) -> None:
    here = tmp_path / "project"
    here.mkdir()
    first = steward(None, "usecase", "list", "--json", cwd=here)
    assert json.loads(first.stdout) == []  # stdout stays clean JSON
    lines = first.stderr.strip().splitlines()
    assert len(lines) == 1 and "created a new workspace" in lines[0] and str(here / ".steward") in lines[0]
    assert (here / ".steward").is_dir()
    again = steward(None, "usecase", "list", "--json", cwd=here)
    assert again.stderr == ""
    # an explicit STEWARD_HOME is the user's choice: nothing to announce
    other = steward(tmp_path / "chosen", "usecase", "list", "--json")
    assert other.stderr == ""


def test_logs_query_on_an_unknown_table_points_to_the_logs_view(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    p = steward(ws, "logs", "query", "SELECT * FROM requests", code=2)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "no table 'requests'" in lines[0] and "`logs`" in lines[0], p.stderr
    assert "pg_" not in p.stderr and "Did you mean" not in p.stderr
    # the columns it names are the view's columns
    named = re.search(r"\(columns: ([^)]*)\)", lines[0]).group(1).split(", ")
    cols = steward(ws, "logs", "query", "SELECT column_name FROM (DESCRIBE logs)", "--json").stdout
    assert named == [r["column_name"] for r in json.loads(cols)]
