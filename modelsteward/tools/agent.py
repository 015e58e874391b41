"""Agent tools: read-only views for the console, and ``agent_run`` (starts one cycle).

``query_logs``, ``list_use_cases`` and ``list_models`` live in tools/logs.py and
tools/registry.py; these add what the console needs on top.  ``agent_run`` is marked mutating:
it starts a run (each of whose actions passes the guard again); the agent itself is never given
it.  The run records ``ctx.actor`` as the person who started it (whatever ``trigger`` says), and
that person may not approve what the run requests.

The agent package lies above the tools: ``modelsteward.wiring.wire()`` (called by every entry point)
hands in how to observe the world and how to run one cycle (``tools/wiring.py``); the tools never
import it.  Unwired, ``show_status`` and ``agent_run`` fail with ``not_wired``, naming ``wire()``.
"""

from __future__ import annotations

from typing import Any

import datetime as dt

from pydantic import BaseModel, Field

from modelsteward.storage import read
from modelsteward.tools.base import InputModel, ToolContext, tool
from modelsteward.tools.observation import Observation
from modelsteward.tools.wiring import agent_hooks

__all__ = ["ShowRolloutsInput", "RolloutList", "RolloutSummary", "ShowStatusInput",
           "StatusView", "AgentRunInput", "AgentRunResult", "AgentRunsInput", "AgentRunList", "AgentRunSummary"]


def _naive_iso(t: dt.datetime | None) -> str | None:
    """The registry's naive-UTC form these lists have always shown."""
    return None if t is None else t.replace(tzinfo=None).isoformat()


class ShowRolloutsInput(InputModel):
    use_case: str | None = Field(default=None, description="Only this use case.")
    active_only: bool = Field(default=False, description="Only running, waiting or paused rollouts.")
    limit: int = Field(default=20, ge=1, le=500)


class RolloutSummary(BaseModel):
    """One rollout in a list: state, step and its latest analysis (``rollout_status`` has the whole of it)."""

    id: int
    use_case: str | None
    candidate: str
    stable: str | None
    strategy: str
    state: str
    step_index: int
    steps: list[Any]
    last_analysis: dict[str, Any] | None
    reason: str
    updated_at: str


class RolloutList(BaseModel):
    rollouts: list[RolloutSummary]


@tool("show_rollouts", input_model=ShowRolloutsInput, output_model=RolloutList, mutating=False)
def show_rollouts(ctx: ToolContext, inp: ShowRolloutsInput) -> RolloutList:
    """Recent rollouts (newest first) with state, step and their latest analysis."""
    if inp.use_case:
        ctx.steward.registry.get_use_case(inp.use_case)  # NotFound, with close matches
    rows = read.rollouts(ctx.steward, use_case=inp.use_case, active_only=inp.active_only, limit=inp.limit)
    return RolloutList(rollouts=[
        RolloutSummary(id=r.id, use_case=r.use_case, candidate=r.candidate_model_id, stable=r.stable_model_id,
                       strategy=r.strategy, state=r.state, step_index=r.step_index, steps=r.steps,
                       last_analysis=(r.analyses or [None])[-1], reason=r.reason, updated_at=_naive_iso(r.updated_at) or "")
        for r in rows
    ])


class ShowStatusInput(InputModel):
    use_case: str | None = Field(default=None, description="Only this use case.")


class StatusView(BaseModel):
    observation: Observation


@tool("show_status", input_model=ShowStatusInput, output_model=StatusView, mutating=False)
def show_status(ctx: ToolContext, inp: ShowStatusInput) -> StatusView:
    """What the agent observes: routing, candidates and tests, rollouts, violations, pending approvals."""
    return StatusView(observation=agent_hooks("show_status").observe(ctx.steward, inp.use_case))


class AgentRunsInput(InputModel):
    limit: int = Field(default=20, ge=1, le=500)
    status: str | None = None


class AgentRunSummary(BaseModel):
    id: int
    trigger: str
    goal: str
    use_case: str | None
    status: str
    planner: str
    thread_id: str
    error: str | None
    started_at: str
    finished_at: str | None


class AgentRunList(BaseModel):
    runs: list[AgentRunSummary]


@tool("agent_runs", input_model=AgentRunsInput, output_model=AgentRunList, mutating=False)
def agent_runs(ctx: ToolContext, inp: AgentRunsInput) -> AgentRunList:
    """Recent agent runs (newest first): trigger, goal, status, planner, error."""
    return AgentRunList(runs=[
        AgentRunSummary(id=r.id, trigger=r.trigger, goal=r.goal, use_case=r.use_case, status=r.status, planner=r.planner,
                        thread_id=r.thread_id, error=r.error, started_at=_naive_iso(r.started_at) or "",
                        finished_at=_naive_iso(r.finished_at))
        for r in read.agent_runs(ctx.steward, status=inp.status, limit=inp.limit)
    ])


class AgentRunInput(InputModel):
    use_case: str | None = Field(default=None, description="Limit the cycle to this use case.")
    goal: str = Field(default="", max_length=4000, description="What the operator wants from this cycle.")
    max_steps: int = Field(default=20, ge=1, le=200, description="Planner turns before the run stops.")
    trigger: str = Field(default="api", pattern="^(api|cli|schedule|chat)$")


class AgentRunResult(BaseModel):
    run_id: int
    thread_id: str
    status: str
    approval_id: int | None = None
    error: str | None = None
    report: str


@tool("agent_run", input_model=AgentRunInput, output_model=AgentRunResult, mutating=True, long_running=True)
def agent_run(ctx: ToolContext, inp: AgentRunInput) -> AgentRunResult:
    """Run one agent cycle now (fails with agent_busy if another run is executing)."""
    res = agent_hooks("agent_run").run(ctx.steward, goal=inp.goal, use_case=inp.use_case, trigger=inp.trigger,
                                       max_steps=inp.max_steps, started_by=ctx.actor)
    return AgentRunResult(run_id=res.run_id, thread_id=res.thread_id, status=res.status, approval_id=res.approval_id,
                          error=res.error, report=res.report)
