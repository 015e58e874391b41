"""Policy engine: ``evaluate(ctx, action, args) -> Decision`` (allow | deny | needs_approval).

``enforce`` is what ``tools.base.call_tool`` runs before every mutating tool:
- deny -> a ``policy_decisions`` row, then ``PolicyDenied`` (its message names the policy);
- needs_approval -> a ``policy_decisions`` row and a pending ``approvals`` row (tool name, arguments,
  reason, requester = ctx.actor, agent run, thread, use case), then ``ApprovalRequired`` carrying
  ``approval_id`` -- unless ``ctx.approval_id`` names an approval of this same action and arguments,
  approved by someone other than its requester: then the call is allowed and the approval is marked
  ``executed`` (it cannot be replayed).  A ``ctx.approval_id`` that does not fit is a denial.
A denial always wins over an approval: an approval never overrides a hard rule.  A consumed
approval is noted in ``ctx.approved_actions`` so a tool can tell, later in the same call,
that a human approved this action (``rollout_advance`` re-checks right before it raises traffic).

The rules themselves are registered per tool in ``registry.py`` (``rules.py``, ``model_rules.py``);
thresholds and hard bounds in ``modelsteward/bounds.py``.  A rule sees only the ``Facts`` built here (actor,
``ctx.clock()``, approval id) plus what the caller gathered and hands in explicitly (``facts``:
``analysis``, ``benefit``, ``usage``; ``tools.base.pass_policies`` gathers them with the tool's
``facts`` hook).  An action without a rule is denied (policy ``no_rule``); ``tools.base.load_all_tools``
also fails when a mutating tool has none.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from modelsteward.context import ToolContext
from modelsteward.errors import ApprovalRequired, PolicyDenied
from modelsteward.policies import egress_rules, model_rules, nocheck_rules, rules, usecase_rules  # noqa: F401 - importing registers the rules
from modelsteward.policies import approvals
from modelsteward.policies.registry import RULES, Decision, Facts
from modelsteward.storage.db import session_scope
from modelsteward.storage.models import PolicyDecision, UseCase

__all__ = ["Decision", "Facts", "evaluate", "enforce"]


def _combine(found: list[Decision]) -> Decision:
    denies = [d for d in found if d.verdict == "deny"]
    if denies:
        return Decision("deny", ",".join(dict.fromkeys(d.policy for d in denies)),
                        "; ".join(f"[{d.policy}] {d.reason}" for d in denies))
    needs = [d for d in found if d.verdict == "needs_approval"]
    if needs:
        return Decision("needs_approval", ",".join(dict.fromkeys(d.policy for d in needs)),
                        "; ".join(f"[{d.policy}] {d.reason}" for d in needs))
    return Decision("allow")


FACT_NAMES = frozenset(f.name for f in dataclasses.fields(Facts)) - {"steward", "actor", "now", "approval_id"}


def facts_for(ctx: ToolContext, facts: Mapping[str, Any] | None = None) -> Facts:
    """The call's ``Facts``: who and when from ``ctx``, plus the gathered ``facts`` (names checked)."""
    extra = dict(facts or {})
    unknown = sorted(set(extra) - FACT_NAMES)
    if unknown:
        raise TypeError(f"Unknown policy facts {unknown}; known: {sorted(FACT_NAMES)}.")
    return Facts(steward=ctx.steward, actor=ctx.actor, now=ctx.clock(), approval_id=ctx.approval_id, **extra)


def evaluate(ctx: ToolContext, action: str, args: dict[str, Any], *, facts: Mapping[str, Any] | None = None) -> Decision:
    """The verdict of the hard-coded rules for one tool call (no writes)."""
    rule = RULES.get(action)
    if rule is None:  # deny by default: an action nobody wrote a rule for never runs unchecked
        return Decision("deny", "no_rule", f"no policy rule covers {action!r}; add @rule({action!r}) in "
                        "modelsteward/policies/")
    call_facts = facts_for(ctx, facts)
    with session_scope(ctx.steward.sessions) as s:
        return _combine(rule(call_facts, s, dict(args or {})))


def _use_case_id(s: Any, args: dict[str, Any]) -> int | None:
    name = args.get("use_case")
    if not isinstance(name, str):
        return None
    return s.scalar(select(UseCase.id).where(UseCase.name == name))


def enforce(ctx: ToolContext, action: str, args: dict[str, Any], *, facts: Mapping[str, Any] | None = None) -> Decision:
    """Evaluate and act on the verdict (see module doc); returns the allow decision.  ``facts``: what
    the tool gathered for its rule (``Facts`` fields, e.g. the rollout analysis it is acting on)."""
    d = evaluate(ctx, action, args, facts=facts)
    if d.verdict == "allow":
        return d
    if d.verdict == "needs_approval" and ctx.approval_id is not None:
        with session_scope(ctx.steward.sessions) as s:
            used, why = approvals.consume(s, ctx.approval_id, action, args)
            if used is not None:
                ctx.approved_actions.append(action)
                return Decision("allow", d.policy, f"approved by {used.decided_by} (approval {used.id})")
            d = Decision("deny", "approval_mismatch", f"approval {ctx.approval_id} cannot authorise this call: {why}")
    with session_scope(ctx.steward.sessions) as s:
        uc_id = _use_case_id(s, args)
        s.add(PolicyDecision(action=action, arguments=dict(args), verdict=d.verdict, policy=d.policy[:100],
                             reason=d.reason, actor=ctx.actor, use_case_id=uc_id))
        if d.verdict == "deny":
            pass
        else:
            # the requester's own reason (e.g. the violation a switch answers) goes with the policy's
            asked = f"; requested because: {args['reason']}" if isinstance(args.get("reason"), str) and args["reason"] else ""
            a = approvals.create(
                ctx.steward.sessions, action=action, arguments=dict(args), reason=d.reason + asked, requester=ctx.actor,
                use_case_id=uc_id, agent_run_id=ctx.agent_run_id, thread_id=ctx.thread_id, session=s,
            )
            approval_id = a.id
    if d.verdict == "deny":
        raise PolicyDenied(f"Denied by policy {d.policy}: {d.reason}.", policy=d.policy, action=action)
    exc = ApprovalRequired(
        f"{action} needs a human approval (policy {d.policy}): {d.reason}. Approval {approval_id} is pending; "
        f"decide it with `steward approvals approve {approval_id}` or `reject {approval_id}`.",
        approval_id=approval_id, policy=d.policy, action=action,
    )
    exc.approval_id = approval_id  # type: ignore[attr-defined]
    raise exc
