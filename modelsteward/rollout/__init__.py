"""Rollouts: the deployment manager (shadow, canary, full), step analysis, rollback, guardrails."""

from modelsteward.rollout.analysis import Analysis, analyse_rollout, judge
from modelsteward.rollout.guardrails import GuardrailsMonitor, Violation
from modelsteward.rollout.manager import ACTIVE_STATES, STRATEGIES, RolloutManager, rollout_dict
from modelsteward.rollout.rollback import RollbackManager, RollbackVerificationError

__all__ = [
    "ACTIVE_STATES",
    "Analysis",
    "GuardrailsMonitor",
    "RollbackManager",
    "RollbackVerificationError",
    "RolloutManager",
    "STRATEGIES",
    "Violation",
    "analyse_rollout",
    "judge",
    "rollout_dict",
]
