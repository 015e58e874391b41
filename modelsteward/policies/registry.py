"""The policy registry: one rule per mutating tool, keyed by tool name, checked against the tools.

A rule is registered with ``@rule("tool_name")``; a second rule for one tool fails at import,
naming both.  ``check_rules(tools)`` -- called by ``tools.base.load_all_tools`` with the tool
registry's facts (name -> mutating) -- fails when a mutating tool has no rule, or a rule names a
tool that does not exist or does not mutate, with a message naming the culprit.  A tool that needs
no restriction still gets an explicit rule (``allow_always``), so "no rule" is never an accident.

Rules are ``(facts: Facts, r: PolicyReads, args: dict) -> list[Decision]``: everything a rule may know
about the call beyond the registry comes in ``Facts`` (who, when, and what the tool gathered: the
analysis it acts on, the promotion benefit, the use case's traffic), passed explicitly by the
caller, so policies never reach up into the tools layer nor sideways into ``rollout/``; what a rule
reads of the registry it reads through ``r`` (``storage/policy_reads.py``, one transaction per verdict).  A rule
that needs a fact the caller did not gather fails loudly (``Facts.need``), never guesses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelsteward.facts import AnalysisFact, BenefitFact, Decision

from modelsteward.errors import RegistryError, StewardError

if TYPE_CHECKING:
    from modelsteward.context import Steward
    from modelsteward.storage.policy_reads import PolicyReads

__all__ = [
    "Decision", "Facts", "PolicyFactMissing", "Rule", "RuleFunc", "RULES", "PolicyRegistryError", "rule", "allow_always", "check_rules",
]


class PolicyRegistryError(RegistryError):
    """The policy registry and the tool registry disagree (raised when the tools load)."""

    code = "policy_registry"


class PolicyFactMissing(StewardError, RuntimeError):
    """A rule needs a fact its caller did not gather (a programming error, never bad input)."""

    code = "policy_fact_missing"
    http_status = 500


@dataclass(frozen=True)
class Facts:
    """What a rule may know about one call, handed in by the caller.  The last three are gathered by
    the tool (its spec's ``facts`` hook, ``tools.base``), only where its rule needs them."""

    steward: Steward
    actor: str
    now: dt.datetime
    approval_id: int | None = None
    role: str | None = None  # the caller's proven role (``ToolContext.role``); None: none proven
    # rollout_advance: the analysis of the waiting step (``rollout.analysis.Analysis``), the very one
    # the tool then acts on (it travels with the call in the ``Verdict``, ``modelsteward/facts.py``)
    analysis: AnalysisFact | None = None
    # rollout_advance to 100 %: the promotion benefit (``evals.benefit.Benefit``) and its evidence
    # (both verdicts, offline and online: recorded with the step, not read by a rule)
    benefit: BenefitFact | None = None
    benefit_evidence: Mapping[str, Any] | None = None
    # deploy, rollout_advance: the use case's recent traffic -- ``requests``, mean ``input_tokens`` and
    # ``output_tokens``, projected ``monthly_requests`` (``rollout.metrics.usage``)
    usage: Mapping[str, float] | None = None
    # deploy: what the use case's traffic needs of a model (``catalog.compat.infer_requirements``)
    traffic_needs: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        for name, kind, attrs in (("analysis", AnalysisFact, "outcome, reasons, step_index"),
                                  ("benefit", BenefitFact, "rule, worth_it")):
            value = getattr(self, name)
            if value is not None and not isinstance(value, kind):
                raise TypeError(f"Policy fact {name!r} must meet {kind.__name__} (with {attrs}), "
                                f"got {type(value).__name__}; gather it with the tool's facts hook.")

    def need(self, name: str, rule_name: str) -> Any:
        """The fact ``name``; a ``PolicyFactMissing`` naming the rule when the caller did not gather it."""
        value = getattr(self, name)
        if value is None:
            raise PolicyFactMissing(f"Policy rule {rule_name!r} needs the fact {name!r}, which the caller did not "
                                    "gather (tools gather facts with the 'facts' hook of their tool spec).")
        return value


RuleFunc = Callable[[Facts, "PolicyReads", dict[str, Any]], list[Decision]]


@dataclass(frozen=True)
class Rule:
    tool: str
    func: RuleFunc
    doc: str

    def __call__(self, facts: Facts, r: PolicyReads, args: dict[str, Any]) -> list[Decision]:
        return self.func(facts, r, args)


RULES: dict[str, Rule] = {}


def _where(func: Callable[..., Any]) -> str:
    return f"{func.__module__}.{func.__qualname__}"


def rule(tool_name: str, *, doc: str | None = None) -> Callable[[RuleFunc], RuleFunc]:
    """Register ``func`` as the policy rule of ``tool_name``; a second rule for one tool fails here."""

    def deco(func: RuleFunc) -> RuleFunc:
        if tool_name in RULES:
            raise PolicyRegistryError(
                f"Policy rule for tool {tool_name!r} registered twice: {_where(RULES[tool_name].func)} and "
                f"{_where(func)}."
            )
        RULES[tool_name] = Rule(tool_name, func, (doc or func.__doc__ or tool_name).strip())
        return func

    return deco


def allow_always(tool_name: str, why: str) -> None:
    """An explicit "no restriction" rule, with the reason it needs none."""

    def allow(facts: Facts, r: PolicyReads, args: dict[str, Any]) -> list[Decision]:
        return []

    allow.__qualname__ = f"allow_always[{tool_name}]"
    rule(tool_name, doc=why)(allow)


def check_rules(tools: Mapping[str, bool]) -> None:
    """``tools``: every registered tool name -> whether it mutates.  Raises ``PolicyRegistryError``
    naming every mutating tool without a rule and every rule without a mutating tool."""
    problems: list[str] = []
    missing = sorted(n for n, mutating in tools.items() if mutating and n not in RULES)
    for name in missing:
        problems.append(f"mutating tool {name!r} has no policy rule (add @rule({name!r}) in modelsteward/policies/)")
    for name in sorted(RULES):
        if name not in tools:
            problems.append(f"policy rule {_where(RULES[name].func)} names {name!r}, but there is no such tool")
        elif not tools[name]:
            problems.append(f"policy rule {_where(RULES[name].func)} names {name!r}, which is not mutating")
    if problems:
        raise PolicyRegistryError("Policy registry does not match the tools: " + "; ".join(problems) + ".")
