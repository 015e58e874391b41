"""Issue 25 item 4: text that leaves the log store through the agent is redacted, and query
results are for operators.  Reproduced first: an operator's chat ``sql:`` query stored the logged
e-mail address unredacted in the run's steps, a viewer token read it back through
``GET /api/agent-runs/N``, the checkpoint file was world-readable, and notifications carried
arguments and reasons as they were."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from modelsteward.server import create_app
from modelsteward.server.notify import format_event
from server_helpers import bearer, make_tokens, seed

EMAIL = "jane.doe@example.org"


@pytest.fixture
def api(steward: Any) -> Iterator[tuple[TestClient, dict[str, str], Any]]:
    tokens = make_tokens(steward)
    seed(steward)
    steward.logs.append({"request_id": "pii-1", "use_case": "story", "model_id": "openai:gpt-4o-mini",
                         "messages": [{"role": "user", "content": f"write to {EMAIL} please"}],
                         "response": "done"})
    steward.logs.flush()
    with TestClient(create_app(steward, metrics_cache_seconds=0), raise_server_exceptions=False) as client:
        yield client, tokens, steward


def test_a_chat_query_is_redacted_in_the_run_and_hidden_from_viewers(api: Any) -> None:
    client, tokens, steward = api
    r = client.post("/api/chat", headers=bearer(tokens["operator"]),
                    json={"message": "sql: SELECT messages FROM logs WHERE request_id = 'pii-1'"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert EMAIL not in body["answer"] and "[EMAIL]" in body["answer"]
    run_id = body["run_id"]
    as_operator = client.get(f"/api/agent-runs/{run_id}", headers=bearer(tokens["operator"])).json()
    text = json.dumps(as_operator)
    assert EMAIL not in text and "[EMAIL]" in text  # operators see the query result, redacted
    as_viewer = client.get(f"/api/agent-runs/{run_id}", headers=bearer(tokens["viewer"])).json()
    steps = [s for s in as_viewer["steps"] if s.get("name") == "query_logs" and s.get("kind") == "tool"]
    assert steps and all("hidden" in s["result"] and s.get("output") is None for s in steps)
    assert "hidden" in as_viewer["report"]
    assert "[EMAIL]" not in json.dumps(as_viewer["steps"])
    ckpt = steward.settings.workspace / "checkpoints.db"
    assert ckpt.exists() and stat.S_IMODE(os.stat(ckpt).st_mode) == 0o600
    assert EMAIL.encode() not in ckpt.read_bytes()


def test_notifications_are_redacted_but_keep_their_links() -> None:
    title, body = format_event("approval_requested", "story", {
        "approval_id": 4, "action": "deploy", "arguments": {"note": f"asked by {EMAIL}"},
        "reason": f"user {EMAIL} said so", "requester": "agent:run-1"}, "http://127.0.0.1:8080")
    assert EMAIL not in title + body and "[EMAIL]" in body
    assert "http://127.0.0.1:8080/approvals" in body
    title, body = format_event("agent_run_failed", "story", {"run_id": 3, "trigger": "schedule",
                                                             "error": f"upstream quoted {EMAIL}"}, "http://h:1")
    assert EMAIL not in body and "Console: http://h:1/" in body
