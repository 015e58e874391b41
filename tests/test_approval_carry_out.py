"""One owner of approval carry-out: the ``approval_decide`` tool decides, then resumes the waiting
agent run or executes the approved call, for the CLI, the API and the console alike."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from agent_helpers import UC, setup_use_case, shared_mlflow
from fastapi.testclient import TestClient
from server_helpers import bearer, make_tokens, promotion_scenario
from typer.testing import CliRunner

from modelsteward.errors import ApprovalRequired
from modelsteward.server import create_app
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import Approval, FineTuningJob, Rollout
from modelsteward.tools.base import TOOLS, ToolContext, call_tool, load_all_tools

STEWARD = [sys.executable, "-m", "modelsteward"]


@pytest.fixture(autouse=True)
def _tracking(shared_mlflow: str) -> str:  # noqa: F811 - the fixture imported above
    return shared_mlflow


def _status(steward: Any, aid: int) -> str:
    with session_scope(steward.sessions) as s:
        return s.get(Approval, aid).status


def _request(steward: Any, tool: str, args: dict[str, Any], actor: str = "api:operator") -> int:
    with pytest.raises(ApprovalRequired) as ei:
        call_tool(tool, args, ToolContext(steward=steward, actor=actor))
    return int(ei.value.details["approval_id"])


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every approval_decide call, by actor (the tool's function wrapped in place)."""
    load_all_tools()
    spec = TOOLS["approval_decide"]
    calls: list[str] = []

    def wrapped(ctx: ToolContext, inp: Any) -> Any:
        calls.append(ctx.actor)
        return spec.func(ctx, inp)

    monkeypatch.setitem(TOOLS, "approval_decide", dataclasses.replace(spec, func=wrapped))
    return calls


def test_cli_and_api_carry_out_through_the_one_tool(steward: Any, counted: list[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from modelsteward.cli import app

    setup_use_case(steward)
    tokens = make_tokens(steward)
    cli_aid = _request(steward, "set_policy", {"use_case": UC, "rollout": {"min_requests": 40}})
    api_aid = _request(steward, "set_policy", {"use_case": UC, "rollout": {"min_duration_s": 90}})
    monkeypatch.setenv("STEWARD_TOKEN", tokens["approver"])
    res = CliRunner().invoke(app, ["approvals", "approve", str(cli_aid), "--json"])
    assert res.exit_code == 0, res.output
    cli_out = json.loads(res.stdout)
    with TestClient(create_app(steward, gateway=False), raise_server_exceptions=False) as client:
        r = client.post(f"/api/approvals/{api_aid}/approve", headers=bearer(tokens["approver2"]), json={})
    assert r.status_code == 200, r.text
    api_out = r.json()
    assert counted == ["cli:approver", "api:approver2"]
    assert cli_out["outcome"] == api_out["outcome"] == "executed"
    assert cli_out["summary"].startswith("approved; executed set_policy") and api_out["summary"].startswith(
        "approved; executed set_policy")
    assert _status(steward, cli_aid) == _status(steward, api_aid) == "executed"
    rollout = steward.registry.get_use_case(UC).config["rollout"]
    assert rollout["min_requests"] == 40 and rollout["min_duration_s"] == 90


def test_console_carries_out_a_promotion_through_the_tool(any_steward: Any, counted: list[str]) -> None:
    import re

    ids = promotion_scenario(any_steward, requester="api:operator")
    tokens = make_tokens(any_steward)
    with TestClient(create_app(any_steward, gateway=False), raise_server_exceptions=False) as client:
        r = client.post("/login", data={"token": tokens["approver"], "next": "/approvals"}, follow_redirects=False)
        assert r.status_code == 303
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get("/approvals").text).group(1)  # type: ignore[union-attr]
        r = client.post(f"/approvals/{ids['approval']}/decide", data={"decision": "approve", "csrf": csrf},
                        follow_redirects=False)
        assert r.status_code == 303 and "executed+rollout_advance" in r.headers["location"].replace("%20", "+"), r.headers
    assert counted == ["api:approver"]
    with any_steward.sessions() as s:
        assert s.get(Rollout, ids["rollout"]).state == "completed"


def test_a_failed_execution_is_reported_and_the_decision_stands(steward: Any) -> None:
    setup_use_case(steward)
    aid = _request(steward, "retire_model", {"model_id": "openai:stable-model"})
    out: Any = call_tool("approval_decide", {"approval_id": aid, "decision": "approve"},
                         ToolContext(steward=steward, actor="cli:bob"))
    assert out.outcome == "failed" and out.summary.startswith("approved; retire_model failed: ")
    assert out.error["code"] == "conflict"
    assert steward.registry.get_model("openai:stable-model").status != "retired"


def _cli(ws: Path, *args: str, token: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STEWARD_HOME": str(ws), "STEWARD_TOKEN": token}
    env.pop("STEWARD_DATABASE_URL", None)
    return subprocess.run([*STEWARD, *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_approved_full_fine_tune_is_carried_out_on_the_cli_and_the_api(steward: Any, tmp_path: Path) -> None:
    from training_helpers import log_row, tiny_llama

    keys = ["amber", "birch", "cobalt", "delta"]
    rows = [log_row(f"f{i}", f"Door {keys[i % 4]} {i}: what is its password?",
                    f"The password of door {keys[i % 4]} {i} is tangerine {keys[(i * 3) % 4]} {i * 17}.")
            for i in range(24)]

    tiny = tiny_llama(tmp_path / "tiny")
    steward.registry.add_use_case("story", description="story game")
    steward.registry.register_model("local", "tiny", metadata={"path": str(tiny)})
    steward.logs.append_many(rows)
    steward.logs.flush()
    tokens = make_tokens(steward)
    args = {"use_case": "story", "base": "local:tiny", "method": "full", "max_steps": 3, "batch_size": 4,
            "max_seq_len": 128, "eval_every": 3, "learning_rate": 3e-3}
    cli_aid = _request(steward, "fine_tune", {**args, "name": "tiny-cli"})
    api_aid = _request(steward, "fine_tune", {**args, "name": "tiny-api"})
    proc = _cli(steward.settings.home, "approvals", "approve", str(cli_aid), "--json", token=tokens["approver"])
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["outcome"] == "executed" and out["summary"].startswith("approved; executed fine_tune"), out
    assert out["result"]["status"] == "succeeded"
    model = steward.registry.get_model("local:tiny-cli")
    assert model.kind == "fine_tuned" and (Path(model.meta["weights_path"]) / "model.safetensors").exists()
    with TestClient(create_app(steward, gateway=False), raise_server_exceptions=False) as client:
        r = client.post(f"/api/approvals/{api_aid}/approve", headers=bearer(tokens["approver"]), json={})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["outcome"] == "started_task" and body["task_id"], body
        deadline = time.monotonic() + 300
        while (task := client.get(f"/api/tasks/{body['task_id']}", headers=bearer(tokens["viewer"])).json())[
                "status"] == "running" and time.monotonic() < deadline:
            time.sleep(0.5)
    assert task["status"] == "succeeded" and task["result"]["status"] == "succeeded", task
    assert steward.registry.get_model("local:tiny-api").kind == "fine_tuned"
    assert _status(steward, cli_aid) == _status(steward, api_aid) == "executed"
    with session_scope(steward.sessions) as s:
        assert {j.status for j in s.query(FineTuningJob)} == {"succeeded"}


def test_a_decision_reads_its_call_and_result_through_the_tool_models(steward: Any) -> None:
    from modelsteward.tools.base import ToolContext, call_tool
    from modelsteward.tools.rollout import SetPolicyIn, SetPolicyOut

    setup_use_case(steward)
    aid = _request(steward, "set_policy", {"use_case": UC, "rollout": {"min_requests": 40}})
    out = call_tool("approval_decide", {"approval_id": aid, "decision": "approve"}, ToolContext(steward, actor="cli:bob"))
    assert out.outcome == "executed"
    call = out.call_input()
    assert isinstance(call, SetPolicyIn) and call.rollout == {"min_requests": 40}
    done = out.output()
    assert isinstance(done, SetPolicyOut) and done.config["rollout"]["min_requests"] == 40
