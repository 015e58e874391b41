"""What the agent graph's nodes close over (not checkpointed): ``AgentRuntime``.

Its own module so that the graph and the report (which the graph renders) both import it from
below instead of from each other (issue 27).  ``agent.graph`` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelsteward.agent.planners import Planner
from modelsteward.context import Steward
from modelsteward.evals.runner import CycleCache
from modelsteward.tools.base import ToolContext, ToolSpec

__all__ = ["AgentRuntime"]


@dataclass
class AgentRuntime:
    """What the nodes close over (not checkpointed): workspace, planner, bound tools, identity, and
    the cycle's cache of baseline generations (``eval_cache``: made with the runtime, handed to every
    tool call, gone with it; a resumed run starts with an empty one)."""

    steward: Steward
    planner: Planner
    tools: dict[str, ToolSpec]
    run_id: int
    thread_id: str
    actor: str = ""
    eval_cache: CycleCache = field(default_factory=CycleCache)

    def ctx(self, approval_id: int | None = None) -> ToolContext:
        return ToolContext(steward=self.steward, actor=self.actor or f"agent:run-{self.run_id}",
                           approval_id=approval_id, agent_run_id=self.run_id, thread_id=self.thread_id,
                           eval_cache=self.eval_cache)
