"""The registry side of rollouts (the state machine is ``rollout/manager.py``; its module doc states
the rules).  Every step change is ONE transaction here: allocations, snapshot and history
(``ModelRegistry.write_routing``), the model statuses it moves and the ``rollouts`` row, so a crash
leaves the old table or the new one, never a mix; leader fencing applies to every write.  What
the routing of a step is, the manager decides and hands in (``route`` callbacks); rollouts go out
as ``RowView`` copies or the ``rollout_dict`` shape.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from modelsteward.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import Allocation, Deployment, Model, Rollout, UseCase
from modelsteward.storage.read.plain import rollout_dict
from modelsteward.storage.states import ACTIVE_ROLLOUT_STATES
from modelsteward.storage.status import apply_status_event, move_status, status_for
from modelsteward.storage.views import RowView, view, view_of

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from modelsteward.storage.registry import ModelRegistry

__all__ = ["RolloutStore"]

Table = list[dict[str, Any]]
# deploy: (use case, stable model id) -> (the step plan, the first step's routing table)
StartRoute = Callable[[RowView, "str | None"], tuple[list[float], Table]]
# step: (use case, rollout, step index) -> the step's routing table
StepRoute = Callable[[RowView, RowView, int], Table]


def _event(ro: Rollout, kind: str, now: dt.datetime, **extra: Any) -> None:
    ro.analyses = [*(ro.analyses or []), {"event": kind, "at": now.isoformat(timespec="seconds"), **extra}]


class RolloutStore:
    """Rollout transactions over the registry behind ``registry``."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self.sessions = registry.sessions

    # ------------------------------------------------------------------ reading
    @staticmethod
    def _active_in(s: Session, uc_id: int, *, lock: bool = False) -> Rollout | None:
        q = select(Rollout).where(Rollout.use_case_id == uc_id, Rollout.state.in_(ACTIVE_ROLLOUT_STATES)).order_by(Rollout.id.desc())
        if lock:
            q = q.with_for_update()
        return s.scalars(q).first()

    def active(self, use_case: str) -> RowView | None:
        with session_scope(self.sessions) as s:
            return view(self._active_in(s, self.registry.use_case_in(s, use_case).id))

    def latest(self, use_case: str) -> RowView | None:
        with session_scope(self.sessions) as s:
            uc = self.registry.use_case_in(s, use_case)
            return view(s.scalars(select(Rollout).where(Rollout.use_case_id == uc.id).order_by(Rollout.id.desc())).first())

    def get(self, rollout_id: int) -> RowView:
        with session_scope(self.sessions) as s:
            ro = s.get(Rollout, rollout_id)
            if ro is None:
                raise NotFound(f"Unknown rollout {rollout_id}.")
            return view_of(ro)

    def _require_active(self, s: Session, uc: UseCase, *, lock: bool = False) -> Rollout:
        ro = self._active_in(s, uc.id, lock=lock)
        if ro is None:
            last = s.scalars(select(Rollout).where(Rollout.use_case_id == uc.id).order_by(Rollout.id.desc())).first()
            tail = f" (latest rollout {last.id} is {last.state})" if last else ""
            raise IllegalTransition(
                f"Use case {uc.name!r} has no active rollout{tail}; start one with `steward deploy`.", use_case=uc.name,
            )
        return ro

    def require_active(self, use_case: str) -> tuple[RowView, RowView]:
        """(use case, its active rollout); ``IllegalTransition`` when none is active."""
        with session_scope(self.sessions) as s:
            uc = self.registry.use_case_in(s, use_case)
            return view_of(uc), view_of(self._require_active(s, uc))

    # ------------------------------------------------------------------ deploy
    def start(self, use_case: str, model_id: str, strategy: str, *, actor: str, reason: str, now: dt.datetime,
              retire_previous: bool, route: StartRoute) -> tuple[dict[str, Any], Table]:
        """Start a rollout; the first step's routing goes live in the same transaction.  Returns the
        rollout (``rollout_dict`` with ``history_id``) and the live table."""
        with session_scope(self.sessions) as s:
            uc = self.registry.use_case_in(s, use_case)
            s.scalar(select(Deployment).where(Deployment.use_case_id == uc.id).with_for_update())  # serialise deploys
            m = self.registry.model_in(s, model_id)
            st = status_for(s, m, uc.id)
            if st in ("retired", "rejected"):
                where = "" if st == m.status and st == "retired" else f" on {use_case!r}"
                raise IllegalTransition(
                    f"Model {model_id} is {st}{where}; a new passing evaluation on {use_case!r} (`steward eval "
                    f"--use-case {use_case} --candidate {model_id}`) makes it a candidate there again"
                    + (" (a retired model: register it again as a candidate first)" if st == "retired" else "") + ".",
                    model=model_id, status=st,
                )
            cur = self._active_in(s, uc.id)
            if cur is not None:
                raise Conflict(
                    f"Use case {use_case!r} already has rollout {cur.id} ({cur.strategy} of {cur.candidate_model_id}, "
                    f"{cur.state}); advance, abort or roll it back first.", rollout_id=cur.id,
                )
            dep = s.scalar(select(Deployment).where(Deployment.use_case_id == uc.id))
            prim = [a for a in (dep.allocations if dep else []) if a.role == "primary"]
            stable = max(prim, key=lambda a: a.weight).model_id if prim else None
            if stable == model_id:
                raise Conflict(f"Model {model_id} is already the live primary of {use_case!r}; nothing to deploy.")
            if stable is None and strategy != "full":
                raise InvalidInput(f"Use case {use_case!r} has no live model to compare with; use --strategy full.")
            plan, table = route(view_of(uc), stable)
            ro = Rollout(
                use_case_id=uc.id, candidate_model_id=model_id, stable_model_id=stable, strategy=strategy,
                steps=plan, step_index=0, state="waiting", step_started_at=now, actor=actor, reason=reason,
                analyses=[{"event": "deploy", "at": now.isoformat(timespec="seconds"), "actor": actor,
                           "retire_previous": bool(retire_previous), "strategy": strategy}],
            )
            s.add(ro)
            s.flush()
            _, snap, hist = self.registry.write_routing(
                s, uc, table, action="deploy", actor=actor, reason=reason or f"{strategy} rollout of {model_id}",
                rollout_id=ro.id, details={"strategy": strategy, "step_index": 0},
            )
            ro.snapshot_id = snap.id
            if strategy == "full":
                self._complete(s, uc, ro, m, now)
            else:
                apply_status_event(s, m, "shadow_started" if strategy == "shadow" else "canary_started", uc,
                                   actor=actor, reason=f"rollout {ro.id}")
            s.flush()
            out = rollout_dict(ro)
            out["history_id"] = hist.id
        return out, table

    def _complete(self, s: Session, uc: UseCase, ro: Rollout, cand: Model, now: dt.datetime) -> None:
        ro.state = "completed"
        apply_status_event(s, cand, "promoted", uc, actor=ro.actor, reason=f"rollout {ro.id} completed")
        retire = any(e.get("retire_previous") for e in (ro.analyses or []) if e.get("event") == "deploy")
        if ro.stable_model_id and ro.stable_model_id != cand.id:
            old = self.registry.model_in(s, ro.stable_model_id)
            move_status(s, old, "retired" if retire else "replaced", uc, actor=ro.actor,
                        reason=f"replaced by {cand.id} (rollout {ro.id})")
        _event(ro, "completed", now)

    # ------------------------------------------------------------------ steps
    def step_to(self, use_case: str, index: int, *, actor: str, reason: str, now: dt.datetime,
                expect_index: int | None, analysis: dict[str, Any] | None, route: StepRoute) -> dict[str, Any]:
        """Move the active rollout to step ``index`` in one transaction (``analysis``: the one that
        justified the step, recorded in the same transaction)."""
        with session_scope(self.sessions) as s:
            uc = self.registry.use_case_in(s, use_case)
            ro = self._require_active(s, uc, lock=True)
            if expect_index is not None and ro.step_index != expect_index:
                raise Conflict(f"Rollout {ro.id} moved to step {ro.step_index} meanwhile (expected {expect_index}); retry.")
            steps = list(ro.steps or [])
            if not 0 <= index < len(steps):
                raise InvalidInput(f"Rollout {ro.id} has steps {steps}; step {index} does not exist.")
            cand = self.registry.model_in(s, ro.candidate_model_id)
            table = route(view_of(uc), view_of(ro), index)
            if ro.strategy == "shadow":
                action = "shadow_complete"
            else:
                action = "promote" if steps[index] >= 100 else "rollout_step"
            _, _, hist = self.registry.write_routing(
                s, uc, table, action=action, actor=actor, reason=reason, rollout_id=ro.id,
                details={"step_index": index, "weight": steps[index], **({"analysis": analysis} if analysis else {})},
            )
            if analysis is not None:
                ro.analyses = [*(ro.analyses or []), {"event": "analysis", **analysis}]
            ro.step_index = index
            ro.step_started_at = now
            ro.state = "waiting"
            _event(ro, "step", now, step_index=index, weight=steps[index], actor=actor)
            if ro.strategy == "shadow":
                ro.state = "completed"
                move_status(s, cand, "shadow_passed", uc, actor=actor, reason=f"rollout {ro.id}: shadow passed")
                cand.meta = {**(cand.meta or {}), "shadow_passed": {"use_case": uc.name, "rollout_id": ro.id,
                                                                   "at": now.isoformat(timespec="seconds")}}
                _event(ro, "completed", now)
            elif steps[index] >= 100:
                self._complete(s, uc, ro, cand, now)
            s.flush()
            return {"use_case": use_case, "rollout": rollout_dict(ro), "routing": table, "history_id": hist.id}

    def begin_advance(self, use_case: str, *, resume: bool, actor: str,
                      now: dt.datetime) -> tuple[RowView, RowView, bool]:
        """(use case, active rollout, whether it was resumed now): a paused rollout resumes only with
        ``resume``; any other state than ``waiting`` cannot advance."""
        with session_scope(self.sessions) as s:
            uc = self.registry.use_case_in(s, use_case)
            ro = self._require_active(s, uc, lock=True)
            if ro.state == "paused":
                if not resume:
                    why = next((e.get("reason") for e in reversed(ro.analyses or []) if e.get("event") == "pause"), "")
                    raise IllegalTransition(
                        f"Rollout {ro.id} on {use_case!r} is paused ({why or 'no reason recorded'}); resume it with "
                        "`steward rollout advance --resume` or abort it.", rollout_id=ro.id, state=ro.state,
                    )
                ro.state = "waiting"
                ro.step_started_at = now
                _event(ro, "resume", now, actor=actor)
                s.flush()
                return view_of(uc), view_of(ro), True
            if ro.state != "waiting":
                raise IllegalTransition(f"Rollout {ro.id} is {ro.state}, not waiting; it cannot advance.")
            return view_of(uc), view_of(ro), False

    def record_analysis(self, rollout_id: int, analysis: dict[str, Any], *, pause_reason: str | None,
                        now: dt.datetime) -> RowView:
        """Append an analysis to the rollout; with ``pause_reason`` an active rollout pauses."""
        with session_scope(self.sessions) as s:
            ro = s.get(Rollout, rollout_id, with_for_update=True)
            assert ro is not None
            ro.analyses = [*(ro.analyses or []), {"event": "analysis", **analysis}]
            if pause_reason and ro.state in ACTIVE_ROLLOUT_STATES:
                ro.state = "paused"
                _event(ro, "pause", now, reason=pause_reason)
            s.flush()
            return view_of(ro)

    def end_no_gain(self, rollout_id: int, *, now: dt.datetime, event: dict[str, Any],
                    model_note: dict[str, Any]) -> dict[str, Any]:
        """The rollout ends ``aborted`` with a ``no_gain`` event; its candidate keeps ``meta["no_gain"]``."""
        with session_scope(self.sessions) as s:
            row = s.get(Rollout, rollout_id, with_for_update=True)
            assert row is not None
            row.state = "aborted"
            _event(row, "no_gain", now, **event)
            m = s.get(Model, row.candidate_model_id)
            if m is not None:
                m.meta = {**(m.meta or {}), "no_gain": model_note}
            s.flush()
            return rollout_dict(row)

    def pause(self, use_case: str, *, actor: str, reason: str, now: dt.datetime) -> RowView | None:
        """Pause the active rollout; returns it, or None when none is active."""
        with session_scope(self.sessions) as s:
            uc = self.registry.use_case_in(s, use_case)
            ro = self._active_in(s, uc.id, lock=True)
            if ro is None:
                return None
            if ro.state != "paused":
                ro.state = "paused"
                _event(ro, "pause", now, reason=reason, actor=actor)
                s.flush()
            return view_of(ro)

    # ------------------------------------------------------------------ models
    def retire(self, model_id: str, *, actor: str, reason: str, now: dt.datetime) -> dict[str, Any]:
        """Retire a model: refused while it carries live traffic; shadow mirrors of it are removed."""
        with session_scope(self.sessions) as s:
            m = self.registry.model_in(s, model_id)
            if m.status == "retired":
                return {"model_id": model_id, "status": "retired", "changed": False, "removed_from": []}
            rows = s.execute(
                select(Allocation, Deployment.use_case_id).join(Deployment).where(Allocation.model_id == model_id)
            ).all()
            live = [(a, ucid) for a, ucid in rows if a.role != "shadow" and a.weight > 0]
            if live:
                names = ", ".join(sorted(s.get(UseCase, ucid).name for _, ucid in live))  # type: ignore[union-attr]
                raise Conflict(
                    f"Model {model_id} still serves live traffic of {names}; roll out a replacement first.",
                    model=model_id,
                )
            removed = []
            for a, ucid in rows:
                uc = s.get(UseCase, ucid)
                assert uc is not None
                if self._active_in(s, ucid) is not None:
                    raise Conflict(f"Model {model_id} is part of the active rollout on {uc.name!r}; abort it first.")
                dep = s.get(Deployment, a.deployment_id)
                assert dep is not None
                table = [r for r in self.registry.routing_table(dep) if r["model_id"] != model_id]
                self.registry.write_routing(s, uc, table, action="retire", actor=actor, reason=reason or f"retire {model_id}")
                removed.append(uc.name)
            apply_status_event(s, m, "retired", actor=actor, reason=reason or "retired")
            m.meta = {**(m.meta or {}), "retired": {"by": actor, "reason": reason, "at": now.isoformat()}}
            return {"model_id": model_id, "status": m.status, "changed": True, "removed_from": removed}
