"""The agent's tools (console views, agent_run), the schedule command and the MLflow record."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from agent_helpers import CAND, STABLE, UC, pass_eval, setup_use_case, shared_mlflow

from modelsteward.agent import run_agent
from modelsteward.tools.base import ToolContext, call_tool, get_tool


@pytest.fixture(autouse=True)
def _tracking(shared_mlflow: str) -> str:
    return shared_mlflow


def test_views_are_read_only_and_agent_run_is_not(steward) -> None:  # type: ignore[no-untyped-def]
    assert not get_tool("show_rollouts").mutating and not get_tool("show_status").mutating
    assert not get_tool("agent_runs").mutating and get_tool("agent_run").mutating


def test_show_status_and_rollouts(steward, hosted_upstream) -> None:  # type: ignore[no-untyped-def]
    setup_use_case(steward, cand_url=hosted_upstream.url)  # CAND answers its check before its shadow
    pass_eval(steward)
    ctx = ToolContext(steward, actor="cli:alice")
    obs = call_tool("show_status", {"use_case": UC}, ctx).observation
    uc = obs["use_cases"][0]
    assert uc["current_model"] == STABLE and uc["deployment_version"] == 1
    cand = next(m for m in uc["models"] if m["id"] == CAND)
    assert cand["latest_test"]["passed"] and cand["latest_test"]["baseline"] == STABLE
    assert call_tool("show_rollouts", {}, ctx).rollouts == []
    call_tool("deploy", {"use_case": UC, "model_id": CAND, "strategy": "shadow"}, ctx)
    ro = call_tool("show_rollouts", {"use_case": UC, "active_only": True}, ctx).rollouts
    assert [(r.candidate, r.strategy, r.state) for r in ro] == [(CAND, "shadow", "waiting")]
    with pytest.raises(Exception, match="Unknown use case 'chta'"):
        call_tool("show_rollouts", {"use_case": "chta"}, ctx)


def test_agent_run_tool_and_run_list(steward) -> None:  # type: ignore[no-untyped-def]
    setup_use_case(steward)
    ctx = ToolContext(steward, actor="api:ops")
    out = call_tool("agent_run", {"use_case": UC, "goal": "check", "trigger": "api"}, ctx)
    assert out.status == "completed" and out.report.startswith(f"# Agent run {out.run_id}")
    runs = call_tool("agent_runs", {}, ctx).runs
    assert [(r.id, r.trigger, r.goal, r.status) for r in runs] == [(out.run_id, "api", "check", "completed")]


def test_run_is_logged_to_mlflow(steward) -> None:  # type: ignore[no-untyped-def]
    from mlflow.tracking import MlflowClient

    setup_use_case(steward)
    res = run_agent(steward, use_case=UC)
    client = MlflowClient(tracking_uri=steward.settings.tracking_uri)
    exp = client.get_experiment_by_name("steward-agent")
    [run] = client.search_runs([exp.experiment_id], f"tags.`steward.agent_run_id` = '{res.run_id}' and "
                               f"tags.`steward.workspace` = '{steward.settings.workspace}'")
    assert run.data.params["status"] == "completed" and run.data.metrics["tool_calls"] >= 1
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.md", "journal.json"} <= names
    path = client.download_artifacts(run.info.run_id, "report.md")
    with open(path) as f:
        assert f.read() == res.report


def test_schedule_cli(steward) -> None:  # type: ignore[no-untyped-def]
    setup_use_case(steward)
    env = {**os.environ, "STEWARD_HOME": str(steward.settings.home)}
    proc = subprocess.run([sys.executable, "-m", "modelsteward", "agent", "schedule", "--every", "1h", "--max-runs", "1",
                           "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    [tick] = json.loads(proc.stdout)
    assert tick["status"] == "completed" and tick["run_id"] == 1
    bad = subprocess.run([sys.executable, "-m", "modelsteward", "agent", "schedule", "--every", "soon"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 2 and "Cannot read interval 'soon'" in bad.stderr
