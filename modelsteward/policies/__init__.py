"""Hard-coded guardrails every mutating tool passes first (rules.py), with thresholds a use case may
tighten but never loosen past the hard bounds (bounds.py), and human approvals (approvals.py)."""

from modelsteward.policies import approvals
from modelsteward.policies.bounds import GUARDRAIL_BOUNDS, POLICY_BOUNDS, ROLLOUT_BOUNDS, Bound, clamp_section
from modelsteward.policies.engine import Decision, enforce, evaluate

__all__ = [
    "Bound",
    "Decision",
    "GUARDRAIL_BOUNDS",
    "POLICY_BOUNDS",
    "ROLLOUT_BOUNDS",
    "approvals",
    "clamp_section",
    "enforce",
    "evaluate",
]
