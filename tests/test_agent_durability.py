"""Durability: a run killed mid-way resumes from its checkpoint without repeating completed calls;
one agent execution at a time; the schedule neither overlaps nor runs a missed slot twice."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from agent_helpers import shared_mlflow, notes, setup_use_case

from modelsteward.agent import AgentBusy, LLMPlanner, run_agent
from modelsteward.agent.runner import agent_lock
from modelsteward.agent.scheduler import next_due, parse_every, run_schedule
from modelsteward.errors import InvalidInput
from modelsteward.fakes.llm import ScriptedLLM
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import AgentRun, utcnow

TESTS = Path(__file__).resolve().parent

CHILD = """
import sys
sys.path.insert(0, {tests!r})
import agent_helpers  # registers the test tools
from modelsteward.context import open_steward
from modelsteward.agent import run_agent
st = open_steward()
res = run_agent(st, goal="note, slow, note")
print(res.status)
"""


@pytest.fixture(autouse=True)
def _tracking(shared_mlflow: str) -> str:
    return shared_mlflow


@pytest.mark.slow
def test_killed_run_resumes_without_repeating_completed_calls(steward, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    setup_use_case(steward)
    script = [
        {"tool_calls": [{"id": "a", "name": "t_note", "arguments": {"text": "one"}}]},
        {"tool_calls": [{"id": "b", "name": "t_slow", "arguments": {}}]},
        {"tool_calls": [{"id": "c", "name": "t_note", "arguments": {"text": "two"}}]},
        {"content": "All done."},
    ]
    with ScriptedLLM(script) as fake:
        env = {**os.environ, "STEWARD_AGENT_LLM": "openai:scripted", "OPENAI_BASE_URL": fake.url,
               "OPENAI_API_KEY": "k", "STEWARD_HOME": str(steward.settings.home)}
        child = subprocess.Popen([sys.executable, "-c", CHILD.format(tests=str(TESTS))], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        started = steward.settings.workspace / "t_slow.started"
        deadline = time.monotonic() + 120
        while not started.exists():
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the child never reached the slow tool"
            time.sleep(0.1)
        os.killpg(child.pid, signal.SIGKILL)  # killed while the slow call is in flight
        child.wait(timeout=30)
        assert notes(steward) == ["one"] and fake.served == 2
        with session_scope(steward.sessions) as s:
            killed = s.query(AgentRun).one()
            assert killed.status == "running"

        monkeypatch.setenv("STEWARD_AGENT_LLM", "openai:scripted")
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        monkeypatch.setenv("OPENAI_API_KEY", "k")
        res = run_agent(steward, planner=LLMPlanner("scripted", base_url=fake.url, api_key="k"))
        # the killed run resumed first: planner turns 3 and 4, then the new run's one turn
        assert fake.served == 4 and len(fake.requests) == 5
    assert res.status == "completed"
    assert notes(steward) == ["one", "two"]  # "one" was not repeated
    assert len(started.read_text().splitlines()) == 2  # only the call in flight at the kill ran again
    with session_scope(steward.sessions) as s:
        old = s.get(AgentRun, killed.id)
        assert old.status == "completed" and "All done." in old.report
        tools = [e["name"] for e in old.steps if e["kind"] == "tool"]
        assert tools == ["t_note", "t_slow", "t_note"]


def test_one_execution_at_a_time(steward) -> None:  # type: ignore[no-untyped-def]
    with agent_lock(steward):
        with pytest.raises(AgentBusy, match="Another agent run"):
            run_agent(steward)
    assert run_agent(steward).status == "completed"


def test_parse_every() -> None:
    assert parse_every("1h") == dt.timedelta(hours=1)
    assert parse_every("1h30m") == dt.timedelta(minutes=90)
    assert parse_every("45s") == dt.timedelta(seconds=45)
    for bad in ("", "often", "1x", "0s"):
        with pytest.raises(InvalidInput):
            parse_every(bad)


def test_schedule_skips_when_busy_and_never_runs_a_missed_slot_twice(steward) -> None:  # type: ignore[no-untyped-def]
    every = dt.timedelta(hours=1)
    # a scheduled run 3 hours ago: three slots were missed, exactly one run is due now
    with session_scope(steward.sessions) as s:
        s.add(AgentRun(trigger="schedule", goal="", status="completed", thread_id="old", planner="playbook",
                       steps=[], started_at=utcnow() - dt.timedelta(hours=3)))
    assert next_due(steward, every) <= utcnow()
    slept: list[float] = []
    ticks = run_schedule(steward, every, max_runs=1, sleep=slept.append)
    assert [t.status for t in ticks] == ["completed"] and slept == []
    # the next one is a full period after that run, not another catch-up
    assert next_due(steward, every) > utcnow() + dt.timedelta(minutes=59)
    # while another execution holds the lock, a due tick is skipped, not queued
    with session_scope(steward.sessions) as s:
        for r in s.query(AgentRun).filter_by(trigger="schedule"):
            r.started_at = utcnow() - dt.timedelta(hours=2)
    with agent_lock(steward):
        ticks = run_schedule(steward, every, max_runs=1, sleep=slept.append)
    assert [t.status for t in ticks] == ["skipped_busy"]
    with session_scope(steward.sessions) as s:
        assert s.query(AgentRun).filter_by(trigger="schedule").count() == 2
