"""The meta-management agent: a LangGraph state machine over the typed tools.

observe -> plan -> guard -> (approval interrupt) -> act -> verify -> plan ... -> report.
Entry points: ``run_agent`` (one cycle), ``resume_run`` (a killed run),
``resume_after_decision`` (after a person approved or rejected), ``run_schedule``, ``ChatSession``.
"""

from modelsteward.agent.graph import EXCLUDED_TOOLS, AgentRuntime, build_graph, validate_toolset
from modelsteward.agent.llm import LLMPlanner
from modelsteward.agent.planners import ChatIntentPlanner, Planner, PlaybookPlanner
from modelsteward.agent.runner import (
    AgentBusy,
    AgentResult,
    agent_toolset,
    make_planner,
    resume_after_decision,
    resume_orphans,
    resume_run,
    run_agent,
)

__all__ = [
    "AgentBusy",
    "AgentResult",
    "AgentRuntime",
    "ChatIntentPlanner",
    "EXCLUDED_TOOLS",
    "LLMPlanner",
    "Planner",
    "PlaybookPlanner",
    "agent_toolset",
    "build_graph",
    "make_planner",
    "resume_after_decision",
    "resume_orphans",
    "resume_run",
    "run_agent",
    "validate_toolset",
]
