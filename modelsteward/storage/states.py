"""The rollout states, and which of them are active: one definition each (issue 27).

A rollout is *active* while it holds a use case's traffic split (``running``, ``waiting``,
``paused``); the other states end it.  The ORM (``storage/models.py``), the ORM-free read model
(``storage/read/``), the rollout manager, the policies, the agent's observation
and the demo import these; this module imports nothing, so the read commands' fast path may too.
"""

from __future__ import annotations

__all__ = ["ROLLOUT_STATES", "ACTIVE_ROLLOUT_STATES", "MODEL_STATUSES"]

ROLLOUT_STATES = ("running", "waiting", "paused", "completed", "aborted", "rolled_back")
ACTIVE_ROLLOUT_STATES = ("running", "waiting", "paused")
# a model's statuses; ``pending``: registered at a host nobody approved; receives nothing until an admin approves the host
MODEL_STATUSES = ("discovered", "candidate", "evaluating", "shadow", "canary", "current", "retired", "rejected",
                  "pending")
