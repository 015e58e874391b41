"""Who may skip the check a model passes before it takes traffic (``tools/checks.py``, issue 29).

Policies (names as recorded in ``policy_decisions.policy``):
- ``agent_no_check`` (approval): an agent's call with ``no_check`` (``deploy``, ``rollout_advance``,
  ``usecase_add``, ``usecase_update``) needs a human approval: the check is what keeps a model that
  cannot answer from users, and only a person may decide to do without it.  A person's ``no_check``
  (CLI ``--no-check``, API ``no_check``) needs none.
This module also holds the rule of ``usecase_add``, which needs nothing else.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from modelsteward.policies.registry import Decision, Facts, rule

__all__ = ["agent_no_check", "rule_usecase_add"]


def agent_no_check(f: Facts, action: str, args: dict[str, Any]) -> list[Decision]:
    """``needs_approval`` (policy ``agent_no_check``) when an agent asks ``action`` with ``no_check``."""
    if not args.get("no_check") or not f.actor.startswith("agent:"):
        return []
    return [Decision("needs_approval", "agent_no_check",
                     f"{action} with no_check skips the model's check before it takes traffic; an agent needs a "
                     "human approval for that")]


@rule("usecase_add")
def rule_usecase_add(f: Facts, s: Session, args: dict[str, Any]) -> list[Decision]:
    """Creates a new use case (a duplicate name is refused by the registry); an agent's no_check needs an approval."""
    return agent_no_check(f, "usecase_add", args)
