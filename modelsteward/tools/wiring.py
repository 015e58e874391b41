"""How the tools reach the agent: the entry points ``modelsteward.wiring.wire()`` hands in.

The agent package lies above the tools, so the tools never import it.  Every entry point (the CLI,
the server's app factory and control loop, the demo) calls ``wire()`` once; ``show_status``,
``agent_run`` and ``approval_decide`` (when an agent run waits on the approval) then find the agent
here.  Without it they fail with ``NotWired``, naming ``wire()`` -- never silently skip the agent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelsteward.errors import StewardError

if TYPE_CHECKING:  # light on purpose: the CLI wires before every command, --help included
    from modelsteward.context import Steward
    from modelsteward.tools.observation import Observation

__all__ = ["AgentHooks", "NotWired", "install", "uninstall", "agent_hooks", "is_wired"]


class NotWired(StewardError):
    """A tool needed the agent, but this process never called ``modelsteward.wiring.wire()``."""

    code = "not_wired"
    http_status = 500


@dataclass(frozen=True)
class AgentHooks:
    """The agent's entry points as the tools see them.

    ``observe(steward, use_case) -> Observation``: the world the agent plans on;
    ``run(steward, goal=, use_case=, trigger=, max_steps=, started_by=)`` -> a result with ``run_id,
    thread_id, status, approval_id, error, report``; ``resume(steward, approval_id)`` -> such a result,
    or None when no run waits on that approval."""

    observe: Callable[[Steward, str | None], Observation]
    run: Callable[..., Any]
    resume: Callable[[Steward, int], Any]


_installed: list[AgentHooks] = []


def install(hooks: AgentHooks) -> None:
    """Called by ``modelsteward.wiring.wire()`` (the composition root); a second call replaces the first."""
    _installed[:] = [hooks]


def uninstall() -> AgentHooks | None:
    """Forget the agent (tests that check the unwired failure); returns what was installed."""
    old = _installed[0] if _installed else None
    _installed.clear()
    return old


def is_wired() -> bool:
    return bool(_installed)


def agent_hooks(tool_name: str) -> AgentHooks:
    """The agent's entry points; ``NotWired`` (naming the tool and ``wire()``) when no entry point wired them."""
    if not _installed:
        raise NotWired(f"Tool {tool_name!r} needs the agent, but this process did not wire it: call "
                       "modelsteward.wiring.wire() once at start-up (every entry point -- CLI, server, demo -- does).",
                       tool=tool_name)
    return _installed[0]
