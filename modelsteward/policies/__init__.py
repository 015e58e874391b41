"""Hard-coded guardrails every mutating tool passes first (see engine.py)."""

from modelsteward.policies.engine import Decision, enforce, evaluate

__all__ = ["Decision", "enforce", "evaluate"]
