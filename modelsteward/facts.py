"""What a policy verdict rests on, typed below every layer that produces or reads it (issue 27).

- ``Decision``: the policy engine's verdict on one call (allow | deny | needs_approval).
- ``AnalysisFact`` / ``BenefitFact``: what a policy rule reads of a rollout step's analysis
  (``rollout.analysis.Analysis``) and of a promotion's benefit (``evals.benefit.Benefit``).  They
  are protocols, so the policies type their facts without importing the domain that computes them
  (the import-linter contract ``policies-on-facts``); those classes satisfy them structurally.
- ``Verdict``: one decision together with the facts it was computed from, bound to the call it
  judged.  The agent's guard node computes it once and hands it with the call; ``call_tool`` reuses
  it instead of judging again, and the tool hands its facts (the analysis, the benefit) to the
  domain, which acts on the very facts that were judged instead of recomputing them.

Safety of reuse: a verdict fits a call only when all of these are the same as when it was judged
(``Verdict.misfit`` names the first that is not): the tool, the canonical JSON of its validated
arguments, the actor, the approval id, the workspace -- and the clock: it is at most
``VERDICT_MAX_AGE_S`` seconds old by the calling context's clock, and never from its future.  A
verdict that does not fit is judged again, never trusted.  The agent also drops the verdicts it
holds once any mutating call ran (the world they judged changed), and the rollout manager takes a
handed-in analysis only for the rollout and step it was made of (else it analyses again and the
tool passes the policies again with the new analysis before raising traffic).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = ["Decision", "AnalysisFact", "BenefitFact", "Verdict", "VERDICT_MAX_AGE_S", "canonical_args"]

# how long a judged verdict may stand in for judging again (the guard node and the call it guards
# run one after the other; anything slower than this is judged afresh)
VERDICT_MAX_AGE_S = 30.0


@dataclass(frozen=True)
class Decision:
    verdict: Literal["allow", "deny", "needs_approval"]
    policy: str = ""
    reason: str = ""


@runtime_checkable
class AnalysisFact(Protocol):
    """A rollout step's analysis as the ``rollout_advance`` rule reads it."""

    @property
    def outcome(self) -> str: ...  # successful | failed | inconclusive

    @property
    def reasons(self) -> list[str]: ...

    @property
    def step_index(self) -> int: ...


@runtime_checkable
class BenefitFact(Protocol):
    """A promotion's benefit as the ``rollout_advance`` rule reads it."""

    @property
    def rule(self) -> str: ...

    @property
    def worth_it(self) -> bool: ...


def canonical_args(args: Mapping[str, Any]) -> str:
    """The arguments of a call as one canonical JSON text (sorted keys): what a verdict is bound to."""
    return json.dumps(dict(args), sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class Verdict:
    """One policy decision and the facts it was computed from, bound to the call it judged."""

    tool: str
    args: str  # canonical_args of the validated arguments
    actor: str
    approval_id: int | None
    workspace: str
    at: dt.datetime  # the calling context's clock when the rules ran (the rules' ``Facts.now``)
    decision: Decision
    facts: Mapping[str, Any] = field(default_factory=dict)  # the gathered facts (``policies.Facts`` fields)

    def __post_init__(self) -> None:
        object.__setattr__(self, "facts", MappingProxyType(dict(self.facts)))

    @property
    def analysis(self) -> AnalysisFact | None:
        value = self.facts.get("analysis")
        return value if isinstance(value, AnalysisFact) else None

    @property
    def benefit(self) -> BenefitFact | None:
        value = self.facts.get("benefit")
        return value if isinstance(value, BenefitFact) else None

    def misfit(self, tool: str, args: Mapping[str, Any], *, actor: str, approval_id: int | None, workspace: str,
               now: dt.datetime) -> str | None:
        """Why this verdict may not stand for the call described (None: it may)."""
        if tool != self.tool:
            return f"it judged tool {self.tool!r}, not {tool!r}"
        if canonical_args(args) != self.args:
            return f"it judged other arguments ({self.args})"
        if actor != self.actor:
            return f"it judged a call by {self.actor!r}, not {actor!r}"
        if approval_id != self.approval_id:
            return f"it judged a call under approval {self.approval_id}, not {approval_id}"
        if workspace != self.workspace:
            return "it judged a call on another workspace"
        age = (now - self.at).total_seconds()
        if age < 0:
            return f"it was judged at {self.at.isoformat()}, after now ({now.isoformat()})"
        if age > VERDICT_MAX_AGE_S:
            return f"it is {age:.0f} s old (at most {VERDICT_MAX_AGE_S:g} s)"
        return None
