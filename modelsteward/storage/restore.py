"""Restoring a snapshot of a use case's routing (the registry side of ``rollout/rollback.py``, whose
module doc states the rules): exactly, verified inside the transaction and again after the commit,
idempotent.  ``Restorer.restore`` is one transaction: the routing write, the model statuses that
follow the restored table and the rollout it closes.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from modelsteward.bounds import SECTIONS
from modelsteward.errors import NotFound, StewardError
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import Deployment, DeploymentHistory, ModelSnapshot, Rollout, UseCase
from modelsteward.storage.read.plain import rollout_dict
from modelsteward.storage.states import ACTIVE_ROLLOUT_STATES
from modelsteward.storage.status import apply_status_event, move_status, status_for

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from modelsteward.storage.registry import ModelRegistry

__all__ = ["Restorer", "RollbackVerificationError", "canonical_table", "restored_config", "POLICY_SECTIONS"]


class RollbackVerificationError(StewardError):
    code = "rollback_verification_failed"


# The config sections only ``set_policy`` (with its approval) may change; a rollback keeps them.
POLICY_SECTIONS = (*SECTIONS, "agent")


def canonical_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        ({"model_id": r["model_id"], "weight": float(r["weight"]), "role": r["role"]} for r in rows),
        key=lambda r: (r["role"], r["model_id"]),
    )


def restored_config(live: dict[str, Any], snap: dict[str, Any]) -> dict[str, Any]:
    """What a rollback writes (``ModelRegistry.config_of`` shape): the snapshot's routing settings and
    config, with the live values of the ``POLICY_SECTIONS``."""
    cfg = dict(snap.get("config") or {})
    live_cfg = live.get("config") or {}
    for key in POLICY_SECTIONS:
        if key in live_cfg:
            cfg[key] = live_cfg[key]
        else:
            cfg.pop(key, None)
    return {**snap, "config": cfg}


class Restorer:
    """Restores snapshots of the registry behind ``registry``."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self.sessions = registry.sessions

    def _dep(self, s: Session, uc: UseCase, *, lock: bool) -> Deployment | None:
        q = select(Deployment).where(Deployment.use_case_id == uc.id).options(selectinload(Deployment.allocations))
        if lock:
            q = q.with_for_update()
        return s.scalar(q)

    def _target(self, s: Session, uc: UseCase, snapshot_id: int | None) -> ModelSnapshot:
        if snapshot_id is not None:
            snap = s.get(ModelSnapshot, snapshot_id)
            if snap is None or snap.use_case_id != uc.id:
                ids = [str(i) for i in s.scalars(
                    select(ModelSnapshot.id).where(ModelSnapshot.use_case_id == uc.id).order_by(ModelSnapshot.id.desc()).limit(10)
                )]
                raise NotFound(
                    f"Snapshot {snapshot_id} does not belong to use case {uc.name!r}; recent snapshots: "
                    f"{', '.join(ids) or 'none'}.", kind="snapshot", id=snapshot_id,
                )
            return snap
        ro = s.scalars(
            select(Rollout).where(Rollout.use_case_id == uc.id, Rollout.snapshot_id.is_not(None)).order_by(Rollout.id.desc())
        ).first()
        if ro is not None and ro.snapshot_id is not None:
            snap = s.get(ModelSnapshot, ro.snapshot_id)
            assert snap is not None
            return snap
        hist = s.scalars(
            select(DeploymentHistory).where(
                DeploymentHistory.use_case_id == uc.id, DeploymentHistory.action != "rollback",
                DeploymentHistory.snapshot_id.is_not(None),
            ).order_by(DeploymentHistory.id.desc())
        ).first()
        if hist is None:
            raise NotFound(f"Use case {uc.name!r} has no earlier routing to roll back to.", use_case=uc.name)
        snap = s.get(ModelSnapshot, hist.snapshot_id)
        assert snap is not None
        return snap

    def _matches(self, s: Session, uc: UseCase, snap: ModelSnapshot) -> tuple[bool, str]:
        dep = self._dep(s, uc, lock=False)
        live = canonical_table(self.registry.routing_table(dep)) if dep else []
        want = canonical_table(list(snap.allocations or []))
        if live != want:
            return False, f"routing {live} != snapshot {want}"
        cfg = self.registry.config_of(uc)
        want_cfg = restored_config(cfg, dict(snap.config or {}))
        if cfg != want_cfg:
            return False, f"config {cfg} != snapshot {want_cfg} (policy sections kept)"
        return True, ""

    def restore(
        self, use_case: str, *, actor: str, reason: str = "", snapshot_id: int | None = None,
        reject_candidate: bool = False, action: str = "rollback", now: dt.datetime,
    ) -> dict[str, Any]:
        """Restore the target snapshot (see module doc); returns what was done and the live table."""
        with session_scope(self.sessions) as s:
            uc = self.registry.use_case_in(s, use_case)
            dep = self._dep(s, uc, lock=True)
            snap = self._target(s, uc, snapshot_id)
            ro = s.scalars(
                select(Rollout).where(Rollout.use_case_id == uc.id, Rollout.state.in_(ACTIVE_ROLLOUT_STATES))
                .order_by(Rollout.id.desc()).with_for_update()
            ).first()
            same, _ = self._matches(s, uc, snap)
            hist_id = None
            before = canonical_table(self.registry.routing_table(dep)) if dep else []
            if not same:
                _, _, hist = self.registry.write_routing(
                    s, uc, list(snap.allocations or []), action=action, actor=actor,
                    reason=reason or f"restore snapshot {snap.id}", rollout_id=ro.id if ro else None,
                    details={"target_snapshot_id": snap.id, "restored_version": snap.deployment_version},
                    config=restored_config(self.registry.config_of(uc), dict(snap.config or {})),
                )
                hist_id = hist.id
                s.flush()
                s.expire_all()
                uc = self.registry.use_case_in(s, use_case)
                ok, why = self._matches(s, uc, snap)
                if not ok:
                    raise RollbackVerificationError(f"Rollback of {use_case!r} did not restore snapshot {snap.id}: {why}.")
                self._restore_statuses(s, uc, snap, before, ro, reject_candidate, actor)
            closed = None
            if ro is None and not same:
                # A finished rollout whose result was just undone is marked rolled back as well.
                ro = s.scalars(
                    select(Rollout).where(Rollout.use_case_id == uc.id, Rollout.snapshot_id == snap.id)
                    .order_by(Rollout.id.desc())
                ).first()
            if ro is not None and ro.state != "rolled_back" and (ro.state in ACTIVE_ROLLOUT_STATES or not same):
                ro.state = "rolled_back"
                ro.analyses = [*(ro.analyses or []), {
                    "event": "rolled_back", "at": now.isoformat(timespec="seconds"), "actor": actor,
                    "reason": reason, "snapshot_id": snap.id, "action": action,
                }]
                closed = rollout_dict(ro)
                if reject_candidate and same:
                    m = self.registry.model_in(s, ro.candidate_model_id)
                    move_status(s, m, "rejected", uc, actor=actor, reason=reason)
            snap_id, snap_alloc = snap.id, canonical_table(list(snap.allocations or []))
        # Verify again after the commit, from a fresh session.
        with session_scope(self.sessions) as s:
            uc2 = self.registry.use_case_in(s, use_case)
            snap2 = s.get(ModelSnapshot, snap_id)
            assert snap2 is not None
            ok, why = self._matches(s, uc2, snap2)
        if not ok:
            raise RollbackVerificationError(f"After commit, {use_case!r} does not match snapshot {snap_id}: {why}.")
        dep_now = self.registry.deployment(use_case)
        return {
            "use_case": use_case, "snapshot_id": snap_id, "changed": not same, "history_id": hist_id,
            "version": dep_now.version, "routing": snap_alloc, "verified": True, "rollout": closed,
        }

    def _restore_statuses(
        self, s: Session, uc: UseCase, snap: ModelSnapshot, before: list[dict[str, Any]], ro: Rollout | None,
        reject: bool, actor: str = "system",
    ) -> None:
        after = {r["model_id"]: r["role"] for r in snap.allocations or []}
        role_status = {"primary": "current", "canary": "canary", "shadow": "shadow"}
        why = f"restore snapshot {snap.id}"
        for mid, role in after.items():
            m = self.registry.model_in(s, mid)
            if status_for(s, m, uc.id) != role_status[role]:
                apply_status_event(s, m, "restored", uc, to=role_status[role], actor=actor, reason=why)
        for r in before:
            if r["model_id"] in after:
                continue
            m = self.registry.model_in(s, r["model_id"])
            blamed = reject and ro is not None and m.id == ro.candidate_model_id
            move_status(s, m, "rejected" if blamed else "rolled_back", uc, actor=actor, reason=why)
