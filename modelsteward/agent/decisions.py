"""Decision records: every decision the agent takes or declines, typed, with its rule, numbers and evidence.

A record is produced where the decision is made (candidate intake in ``agent/intake.py``, the
playbook's rules, the outcome of a rollout step) and travels in the run's journal as
``{"kind": "decision", "record": {...}}``.  :func:`collect` turns a journal into the run's list
(the last word per decision wins, so a re-observation does not repeat it), which the report, the
console and ``steward agent run --json`` show, and :func:`persist` stores in ``agent_decisions``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from modelsteward.storage import runs

if TYPE_CHECKING:
    from modelsteward.context import Steward
    from modelsteward.tools.rollout import RolloutOut

__all__ = ["DecisionKind", "DecisionRecord", "journal_entry", "collect", "persist", "from_rollout_result"]

DecisionKind = Literal["evaluate", "skip", "deploy", "advance", "promote", "keep", "rollback", "switch", "warn"]


class DecisionRecord(BaseModel):
    """One decision.  ``taken`` is False for a decision declined (a skip, a switch with no alternative)."""

    kind: DecisionKind
    taken: bool = True
    use_case: str | None = None
    model_id: str | None = None
    rule: str = Field(description="The rule that decided, e.g. intake.clearly_cheaper, benefit.cheaper, slo.switch.")
    summary: str = Field(description="One sentence a person can read.")
    numbers: dict[str, float | int | str | None] = Field(default_factory=dict)
    evidence: list[str] = Field(default_factory=list, description="Where the numbers come from (test #, violation #).")
    fingerprint: dict[str, Any] = Field(default_factory=dict,
                                        description="The candidate as decided on: price, version, live model.")

    def key(self) -> tuple[str, str | None, str | None]:
        return (self.kind, self.use_case, self.model_id)


def journal_entry(records: list[DecisionRecord]) -> list[dict[str, Any]]:
    return [{"kind": "decision", "record": r.model_dump(mode="json")} for r in records]


def collect(journal: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The run's decisions in first-seen order; a later record of the same (kind, use case, model) replaces it."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for e in journal:
        if e.get("kind") == "decision" and isinstance(e.get("record"), dict):
            rec = e["record"]
            key = (rec.get("kind"), rec.get("use_case"), rec.get("model_id"))
            if key in out:
                out[key].update(rec)
            else:
                out[key] = dict(rec)
    return list(out.values())


def persist(steward: Steward, run_id: int | None, records: list[dict[str, Any]]) -> int:
    """Store the run's decisions (replacing what an earlier pass of the same run stored)."""
    return runs.replace_decisions(steward.sessions, run_id, records)


_ROLLOUT_KIND: dict[str, tuple[DecisionKind, bool]] = {"completed": ("promote", True), "advanced": ("advance", True), "rolled_back": ("rollback", True),
                 "waiting": ("keep", False), "paused": ("keep", False)}


def from_rollout_result(args: dict[str, Any], out: RolloutOut) -> DecisionRecord | None:
    """The decision a rollout tool's result stands for (promote, advance, roll back, keep waiting)."""
    if out.action not in _ROLLOUT_KIND:
        return None
    kind: DecisionKind
    kind, taken = _ROLLOUT_KIND[out.action]
    ro, analysis = out.rollout, out.analysis
    if kind == "promote" and ro is not None and ro.strategy == "shadow":
        kind = "advance"  # a shadow that passed moves on to a canary; nothing was promoted
    message = out.message
    if kind == "rollback" and ("no gain" in message.lower() or "kept the current" in message.lower()):
        kind, taken = "keep", True  # the rollout ended with no gain: the current model is kept (a good outcome)
    numbers: dict[str, float | int | str | None] = {}
    if ro is not None:
        numbers["step_index"] = ro.step_index
        if ro.weight is not None:
            numbers["weight"] = ro.weight
    for side in ("candidate", "stable"):
        for k, v in (getattr(analysis, side).model_dump() if analysis else {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                numbers[f"{side}_{k}"] = v
    return DecisionRecord(
        kind=kind, taken=taken, use_case=args.get("use_case"), model_id=ro.candidate if ro else None,
        rule=f"rollout.{(analysis.outcome if analysis else None) or out.action}",
        summary=(message or f"rollout {out.action}")[:500],
        numbers=numbers,
        evidence=([f"rollout #{ro.id}"] if ro is not None else []) + [str(r)[:300] for r in (analysis.reasons if analysis else [])[:3]],
    )
