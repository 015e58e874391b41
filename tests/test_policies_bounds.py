"""Hard bounds: configuration may tighten a threshold but never loosen it past its bound."""

from __future__ import annotations

import pytest

from modelsteward.errors import Conflict, InvalidInput, NotFound, PolicyDenied
from modelsteward.policies import approvals
from modelsteward.bounds import (
    GUARDRAIL_BOUNDS,
    POLICY_BOUNDS,
    ROLLOUT_BOUNDS,
    clamp_section,
    validate_steps,
)


@pytest.mark.parametrize("section,bounds", [("policy", POLICY_BOUNDS), ("rollout", ROLLOUT_BOUNDS),
                                            ("guardrails", GUARDRAIL_BOUNDS)])
def test_every_bound_clamps_loosening_and_keeps_tightening(section, bounds) -> None:
    for key, b in bounds.items():
        assert b.clamp(b.default) == b.default, f"default of {key} is outside its own bound"
        looser = b.hard * 10 + 1 if b.kind == "max" else 0.0
        vals, notes = clamp_section(section, {key: looser})
        assert vals[key] == b.hard and notes, key
        tighter = b.hard / 2 if b.kind == "max" else b.hard * 2
        vals, notes = clamp_section(section, {key: tighter})
        assert vals[key] == tighter and not notes, key


def test_strict_mode_refuses_unknown_keys_and_garbage() -> None:
    with pytest.raises(InvalidInput, match="Unknown policy setting"):
        clamp_section("policy", {"max_step_pionts": 10}, strict=True)
    with pytest.raises(InvalidInput, match="must be a number"):
        clamp_section("policy", {"max_step_points": "lots"}, strict=True)
    with pytest.raises(InvalidInput, match="non-negative"):
        clamp_section("policy", {"max_step_points": -5}, strict=True)
    vals, notes = clamp_section("policy", {"max_step_points": "lots", "nope": 1})
    assert vals["max_step_points"] == 25 and len(notes) == 2


def test_steps_validation() -> None:
    assert validate_steps(None) == [5, 25, 50, 100]
    assert validate_steps([10, 20]) == [10, 20, 100]
    for bad in ([], [50, 25, 100], [0, 25, 100], [5, 25, 55, 100], [100], "5,25", [5, 120]):
        with pytest.raises(InvalidInput):
            validate_steps(bad)
    with pytest.raises(InvalidInput, match="at most 10"):
        validate_steps([5, 25, 100], 10)


def test_approvals_module_rules(steward) -> None:
    s = steward.sessions
    a = approvals.create(s, action="deploy", arguments={"use_case": "x"}, reason="r", requester="cli:alice")
    same = approvals.create(s, action="deploy", arguments={"use_case": "x", "steps": None}, reason="r",
                            requester="cli:alice")
    assert same.id == a.id  # the identical pending request is reused
    with pytest.raises(NotFound, match="Unknown approval 999"):
        approvals.approve(s, 999, decider="cli:bob")
    with pytest.raises(PolicyDenied, match="no self-approval"):
        approvals.approve(s, a.id, decider="cli:alice")
    with pytest.raises(PolicyDenied, match="no self-approval"):
        approvals.approve(s, a.id, decider="api:Alice")  # the same person through another channel
    with pytest.raises(PolicyDenied, match="(?i)agents may not"):
        approvals.approve(s, a.id, decider="agent:run-7")
    with pytest.raises(InvalidInput):
        approvals.approve(s, a.id, decider="  ")
    assert approvals.get(s, a.id).status == "pending"
    done = approvals.reject(s, a.id, decider="cli:bob", reason="no")
    assert (done.status, done.decided_by, done.decision_reason) == ("rejected", "cli:bob", "no")
    with pytest.raises(Conflict, match="already rejected by cli:bob"):
        approvals.approve(s, a.id, decider="cli:carol")
    assert [x.id for x in approvals.list_approvals(s, "rejected")] == [a.id]
    assert approvals.list_approvals(s) == []
    with pytest.raises(InvalidInput):
        approvals.list_approvals(s, "weird")


def test_public_surface_is_pinned() -> None:
    import modelsteward.policies as pol
    import modelsteward.rollout as ro

    assert sorted(pol.__all__) == ["Bound", "Decision", "Facts", "GUARDRAIL_BOUNDS", "POLICY_BOUNDS",
                                   "PolicyFactMissing", "PolicyRegistryError", "ROLLOUT_BOUNDS", "RULES", "Verdict", "VerdictMismatch",
                                   "approvals", "check_rules", "clamp_section", "enforce", "evaluate", "judge", "rule"]
    assert sorted(ro.__all__) == ["ACTIVE_STATES", "Analysis", "GuardrailsMonitor", "RollbackManager",
                                  "RollbackVerificationError", "RolloutManager", "STRATEGIES", "Violation",
                                  "analyse_rollout", "judge", "rollout_dict"]
    for mod in (pol, ro):
        for name in mod.__all__:
            assert getattr(mod, name) is not None
