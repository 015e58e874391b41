"""The rollback manager: restore a snapshot's routing table and config exactly, verified, idempotent.

Routing only, never policy: the snapshot's routing table, ``fallback``, ``sticky`` and config are
restored, except the sections a policy change governs (``config["policy"]``, ``["rollout"]``,
``["guardrails"]``, ``["agent"]``, see ``POLICY_SECTIONS``), which keep their live values.  A
rollback is a safety action that is never blocked, so it must not bring back an older (looser)
policy without the approval ``set_policy`` needs; to restore older thresholds, use ``set_policy``.

Target snapshot (when none is named): the snapshot taken before the use case's most recent rollout
(active or finished); with no rollout at all, the snapshot before the latest non-rollback change.
If the live table and config already equal the target, nothing is written (idempotent) apart from
closing an active rollout.  After the write the table and config are re-read and compared with the
snapshot, inside the transaction (a mismatch rolls it back) and again after the commit.

Model statuses follow the restored table: its primaries become ``current``, its canaries
``canary``, its shadows ``shadow``; models that lost their allocation go back to ``candidate``
(the aborted rollout's candidate to ``rejected`` when ``reject_candidate``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from modelsteward.storage.restore import (
    POLICY_SECTIONS,
    Restorer,
    RollbackVerificationError,
    canonical_table,
    restored_config,
)
from modelsteward.timeutil import utc_now_naive as utcnow

if TYPE_CHECKING:
    from modelsteward.context import Steward

__all__ = ["RollbackManager", "RollbackVerificationError", "canonical_table", "restored_config", "POLICY_SECTIONS"]


class RollbackManager:
    def __init__(self, steward: Steward, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.steward = steward
        self.registry = steward.registry
        self.clock = clock or utcnow

    def rollback(
        self, use_case: str, *, actor: str, reason: str = "", snapshot_id: int | None = None,
        reject_candidate: bool = False, action: str = "rollback",
    ) -> dict[str, Any]:
        """Restore the target snapshot (see module doc); returns what was done and the live table."""
        return Restorer(self.registry).restore(use_case, actor=actor, reason=reason, snapshot_id=snapshot_id,
                                               reject_candidate=reject_candidate, action=action, now=self.clock())
