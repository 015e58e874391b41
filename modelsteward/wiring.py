"""The composition root: ``wire()`` hands the agent's entry points to the tools.

The tools lie below the agent and never import it; what they need of it (observe the world, run a
cycle, resume a run after a decision) is handed in here, explicitly, by every entry point: the CLI's
``main``, the server's app factory and control loop, the demo.  Nothing depends on a module having
been imported for its side effect.  The agent itself is imported only when a tool first calls it,
so wiring costs a CLI command nothing (``steward --help`` stays fast).  Calling ``wire()`` twice is
harmless.  (The gateway alone, ``python -m modelsteward.gateway``, calls no tool and needs no wiring.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelsteward.tools.wiring import AgentHooks, install, is_wired

if TYPE_CHECKING:
    from modelsteward.context import Steward
    from modelsteward.tools.observation import Observation

__all__ = ["wire", "is_wired"]


def _observe(steward: Steward, use_case: str | None) -> Observation:
    from modelsteward.agent.observe import observe

    return observe(steward, use_case)


def _run(steward: Steward, **kwargs: Any) -> Any:
    from modelsteward.agent.runner import run_agent

    return run_agent(steward, **kwargs)


def _resume(steward: Steward, approval_id: int) -> Any:
    from modelsteward.agent.runner import resume_after_decision

    return resume_after_decision(steward, approval_id)


def wire() -> None:
    """Hand the agent's entry points to the tools (``show_status``, ``agent_run``, ``approval_decide``)."""
    install(AgentHooks(observe=_observe, run=_run, resume=_resume))
