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

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelsteward.errors import InvalidInput
from modelsteward.bounds import section_of, validate_steps
from modelsteward.rollout.analysis import Analysis, analyse_rollout, promotion_benefit
from modelsteward.storage.read import rollout_dict  # noqa: F401 - re-exported: the shape lives there
from modelsteward.storage.rollouts import RolloutStore
from modelsteward.storage.states import ACTIVE_ROLLOUT_STATES
from modelsteward.storage.states import ACTIVE_ROLLOUT_STATES as ACTIVE_STATES  # noqa: F401 - the name rollout/ exports
from modelsteward.storage.status import move_status  # noqa: F401 - re-exported (rollout.manager.move_status)
from modelsteward.storage.views import RowView
from modelsteward.timeutil import utc_now_naive as utcnow

if TYPE_CHECKING:
    from modelsteward.context import Steward
    from modelsteward.evals.benefit import Benefit

__all__ = ["RolloutManager", "Judged", "ACTIVE_STATES", "STRATEGIES", "rollout_dict", "move_status", "table_for_step"]

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


@dataclass(frozen=True)
class Judged:
    """The facts a policy pass decided a ``rollout_advance`` on (the rule's ``analysis`` and ``benefit``
    with its ``evidence``), handed to ``advance`` so it acts on what was judged instead of recomputing."""

    analysis: Analysis
    benefit: Benefit | None = None
    evidence: Mapping[str, Any] | None = None

    def fits(self, ro: RowView) -> bool:
        """Made of ``ro``'s current step while it waits (not of another rollout, step or window)."""
        a, started = self.analysis, ro.step_started_at or ro.created_at
        return (a.rollout_id == ro.id and a.step_index == ro.step_index and ro.state == "waiting"
                and started is not None and a.at >= started.isoformat(timespec="seconds"))

    def copy_of_analysis(self) -> Analysis:
        """The analysis to act on (a copy: ``advance`` adds the benefit to it)."""
        return dataclasses.replace(self.analysis, reasons=list(self.analysis.reasons))


class RolloutManager:
    """Deploy, advance, pause, abort and complete rollouts of one workspace."""

    def __init__(self, steward: Steward, clock: Clock | None = None) -> None:
        self.steward = steward
        self.registry = steward.registry
        self.store = RolloutStore(steward.registry)
        self.clock: Clock = clock or utcnow

    # ------------------------------------------------------------------ reading
    def active(self, use_case: str) -> RowView | None:
        return self.store.active(use_case)

    def latest(self, use_case: str) -> RowView | None:
        return self.store.latest(use_case)

    def status(self, use_case: str) -> dict[str, Any]:
        """The active (or latest) rollout, the live routing table and its version."""
        dep = self.registry.deployment(use_case)
        ro = self.active(use_case) or self.latest(use_case)
        return {
            "use_case": use_case, "version": dep.version, "routing": self.registry.routing_table(dep),
            "rollout": rollout_dict(ro) if ro else None, "active": bool(ro and ro.state in ACTIVE_ROLLOUT_STATES),
        }

    def config(self, uc: Any) -> dict[str, Any]:
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

        def route(uc: RowView, stable: str | None) -> tuple[list[float], list[dict[str, Any]]]:
            cfg = self.config(uc)
            if strategy == "canary":
                pol = section_of(uc.config, "policy")
                plan = validate_steps(steps if steps is not None else cfg.get("steps"), pol["max_step_points"])
            elif strategy == "shadow":
                plan = [0.0]
            else:
                plan = [100.0]
            share = cfg["shadow_percent"] if shadow_percent is None else min(float(shadow_percent), cfg["shadow_percent"])
            return plan, table_for_step(strategy, stable, model_id, plan[0], share)

        out, table = self.store.start(use_case, model_id, strategy, actor=actor, reason=reason, now=now,
                                      retire_previous=retire_previous, route=route)
        return {"use_case": use_case, "rollout": out, "routing": table}

    # ------------------------------------------------------------------ steps
    def step_to(
        self, use_case: str, index: int, *, actor: str, reason: str, expect_index: int | None = None,
        analysis: Analysis | None = None,
    ) -> dict[str, Any]:
        """Move the active rollout to step ``index`` in one transaction (no analysis, no policy)."""

        def route(uc: RowView, ro: RowView, i: int) -> list[dict[str, Any]]:
            if ro.strategy == "shadow":
                return [{"model_id": ro.stable_model_id, "weight": 100.0, "role": "primary"}]
            return table_for_step(ro.strategy, ro.stable_model_id, ro.candidate_model_id, float(list(ro.steps)[i]),
                                  self.config(uc)["shadow_percent"])

        return self.store.step_to(use_case, index, actor=actor, reason=reason, now=self.clock(),
                                  expect_index=expect_index, analysis=analysis.as_dict() if analysis else None,
                                  route=route)

    def analyse(self, use_case: str) -> Analysis:
        """Analyse the active rollout's current window (read-only)."""
        uc, ro = self.store.require_active(use_case)
        return analyse_rollout(self.steward, ro, self.config(uc), self.clock(), use_case)

    def advance(
        self, use_case: str, *, actor: str, resume: bool = False, gate: Callable[[Analysis], None] | None = None,
        judged: Judged | None = None,
    ) -> dict[str, Any]:
        """Analyse the current step, then advance (successful), abort and roll back (failed) or keep
        waiting / pause (inconclusive).  Only a ``waiting`` rollout advances (``paused`` with ``resume``).

        ``judged``: the facts the caller's policy pass was decided on (the step's analysis, before the
        promotion the benefit): acted on instead of analysing again when they were made of this
        rollout's current step (``Judged.fits``).  ``gate(analysis)`` runs right before traffic is
        raised whenever the manager had to analyse or weigh the benefit itself (facts nobody judged
        yet) and may raise to stop it (the tool layer passes the policies there with those facts)."""
        now = self.clock()
        uc, ro, resumed = self.store.begin_advance(use_case, resume=resume, actor=actor, now=now)
        if resumed:
            return {"use_case": use_case, "action": "resumed", "rollout": rollout_dict(ro), "analysis": None}
        cfg = self.config(uc)
        index = ro.step_index
        reuse = judged is not None and judged.fits(ro)
        result = judged.copy_of_analysis() if judged is not None and reuse else analyse_rollout(
            self.steward, ro, cfg, now, use_case)
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
            if judged is not None and reuse and judged.benefit is not None:
                benefit, evidence = judged.benefit, dict(judged.evidence or {})
            else:
                benefit, evidence = promotion_benefit(self.steward, ro, cfg, use_case)
                reuse = False  # a benefit nobody judged: the gate passes the policies with it
            if not benefit.worth_it:
                return self._end_no_gain(use_case, ro, result, benefit, evidence, actor)
            result.benefit = {**benefit.as_dict(), "evidence": evidence}
            if result.reasons:  # the promotion's approval request quotes reasons[0]: it names the benefit
                result.reasons[0] += f"; benefit: {benefit.rule}"
        if gate is not None and ro.strategy != "shadow" and not reuse:
            gate(result)
        out = self.step_to(
            use_case, nxt, actor=actor, expect_index=index, analysis=result,
            reason=f"step {index} ({result.weight:g}%) analysis successful",
        )
        out.update(action="completed" if out["rollout"]["state"] == "completed" else "advanced",
                   analysis=result.as_dict())
        out["rollout"] = rollout_dict(self._get(ro.id))
        return out

    def _end_no_gain(self, use_case: str, ro: RowView, result: Analysis, benefit: Benefit,
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
        out = self.store.end_no_gain(
            ro.id, now=now, event={"actor": actor, "reason": why, "benefit": benefit.as_dict(), "evidence": evidence},
            model_note={"use_case": use_case, "rollout_id": ro.id, "test_result_id": evidence.get("test_result_id"),
                        "at": now.isoformat(timespec="seconds"), "rule": benefit.rule})
        return {"use_case": use_case, "action": "no_gain", "message": why, "analysis": result.as_dict(),
                "rollback": rb, "rollout": out}

    def _get(self, rollout_id: int) -> RowView:
        return self.store.get(rollout_id)

    def _record(self, use_case: str, rollout_id: int, result: Analysis, *, pause_reason: str | None = None) -> RowView:
        return self.store.record_analysis(rollout_id, result.as_dict(), pause_reason=pause_reason, now=self.clock())

    def pause(self, use_case: str, *, actor: str, reason: str) -> RowView | None:
        """Pause the active rollout (guardrails); returns it, or None when none is active."""
        return self.store.pause(use_case, actor=actor, reason=reason, now=self.clock())

    def abort(self, use_case: str, *, actor: str, reason: str = "", reject: bool = False) -> dict[str, Any]:
        """Abort the active rollout and restore the routing from before it (its snapshot)."""
        from modelsteward.rollout.rollback import RollbackManager

        self.store.require_active(use_case)
        return RollbackManager(self.steward, clock=self.clock).rollback(
            use_case, actor=actor, reason=reason or "rollout aborted", reject_candidate=reject, action="rollout_abort",
        )

    # ------------------------------------------------------------------ models
    def retire(self, model_id: str, *, actor: str, reason: str = "") -> dict[str, Any]:
        """Retire a model: refused while it carries live traffic; shadow mirrors of it are removed."""
        return self.store.retire(model_id, actor=actor, reason=reason, now=self.clock())
