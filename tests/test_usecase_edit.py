"""Editing and deleting use cases: tools with policy rules, the CLI (through the installed console
script, as a user runs it) and ``PATCH`` / ``DELETE /api/use-cases/{use_case}``.

Before, a use case could not be changed after ``usecase add`` at all; the policies reproduced
here are the ones the change must not open: a live use case's routing settings change only with
an approval, a use case whose application still sends requests (or that is mid-rollout) cannot be
deleted, and a refusal changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from modelsteward.errors import ApprovalRequired, InvalidInput, NotFound, PolicyDenied
from modelsteward.tools import call_tool
from modelsteward.tools.base import ToolContext
from server_helpers import bearer, make_tokens, seed

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name("steward")


def steward_cli(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.exists(), f"the console script {SCRIPT} is missing: install the project (make install)"
    env = {**os.environ, "STEWARD_HOME": str(ws), "PYTHONPATH": str(REPO)}
    for k in ("STEWARD_DATABASE_URL", "STEWARD_LOG_DIR", "STEWARD_DEBUG", "STEWARD_TOKEN"):
        env.pop(k, None)
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=120, cwd=ws.parent)


def one_error(p: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    assert "Traceback" not in p.stderr, p.stderr
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def show(ws: Path, name: str) -> dict[str, Any]:
    p = steward_cli(ws, "usecase", "show", name, "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_cli_update_and_delete(tmp_path: Path, hosted_upstream: Any) -> None:  # the models answer their check
    ws = tmp_path / "ws"
    for args in (["init"], ["models", "register", "openai", "m1"], ["models", "register", "openai", "m2"],
                 ["usecase", "add", "chat", "--description", "d", "--model", "openai:m1", "--budget-usd", "10"],
                 ["usecase", "add", "spare", "--description", "unused"]):
        assert steward_cli(ws, *args).returncode == 0
    before = show(ws, "chat")

    # a partial update of settings that do not route traffic: exit 0, the rest unchanged
    p = steward_cli(ws, "usecase", "update", "chat", "--description", "stories", "--latency-slo-ms", "800",
                    "--weights", "quality=2,cost=1,latency=1", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert sorted(out["changed"]) == ["description", "latency_slo_ms", "weights"]
    assert out["requirements"]["latency_slo_ms"] == 800 and out["weights"]["quality"] == pytest.approx(0.5)
    assert out["monthly_budget_usd"] == before["monthly_budget_usd"] and out["fallback"] == []

    # bad input: one line, exit 2, nothing changed
    one_error(steward_cli(ws, "usecase", "update", "chat", "--golden-set", str(tmp_path / "nope.jsonl"),
                          "--description", "changed?"), 2, "invalid_input", "golden_set", "nope.jsonl")
    not_json = tmp_path / "golden.txt"
    not_json.write_text("this is not json\n")
    one_error(steward_cli(ws, "usecase", "update", "chat", "--golden-set", str(not_json)), 2, "golden_set")
    one_error(steward_cli(ws, "usecase", "update", "chat", "--budget-usd", "abc"), 2, "usage", "--budget-usd")
    one_error(steward_cli(ws, "usecase", "update", "chat", "--clear", "banana"), 2, "invalid_input", "clear")
    one_error(steward_cli(ws, "usecase", "update", "chat"), 2, "invalid_input", "Nothing to update")
    one_error(steward_cli(ws, "usecase", "update", "chat", "--fallback", "openai:ghost"), 1, "not_found", "ghost")
    one_error(steward_cli(ws, "usecase", "update", "nope", "--description", "x"), 1, "not_found", "nope")
    now = show(ws, "chat")
    assert now["description"] == "stories" and now["golden_set_path"] is None and now["fallback"] == []

    # a valid golden set is stored (absolute), and can be cleared again
    golden = tmp_path / "golden.jsonl"
    golden.write_text(json.dumps({"prompt": "hi", "reference": "hello"}) + "\n")
    assert steward_cli(ws, "usecase", "update", "chat", "--golden-set", str(golden)).returncode == 0
    assert show(ws, "chat")["golden_set_path"] == str(golden.resolve())
    assert steward_cli(ws, "usecase", "update", "chat", "--clear", "golden_set").returncode == 0
    assert show(ws, "chat")["golden_set_path"] is None

    # the budget of a live use case needs an approval: exit 1 naming it, budget unchanged
    one_error(steward_cli(ws, "usecase", "update", "chat", "--budget-usd", "500"), 1, "approval_required",
              "live_usecase_change")
    assert show(ws, "chat")["monthly_budget_usd"] == before["monthly_budget_usd"]
    # a use case with no live routing changes without one
    p = steward_cli(ws, "usecase", "update", "spare", "--budget-usd", "5", "--fallback", "openai:m2", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["fallback"] == ["openai:m2"]

    # delete: refused while requests arrive, allowed for an idle use case
    logs = tmp_path / "rows.jsonl"
    ts = dt.datetime.now(dt.timezone.utc).isoformat()
    logs.write_text("".join(json.dumps({"ts": ts, "request_id": f"q{i}", "use_case": "chat", "model_id": "openai:m1",
                                        "role": "primary", "messages": [{"role": "user", "content": "hi"}],
                                        "response": "yo", "status": "ok"}) + "\n" for i in range(3)))
    assert steward_cli(ws, "logs", "import", str(logs)).returncode == 0
    one_error(steward_cli(ws, "usecase", "delete", "chat"), 1, "policy_denied", "usecase_has_traffic")
    assert show(ws, "chat")["name"] == "chat"
    p = steward_cli(ws, "usecase", "delete", "spare", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["deleted"] is True
    one_error(steward_cli(ws, "usecase", "show", "spare"), 1, "not_found")
    one_error(steward_cli(ws, "usecase", "delete", "spare"), 1, "not_found")


# ---------------------------------------------------------------------- tools and policies
def _ctx(steward: Any, actor: str = "cli:alice", **kw: Any) -> ToolContext:
    return ToolContext(steward=steward, actor=actor, **kw)


@pytest.fixture
def live(steward: Any, hosted_upstream: Any) -> Any:  # new fallback models answer their check (tools/checks.py)
    reg = steward.registry
    reg.register_model("openai", "m1")
    reg.register_model("openai", "m2")
    reg.add_use_case("chat", description="d", model="openai:m1", monthly_budget_usd="10")
    reg.add_use_case("idle", description="no traffic, nothing live")
    return steward


def test_a_live_routing_change_needs_an_approval_then_applies(live: Any) -> None:
    st = live
    with pytest.raises(ApprovalRequired) as err:
        call_tool("usecase_update", {"use_case": "chat", "fallback": ["openai:m2"], "budget_usd": "25"},
                  _ctx(st, "cli:alice"))
    assert "live_usecase_change" in err.value.message and "fallback" in err.value.message
    uc = st.registry.get_use_case("chat")
    assert uc.fallback == [] and float(uc.monthly_budget_usd) == 10  # nothing changed on refusal
    # the same values again need nothing; a non-routing field needs nothing
    call_tool("usecase_update", {"use_case": "chat", "budget_usd": "10", "description": "x"}, _ctx(st))
    # another person approves: the approved call is carried out
    out = call_tool("approval_decide", {"approval_id": err.value.details["approval_id"], "decision": "approve"},
                    _ctx(st, "cli:bob"))
    assert out.outcome == "executed", out
    uc = st.registry.get_use_case("chat")
    assert uc.fallback == ["openai:m2"] and float(uc.monthly_budget_usd) == 25


def test_update_validates_like_add(live: Any, tmp_path: Path) -> None:
    st = live
    bad: list[dict[str, Any]] = [
        {"use_case": "idle", "golden_set": str(tmp_path / "missing.jsonl")},
        {"use_case": "idle", "weights": {"quality": -1}},
        {"use_case": "idle", "requires": ["telepathy"]},
        {"use_case": "idle", "budget_usd": -5},
        {"use_case": "idle", "fallback": ["openai:m2"], "clear": ["fallback"]},
        {"use_case": "idle", "banana": 1},
    ]
    for args in bad:
        with pytest.raises(InvalidInput):
            call_tool("usecase_update", args, _ctx(st))
    with pytest.raises(NotFound):
        call_tool("usecase_update", {"use_case": "idle", "fallback": ["openai:ghost"]}, _ctx(st))
    uc = st.registry.get_use_case("idle")
    assert uc.fallback == [] and uc.golden_set_path is None and uc.monthly_budget_usd is None


def test_delete_refused_during_rollout_and_for_an_agent(live: Any) -> None:
    st = live
    from modelsteward.rollout import RolloutManager

    st.registry.register_model("openai", "m3", status="candidate")
    RolloutManager(st).deploy("chat", "openai:m3", "shadow", actor="cli:alice")
    with pytest.raises(PolicyDenied, match="usecase_in_rollout"):
        call_tool("usecase_delete", {"use_case": "chat"}, _ctx(st))
    assert st.registry.get_use_case("chat").name == "chat"
    with pytest.raises(ApprovalRequired, match="agent_usecase_delete"):
        call_tool("usecase_delete", {"use_case": "idle"}, _ctx(st, "agent:run-1"))
    assert st.registry.get_use_case("idle").name == "idle"
    out = call_tool("usecase_delete", {"use_case": "idle"}, _ctx(st))
    assert out.deleted  # type: ignore[attr-defined]
    from modelsteward.agent import EXCLUDED_TOOLS

    assert {"usecase_update", "usecase_delete"} <= EXCLUDED_TOOLS


# ---------------------------------------------------------------------- API
@pytest.fixture
def api(steward: Any) -> Any:
    from modelsteward.server import create_app

    tokens = make_tokens(steward)
    ids = seed(steward, logs=4)  # "story": live, mid-rollout, with requests in the last hour
    steward.registry.add_use_case("idle", description="nothing live")
    with TestClient(create_app(steward, metrics_cache_seconds=0), raise_server_exceptions=False) as client:
        yield client, tokens, ids, steward


def test_api_patch_and_delete(api: Any) -> None:
    client, tokens, _, st = api
    h = bearer(tokens["operator"])
    r = client.patch("/api/use-cases/story", json={"description": "new", "latency_slo_ms": 900}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["description"] == "new" and body["requirements"]["latency_slo_ms"] == 900
    assert sorted(body["changed"]) == ["description", "latency_slo_ms"]
    # an unknown field is refused, naming it (monthly_budget_usd is the response's name, not the input's)
    r = client.patch("/api/use-cases/story", json={"monthly_budget_usd": 5}, headers=h)
    assert r.status_code == 422 and "monthly_budget_usd" in r.text
    r = client.patch("/api/use-cases/story", json={"budget_usd": "lots"}, headers=h)
    assert r.status_code == 422 and "budget_usd" in r.text
    assert client.patch("/api/use-cases/nope", json={"description": "x"}, headers=h).status_code == 404
    assert client.patch("/api/use-cases/story", json={"description": "x"},
                        headers=bearer(tokens["viewer"])).status_code == 403
    # a live routing change answers 202 with the pending approval
    r = client.patch("/api/use-cases/story", json={"fallback": ["local:smollm2-135m-instruct"]}, headers=h)
    assert r.status_code == 202 and r.json()["code"] == "approval_required", r.text
    assert st.registry.get_use_case("story").fallback == []
    # delete: traffic and an active rollout deny it (403 policy_denied, like every policy refusal)
    r = client.delete("/api/use-cases/story", headers=h)
    assert r.status_code == 403 and r.json()["code"] == "policy_denied", r.text
    assert "usecase_has_traffic" in r.json()["message"] and "usecase_in_rollout" in r.json()["message"]
    assert client.get("/api/use-cases/story", headers=h).status_code == 200
    assert client.delete("/api/use-cases/nope", headers=h).status_code == 404
    r = client.delete("/api/use-cases/idle", headers=h)
    assert r.status_code == 200 and r.json()["deleted"] is True
    assert client.get("/api/use-cases/idle", headers=h).status_code == 404
    # models show their per-use-case statuses
    m = client.get("/api/models/openai:gpt-4o-mini", headers=h).json()
    assert m["use_case_statuses"] == {"story": "current"}
