"""Rules of editing and deleting use cases (``usecase_update``, ``usecase_delete``).

Policies (names as recorded in ``policy_decisions.policy``):
- ``live_usecase_change`` (approval): changing the routing-relevant settings -- fallback chain,
  monthly budget (set or cleared), sticky routing -- of a use case with a live routing table;
  descriptions, weights, SLOs, golden set and the rest change without one;
- ``usecase_in_rollout`` (deny): deleting a use case while one of its rollouts is active;
- ``usecase_has_traffic`` (deny): deleting a use case that logged requests within the last
  ``TRAFFIC_WINDOW`` (its application still calls it);
- ``agent_no_check`` (approval): an agent's update with ``no_check`` (``nocheck_rules.py``);
- ``agent_usecase_delete`` (approval): an agent deleting a use case (agents do not get the tool,
  but a rule never depends on that).
A rule never raises for an unknown use case: the tool reports it (404).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from modelsteward.policies.nocheck_rules import agent_no_check
from modelsteward.policies.registry import Decision, Facts, rule
from modelsteward.storage.models import Allocation, Deployment, Rollout, UseCase
from modelsteward.storage.states import ACTIVE_ROLLOUT_STATES

__all__ = ["TRAFFIC_WINDOW", "ROUTING_FIELDS", "recent_requests", "rule_usecase_update", "rule_usecase_delete"]

TRAFFIC_WINDOW = "1h"
ROUTING_FIELDS = ("fallback", "budget_usd", "sticky")


def _uc(s: Session, name: Any) -> UseCase | None:
    return s.scalar(select(UseCase).where(UseCase.name == name)) if isinstance(name, str) else None


def _live(s: Session, uc: UseCase) -> list[str]:
    rows = s.execute(
        select(Allocation.model_id, Allocation.role, Allocation.weight).join(Deployment)
        .where(Deployment.use_case_id == uc.id).order_by(Allocation.role, Allocation.model_id)
    ).all()
    return [f"{mid} ({role} {float(w):g}%)" for mid, role, w in rows]


def _money(v: Any) -> Decimal | None:
    if v is None:
        return None
    try:
        return Decimal(str(v))
    except InvalidOperation:
        return None


def routing_changes(uc: UseCase, args: dict[str, Any]) -> list[str]:
    """The routing-relevant changes ``args`` would make to ``uc`` (empty: none)."""
    cleared = set(args.get("clear") or [])
    out: list[str] = []
    old_fb = list(uc.fallback or [])
    if args.get("fallback") is not None or "fallback" in cleared:
        new_fb = list(args.get("fallback") or [])
        if new_fb != old_fb:
            out.append(f"fallback {' -> '.join(old_fb) or 'none'} => {' -> '.join(new_fb) or 'none'}")
    if args.get("budget_usd") is not None or "budget_usd" in cleared:
        old_b, new_b = _money(uc.monthly_budget_usd), _money(args.get("budget_usd"))
        if old_b != new_b:
            out.append(f"monthly budget {'unset' if old_b is None else f'${old_b:f}'} => "
                       f"{'unset' if new_b is None else f'${new_b:f}'}")
    if args.get("sticky") is not None and bool(args["sticky"]) != bool(uc.sticky):
        out.append(f"sticky {bool(uc.sticky)} => {bool(args['sticky'])}")
    return out


def recent_requests(f: Facts, name: str, window: str = TRAFFIC_WINDOW) -> int:
    """Requests of use case ``name`` in the log store within ``window``."""
    rows = f.steward.logs.stats(use_case=name, since=window)
    return sum(int(r.get("count") or 0) for r in rows)


@rule("usecase_update")
def rule_usecase_update(f: Facts, s: Session, args: dict[str, Any]) -> list[Decision]:
    """Routing-relevant changes (fallback, budget, sticky) of a live use case need an approval."""
    uc = _uc(s, args.get("use_case"))
    skip = agent_no_check(f, "usecase_update", args)  # an agent's no_check needs an approval (nocheck_rules.py)
    if uc is None:
        return skip
    changes = routing_changes(uc, args)
    live = _live(s, uc)
    if changes and live:
        return skip + [Decision("needs_approval", "live_usecase_change",
                         f"{uc.name!r} routes live traffic ({', '.join(live)}); changing {'; '.join(changes)} "
                         "needs a human approval")]
    return skip


@rule("usecase_delete")
def rule_usecase_delete(f: Facts, s: Session, args: dict[str, Any]) -> list[Decision]:
    """No delete during a rollout or while requests arrive; an agent's delete needs an approval."""
    uc = _uc(s, args.get("use_case"))
    if uc is None:
        return []
    out: list[Decision] = []
    ro = s.scalars(select(Rollout).where(Rollout.use_case_id == uc.id, Rollout.state.in_(ACTIVE_ROLLOUT_STATES))).first()
    if ro is not None:
        out.append(Decision("deny", "usecase_in_rollout",
                            f"{uc.name!r} has rollout {ro.id} ({ro.strategy} of {ro.candidate_model_id}, {ro.state}); "
                            "abort it first (`steward rollout abort`)"))
    n = recent_requests(f, uc.name)
    if n:
        out.append(Decision("deny", "usecase_has_traffic",
                            f"{uc.name!r} logged {n} request(s) in the last {TRAFFIC_WINDOW}; its application still "
                            "calls it: stop that traffic first"))
    if f.actor.startswith("agent:"):
        out.append(Decision("needs_approval", "agent_usecase_delete",
                            f"an agent deleting use case {uc.name!r} needs a human approval"))
    return out
