"""The console shows the realised-gain panel (with its chart) and an agent run's decisions."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from fastapi.testclient import TestClient
from server_helpers import make_tokens
from test_gain_ledger import NEW, OLD, UC, base, promoted, traffic

from modelsteward.server import create_app
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import AgentRun, utcnow
from modelsteward.tools.base import ToolContext, call_tool


def _login(client: TestClient, token: str) -> None:
    assert client.post("/login", data={"token": token}, follow_redirects=False).status_code == 303


def test_use_case_page_has_the_realised_gain_panel_and_chart(steward: Any) -> None:
    base(steward)
    now = utcnow()
    started, at = now - dt.timedelta(hours=30), now - dt.timedelta(hours=25)
    rid = promoted(steward, stated="cheaper", started=started, at=at)
    traffic(steward, OLD, started - dt.timedelta(hours=20), 120, cost=0.002, err=0.0, lat=500, fb=0.2, seed=11)
    traffic(steward, NEW, at, 120, cost=0.004, err=0.0, lat=500, fb=0.2, seed=12)
    tokens = make_tokens(steward)
    with TestClient(create_app(steward, metrics_cache_seconds=0), raise_server_exceptions=False) as client:
        _login(client, tokens["viewer"])
        empty = client.get(f"/use-cases/{UC}").text
        assert "Realised gains" in empty and "no promotion measured yet" in empty and "<svg class=\"gain-chart\"" not in empty
        call_tool("measure_gains", {"use_case": UC, "window_hours": 24}, ToolContext(steward=steward, actor="cli:t"))
        page = client.get(f"/use-cases/{UC}").text
    panel = page[page.index('id="realised-gains"'):page.index("<h2>Guardrail violations</h2>")]
    assert '<svg class="gain-chart"' in panel and len(re.findall(r"<rect ", panel)) == 2
    assert f'href="/rollouts/{rid}"' in panel and "CONTRADICTS the stated gain" in panel and 'class="bad"' in panel
    assert "#c0392b" in panel  # the after-bar of a contradicted promotion is drawn red


def test_agent_run_page_lists_its_decisions(steward: Any) -> None:
    rec = {"kind": "skip", "taken": False, "use_case": UC, "model_id": "openai:x", "rule": "budget.candidates_per_cycle",
           "summary": "evaluation budget: 1 candidate(s) per cycle already planned", "numbers": {"rank": 2},
           "evidence": ["rank #2"], "fingerprint": {}}
    with session_scope(steward.sessions) as s:
        run = AgentRun(trigger="cli", thread_id="t-1", status="completed", report="# r",
                       steps=[{"kind": "decision", "record": rec}])
        s.add(run)
        s.flush()
        run_id = run.id
    tokens = make_tokens(steward)
    with TestClient(create_app(steward, metrics_cache_seconds=0), raise_server_exceptions=False) as client:
        _login(client, tokens["viewer"])
        page = client.get(f"/agent-runs/{run_id}").text
    assert "budget.candidates_per_cycle" in page and "(declined)" in page and "rank=2" in page
