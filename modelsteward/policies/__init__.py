"""Hard-coded guardrails every mutating tool passes first: one rule per mutating tool in a registry
checked against the tool registry when the tools load (registry.py; the rules in rules.py and
model_rules.py), thresholds a use case may tighten but never loosen past the hard bounds
(``modelsteward/bounds.py``, below every layer that reads them), and human approvals (approvals.py)."""

from modelsteward.policies import approvals
from modelsteward.bounds import GUARDRAIL_BOUNDS, POLICY_BOUNDS, ROLLOUT_BOUNDS, Bound, clamp_section
from modelsteward.policies.engine import Decision, Verdict, VerdictMismatch, enforce, evaluate, judge
from modelsteward.policies.registry import RULES, Facts, PolicyFactMissing, PolicyRegistryError, check_rules, rule

__all__ = [
    "Bound",
    "Decision",
    "Facts",
    "GUARDRAIL_BOUNDS",
    "POLICY_BOUNDS",
    "PolicyFactMissing",
    "PolicyRegistryError",
    "ROLLOUT_BOUNDS",
    "RULES",
    "Verdict",
    "VerdictMismatch",
    "approvals",
    "check_rules",
    "clamp_section",
    "enforce",
    "evaluate",
    "judge",
    "rule",
]
