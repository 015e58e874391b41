"""The deployment manager: one rollout state machine per use case (strategies shadow, canary, full).

States: ``waiting`` (a step is live, its analysis window collecting), ``paused`` (a guardrail or an
inconclusive timeout stopped it; ``advance(resume=True)`` restarts the window; ``pause_reason``
says why), and the terminal ``completed``, ``aborted`` (every step passed but there was no gain:
"no gain, kept the current model"), ``rolled_back``.  ``running`` is accepted as active but never written.

Routing per strategy (built from scratch each step; the stable model is the largest primary):
- shadow: stable primary 100 + candidate shadow (``shadow_percent`` of requests mirrored); success
  removes the mirror and the candidate goes back to ``candidate`` (it passed shadow).
- canary: stable primary 100-w + candidate canary w for each step w < 100; the last step is the
  promotion: candidate primary 100 (needs a human approval, see policies) and a benefit
  (``evals/benefit.py``: cheaper at equal quality or better offline, else a significant feedback
  gain over the canary); without one the rollout ends "no gain, kept the current model".
- full: candidate primary 100 at once (needs an approval).
On completion the candidate becomes ``current``; the old current becomes ``candidate`` (or
``retired`` with ``retire_previous``).  Every step change is ONE transaction: allocations, snapshot,
history (``ModelRegistry.write_routing``) and the Rollout row, so a crash leaves the old table or the
new one, never a mix.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelsteward.errors import Conflict, IllegalTransition, InvalidInput, NotFound
from modelsteward.bounds import section_of, validate_steps
from modelsteward.rollout.analysis import Analysis, analyse_rollout, promotion_benefit
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import Allocation, Deployment, Model, Rollout, UseCase, utcnow
from modelsteward.storage.read import rollout_dict  # noqa: F401 - re-exported: the shape lives there
from modelsteward.storage.states import ACTIVE_ROLLOUT_STATES
from modelsteward.storage.states import ACTIVE_ROLLOUT_STATES as ACTIVE_STATES  # noqa: F401 - the name rollout/ exports
from modelsteward.storage.status import apply_status_event, move_status, status_for

if TYPE_CHECKING:
    from modelsteward.context import Steward
    from modelsteward.evals.benefit import Benefit

__all__ = ["RolloutManager", "ACTIVE_STATES", "STRATEGIES", "rollout_dict", "move_status", "table_for_step"]

STRATEGIES = ("shadow", "canary", "full")

Clock = Callable[[], dt.datetime]


def table_for_step(strategy: str, stable: str | None, candidate: str, weight: float, shadow_percent: float) -> list[dict[str, Any]]:
    """The routing table of one step."""
    if strategy == "shadow":
        assert stable is not None
        return [
            {"model_id": stable, "weight": 100.0, "role": "primary"},
            {"model_id": candidate, "weight": float(shadow_percent), "role": "shadow"},
        ]
    if weight >= 100.0 or stable is None:
        return [{"model_id": candidate, "weight": 100.0, "role": "primary"}]
    return [
        {"model_id": stable, "weight": 100.0 - float(weight), "role": "primary"},
        {"model_id": candidate, "weight": float(weight), "role": "canary"},
    ]


class RolloutManager:
    """Deploy, advance, pause, abort and complete rollouts of one workspace."""

    def __init__(self, steward: Steward, clock: Clock | None = None) -> None:
        self.steward = steward
        self.registry = steward.registry
        self.clock: Clock = clock or utcnow

    # ------------------------------------------------------------------ reading
    def _uc(self, s: Session, name: str) -> UseCase:
        return self.registry.use_case_in(s, name)

    @staticmethod
    def active_in(s: Session, uc_id: int, *, lock: bool = False) -> Rollout | None:
        q = select(Rollout).where(Rollout.use_case_id == uc_id, Rollout.state.in_(ACTIVE_ROLLOUT_STATES)).order_by(Rollout.id.desc())
        if lock:
            q = q.with_for_update()
        return s.scalars(q).first()

    def active(self, use_case: str) -> Rollout | None:
        with session_scope(self.steward.sessions) as s:
            return self.active_in(s, self._uc(s, use_case).id)

    def latest(self, use_case: str) -> Rollout | None:
        with session_scope(self.steward.sessions) as s:
            uc = self._uc(s, use_case)
            return s.scalars(select(Rollout).where(Rollout.use_case_id == uc.id).order_by(Rollout.id.desc())).first()

    def status(self, use_case: str) -> dict[str, Any]:
        """The active (or latest) rollout, the live routing table and its version."""
        dep = self.registry.deployment(use_case)
        ro = self.active(use_case) or self.latest(use_case)
        return {
            "use_case": use_case, "version": dep.version, "routing": self.registry.routing_table(dep),
            "rollout": rollout_dict(ro) if ro else None, "active": bool(ro and ro.state in ACTIVE_ROLLOUT_STATES),
        }

    def config(self, uc: UseCase) -> dict[str, Any]:
        return section_of(uc.config, "rollout")

    # ------------------------------------------------------------------ deploy
    def deploy(
        self, use_case: str, model_id: str, strategy: str, *, actor: str, reason: str = "",
        steps: list[float] | None = None, retire_previous: bool = False, shadow_percent: float | None = None,
    ) -> dict[str, Any]:
        """Start a rollout; the first step's routing goes live in the same transaction.  ``shadow_percent``
        (shadow only) lowers the use case's share, e.g. to the policies' cap for an unevaluated model."""
        if strategy not in STRATEGIES:
            raise InvalidInput(f"Unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}.")
        now = self.clock()
        with session_scope(self.steward.sessions) as s:
            uc = self._uc(s, use_case)
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
            cur = self.active_in(s, uc.id)
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
            cfg = self.config(uc)
            if strategy == "canary":
                pol = section_of(uc.config, "policy")
                plan = validate_steps(steps if steps is not None else cfg.get("steps"), pol["max_step_points"])
            elif strategy == "shadow":
                plan = [0.0]
            else:
                plan = [100.0]
            ro = Rollout(
                use_case_id=uc.id, candidate_model_id=model_id, stable_model_id=stable, strategy=strategy,
                steps=plan, step_index=0, state="waiting", step_started_at=now, actor=actor, reason=reason,
                analyses=[{"event": "deploy", "at": now.isoformat(timespec="seconds"), "actor": actor,
                           "retire_previous": bool(retire_previous), "strategy": strategy}],
            )
            s.add(ro)
            s.flush()
            share = cfg["shadow_percent"] if shadow_percent is None else min(float(shadow_percent), cfg["shadow_percent"])
            table = table_for_step(strategy, stable, model_id, plan[0], share)
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
        return {"use_case": use_case, "rollout": out, "routing": table}

    def _complete(self, s: Session, uc: UseCase, ro: Rollout, cand: Model, now: dt.datetime) -> None:
        ro.state = "completed"
        apply_status_event(s, cand, "promoted", uc, actor=ro.actor, reason=f"rollout {ro.id} completed")
        retire = any(e.get("retire_previous") for e in (ro.analyses or []) if e.get("event") == "deploy")
        if ro.stable_model_id and ro.stable_model_id != cand.id:
            old = self.registry.model_in(s, ro.stable_model_id)
            move_status(s, old, "retired" if retire else "replaced", uc, actor=ro.actor,
                        reason=f"replaced by {cand.id} (rollout {ro.id})")
        self._event(ro, "completed", now)

    @staticmethod
    def _event(ro: Rollout, kind: str, now: dt.datetime, **extra: Any) -> None:
        ro.analyses = [*(ro.analyses or []), {"event": kind, "at": now.isoformat(timespec="seconds"), **extra}]

    # ------------------------------------------------------------------ steps
    def step_to(
        self, use_case: str, index: int, *, actor: str, reason: str, expect_index: int | None = None,
        analysis: Analysis | None = None,
    ) -> dict[str, Any]:
        """Move the active rollout to step ``index`` in one transaction (no analysis, no policy)."""
        now = self.clock()
        with session_scope(self.steward.sessions) as s:
            uc = self._uc(s, use_case)
            ro = self._require_active(s, uc, lock=True)
            if expect_index is not None and ro.step_index != expect_index:
                raise Conflict(f"Rollout {ro.id} moved to step {ro.step_index} meanwhile (expected {expect_index}); retry.")
            steps = list(ro.steps or [])
            if not 0 <= index < len(steps):
                raise InvalidInput(f"Rollout {ro.id} has steps {steps}; step {index} does not exist.")
            cand = self.registry.model_in(s, ro.candidate_model_id)
            cfg = self.config(uc)
            if ro.strategy == "shadow":
                table = [{"model_id": ro.stable_model_id, "weight": 100.0, "role": "primary"}]
                action = "shadow_complete"
            else:
                table = table_for_step(ro.strategy, ro.stable_model_id, ro.candidate_model_id, steps[index], cfg["shadow_percent"])
                action = "promote" if steps[index] >= 100 else "rollout_step"
            _, _, hist = self.registry.write_routing(
                s, uc, table, action=action, actor=actor, reason=reason, rollout_id=ro.id,
                details={"step_index": index, "weight": steps[index],
                         **({"analysis": analysis.as_dict()} if analysis else {})},
            )
            if analysis is not None:  # the analysis that justified the step, in the same transaction
                ro.analyses = [*(ro.analyses or []), {"event": "analysis", **analysis.as_dict()}]
            ro.step_index = index
            ro.step_started_at = now
            ro.state = "waiting"
            self._event(ro, "step", now, step_index=index, weight=steps[index], actor=actor)
            if ro.strategy == "shadow":
                ro.state = "completed"
                move_status(s, cand, "shadow_passed", uc, actor=actor, reason=f"rollout {ro.id}: shadow passed")
                cand.meta = {**(cand.meta or {}), "shadow_passed": {"use_case": uc.name, "rollout_id": ro.id,
                                                                   "at": now.isoformat(timespec="seconds")}}
                self._event(ro, "completed", now)
            elif steps[index] >= 100:
                self._complete(s, uc, ro, cand, now)
            s.flush()
            return {"use_case": use_case, "rollout": rollout_dict(ro), "routing": table, "history_id": hist.id}

    def _require_active(self, s: Session, uc: UseCase, *, lock: bool = False) -> Rollout:
        ro = self.active_in(s, uc.id, lock=lock)
        if ro is None:
            last = s.scalars(select(Rollout).where(Rollout.use_case_id == uc.id).order_by(Rollout.id.desc())).first()
            tail = f" (latest rollout {last.id} is {last.state})" if last else ""
            raise IllegalTransition(
                f"Use case {uc.name!r} has no active rollout{tail}; start one with `steward deploy`.", use_case=uc.name,
            )
        return ro

    def analyse(self, use_case: str) -> Analysis:
        """Analyse the active rollout's current window (read-only)."""
        with session_scope(self.steward.sessions) as s:
            uc = self._uc(s, use_case)
            ro = self._require_active(s, uc)
            cfg = self.config(uc)
        return analyse_rollout(self.steward, ro, cfg, self.clock(), use_case)

    def advance(
        self, use_case: str, *, actor: str, resume: bool = False, gate: Callable[[Analysis], None] | None = None,
    ) -> dict[str, Any]:
        """Analyse the current step, then advance (successful), abort and roll back (failed) or keep
        waiting / pause (inconclusive).  Only a ``waiting`` rollout advances (``paused`` with ``resume``).

        ``gate(analysis)`` runs right before traffic is raised and may raise to stop it (the tool
        layer re-checks the policies there with the very analysis acted on)."""
        now = self.clock()
        with session_scope(self.steward.sessions) as s:
            uc = self._uc(s, use_case)
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
                self._event(ro, "resume", now, actor=actor)
                return {"use_case": use_case, "action": "resumed", "rollout": rollout_dict(ro), "analysis": None}
            if ro.state != "waiting":
                raise IllegalTransition(f"Rollout {ro.id} is {ro.state}, not waiting; it cannot advance.")
            cfg = self.config(uc)
            index = ro.step_index
        result = analyse_rollout(self.steward, ro, cfg, now, use_case)
        if result.outcome == "failed":
            from modelsteward.rollout.rollback import RollbackManager

            self._record(use_case, ro.id, result)
            rb = RollbackManager(self.steward, clock=self.clock).rollback(
                use_case, actor=actor, reason="analysis failed: " + "; ".join(result.reasons), reject_candidate=True,
            )
            return {"use_case": use_case, "action": "rolled_back", "analysis": result.as_dict(), "rollback": rb,
                    "rollout": rb.get("rollout")}
        if result.outcome == "inconclusive":
            pause = result.elapsed_s > float(cfg["inconclusive_timeout_s"])
            ro2 = self._record(use_case, ro.id, result, pause_reason="analysis inconclusive past the timeout" if pause else None)
            return {"use_case": use_case, "action": "paused" if pause else "waiting", "analysis": result.as_dict(),
                    "rollout": rollout_dict(ro2)}
        nxt = index + 1 if ro.strategy != "shadow" else index
        if ro.strategy == "canary" and nxt < len(ro.steps or []) and float((ro.steps or [])[nxt]) >= 100.0:
            benefit, evidence = promotion_benefit(self.steward, ro, cfg, use_case)
            if not benefit.worth_it:
                return self._end_no_gain(use_case, ro, result, benefit, evidence, actor)
            result.benefit = {**benefit.as_dict(), "evidence": evidence}
            if result.reasons:  # the promotion's approval request quotes reasons[0]: it names the benefit
                result.reasons[0] += f"; benefit: {benefit.rule}"
        if gate is not None and ro.strategy != "shadow":
            gate(result)
        out = self.step_to(
            use_case, nxt, actor=actor, expect_index=index, analysis=result,
            reason=f"step {index} ({result.weight:g}%) analysis successful",
        )
        out.update(action="completed" if out["rollout"]["state"] == "completed" else "advanced",
                   analysis=result.as_dict())
        out["rollout"] = rollout_dict(self._get(ro.id))
        return out

    def _end_no_gain(self, use_case: str, ro: Rollout, result: Analysis, benefit: Benefit,
                     evidence: dict[str, Any], actor: str) -> dict[str, Any]:
        """Every step passed but nothing is gained: keep the current model (a good outcome).

        The routing goes back to the snapshot before the rollout (action ``rollout_no_gain``: no
        rollback cool-down); the rollout ends ``aborted`` with a ``no_gain`` event; the candidate goes
        back to ``candidate`` with ``meta["no_gain"]`` naming the use case and the evidence."""
        from modelsteward.rollout.rollback import RollbackManager

        why = f"no gain, kept the current model: {benefit.rule}"
        result.benefit = {**benefit.as_dict(), "evidence": evidence}
        self._record(use_case, ro.id, result)
        rb = RollbackManager(self.steward, clock=self.clock).rollback(
            use_case, actor=actor, reason=why, action="rollout_no_gain")
        now = self.clock()
        with session_scope(self.steward.sessions) as s:
            row = s.get(Rollout, ro.id, with_for_update=True)
            assert row is not None
            row.state = "aborted"
            self._event(row, "no_gain", now, actor=actor, reason=why, benefit=benefit.as_dict(), evidence=evidence)
            m = s.get(Model, ro.candidate_model_id)
            if m is not None:
                m.meta = {**(m.meta or {}), "no_gain": {"use_case": use_case, "rollout_id": ro.id,
                                                        "test_result_id": evidence.get("test_result_id"),
                                                        "at": now.isoformat(timespec="seconds"), "rule": benefit.rule}}
            s.flush()
            out = rollout_dict(row)
        return {"use_case": use_case, "action": "no_gain", "message": why, "analysis": result.as_dict(),
                "rollback": rb, "rollout": out}

    def _get(self, rollout_id: int) -> Rollout:
        with session_scope(self.steward.sessions) as s:
            ro = s.get(Rollout, rollout_id)
            if ro is None:
                raise NotFound(f"Unknown rollout {rollout_id}.")
            return ro

    def _record(self, use_case: str, rollout_id: int, result: Analysis, *, pause_reason: str | None = None) -> Rollout:
        with session_scope(self.steward.sessions) as s:
            ro = s.get(Rollout, rollout_id, with_for_update=True)
            assert ro is not None
            ro.analyses = [*(ro.analyses or []), {"event": "analysis", **result.as_dict()}]
            if pause_reason and ro.state in ACTIVE_ROLLOUT_STATES:
                ro.state = "paused"
                self._event(ro, "pause", self.clock(), reason=pause_reason)
            s.flush()
            return ro

    def pause(self, use_case: str, *, actor: str, reason: str) -> Rollout | None:
        """Pause the active rollout (guardrails); returns it, or None when none is active."""
        with session_scope(self.steward.sessions) as s:
            uc = self._uc(s, use_case)
            ro = self.active_in(s, uc.id, lock=True)
            if ro is None:
                return None
            if ro.state != "paused":
                ro.state = "paused"
                self._event(ro, "pause", self.clock(), reason=reason, actor=actor)
            return ro

    def abort(self, use_case: str, *, actor: str, reason: str = "", reject: bool = False) -> dict[str, Any]:
        """Abort the active rollout and restore the routing from before it (its snapshot)."""
        from modelsteward.rollout.rollback import RollbackManager

        with session_scope(self.steward.sessions) as s:
            self._require_active(s, self._uc(s, use_case))
        return RollbackManager(self.steward, clock=self.clock).rollback(
            use_case, actor=actor, reason=reason or "rollout aborted", reject_candidate=reject, action="rollout_abort",
        )

    # ------------------------------------------------------------------ models
    def retire(self, model_id: str, *, actor: str, reason: str = "") -> dict[str, Any]:
        """Retire a model: refused while it carries live traffic; shadow mirrors of it are removed."""
        with session_scope(self.steward.sessions) as s:
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
                if self.active_in(s, ucid) is not None:
                    raise Conflict(f"Model {model_id} is part of the active rollout on {uc.name!r}; abort it first.")
                dep = s.get(Deployment, a.deployment_id)
                assert dep is not None
                table = [r for r in self.registry.routing_table(dep) if r["model_id"] != model_id]
                self.registry.write_routing(s, uc, table, action="retire", actor=actor, reason=reason or f"retire {model_id}")
                removed.append(uc.name)
            apply_status_event(s, m, "retired", actor=actor, reason=reason or "retired")
            m.meta = {**(m.meta or {}), "retired": {"by": actor, "reason": reason, "at": self.clock().isoformat()}}
            return {"model_id": model_id, "status": m.status, "changed": True, "removed_from": removed}
