"""Agent reports leave the log store redacted: a tool result that quotes a logged prompt with PII
(here a query_logs answer) must not carry it into the report, the failure report or MLflow."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from modelsteward.agent.report import failure_report, render_report

EMAIL = "jane.doe@example.org"
KEY = "sk-proj-" + "Xa9" * 16


def _state() -> dict[str, Any]:
    leak = f'{{"rows": [{{"messages": "mail {EMAIL} and key {KEY}"}}]}}'
    return {"goal": "look at logs", "use_case": "story", "step": 1, "max_steps": 5, "outcome": "done",
            "messages": [], "journal": [
                {"kind": "guard", "id": "c1", "name": "query_logs", "args": {"sql": "SELECT messages FROM logs"},
                 "verdict": "allow"},
                {"kind": "tool", "id": "c1", "name": "query_logs", "ok": True, "result": leak},
            ]}


def test_the_run_report_redacts_logged_text_it_quotes() -> None:
    report = render_report(_state(), SimpleNamespace(run_id=7, planner=SimpleNamespace(name="playbook")))  # type: ignore[arg-type]
    assert "query_logs" in report and "[EMAIL]" in report
    assert EMAIL not in report and KEY not in report


def test_a_failure_report_redacts_its_reason() -> None:
    out = failure_report(3, "playbook", f"upstream said: bad prompt from {EMAIL}")
    assert EMAIL not in out and "[EMAIL]" in out
