"""The hard-coded rules, one per mutating tool (``@rule`` in ``registry.py``; the rules of model
registration are in ``model_rules.py``).  Each returns the verdicts that apply (empty: allow).  A
rule never raises for an unknown use case or model: the tool itself reports those.  Safety
actions (``rollback``, ``rollout_abort``, ``guard_check``) are never blocked; a rollback restores
routing only, never an older policy (see ``rollout/rollback.py``), so it needs no approval.

Policies (names as recorded in ``policy_decisions.policy``):
- ``host_not_approved``: deploy refused for a model at a host nobody approved (``egress_rules.py``,
  which also holds the rules of ``evaluate`` and ``hosts_allow``);
- ``one_active_rollout``: deploy refused while the use case has an active rollout;
- ``rollback_cooldown``: deploy refused within ``rollback_cooldown_minutes`` of a rollback;
- ``deploy_rate``: at most ``max_deploys_per_hour`` deploys per use case per hour;
- ``traffic_capabilities``: no deploy (shadow included) of a model that lacks a capability the use
  case's recent traffic uses (tools, structured outputs, images, audio; the fact ``traffic_needs``);
- ``evaluation_required``: canary or full traffic (deploy, each advance) needs a passing
  evaluation of that model on that use case, newer than ``eval_max_age_days``;
- ``shadow_unevaluated`` (approval): shadow traffic to a model without such an evaluation -- its
  prompts are live users' prompts; the mirrored share is then at most ``unevaluated_shadow_percent``;
- ``canary_step_size``: a canary step raises traffic by at most ``max_step_points`` (the final
  promotion to 100% is exempt; it needs ``every_step_passed`` and an approval instead);
- ``every_step_passed``: 100% only after a successful analysis of every earlier step;
- ``budget``: projected monthly cost (logged request rate x expected cost per request of the new
  mix) within ``budget_fraction`` of ``monthly_budget_usd``; a change that lowers the expected cost
  per request is never denied for the budget (it is what helps it);
- approvals: ``promotion_to_100``, ``cost_increase`` (expected cost per request up more than
  ``cost_increase_approval``), ``full_fine_tune``, ``retire_current``, ``policy_change``;
- ``agent_no_check`` (approval): an agent's ``no_check`` (``nocheck_rules.py``, with the rule of ``usecase_add``);
- ``no_self_approval``: the requester (and any agent) may not decide an approval;
- ``retention_min_age``: logs younger than one day are never purged, and no TTL is under a day;
- ``retention_shorter_than_ttl``: purging more than the use case's TTL (or, for an agent, purging a
  use case with no TTL) needs an approval; ``retention_change``: an agent changing a TTL needs one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from modelsteward.catalog.compat import traffic_reasons
from modelsteward.catalog.hosting import cost_per_request
from modelsteward.bounds import section_of, validate_steps
from modelsteward.errors import InvalidInput
from modelsteward.policies.approvals import decision_refusal
from modelsteward.policies.nocheck_rules import agent_no_check
from modelsteward.policies.egress_rules import host_refusal
from modelsteward.policies.registry import RULES, Decision, Facts, allow_always, rule
from modelsteward.storage.states import ACTIVE_ROLLOUT_STATES
from modelsteward.storage.status import status_for
from modelsteward.storage.models import (
    Allocation,
    Approval,
    Deployment,
    DeploymentHistory,
    Model,
    Rollout,
    TestResult,
    UseCase,
)

__all__ = ["RULES", "expected_cost", "SAFETY_ACTIONS", "has_passing_eval", "shadow_share"]

SAFETY_ACTIONS = frozenset({"rollback", "rollout_abort", "guard_check"})


def _d(verdict: str, policy: str, reason: str) -> Decision:
    return Decision(verdict, policy, reason)  # type: ignore[arg-type]


def _uc(s: Session, name: Any) -> UseCase | None:
    if not isinstance(name, str):
        return None
    return s.scalar(select(UseCase).where(UseCase.name == name))


def _stable(s: Session, uc: UseCase) -> str | None:
    dep = s.scalar(select(Deployment).where(Deployment.use_case_id == uc.id))
    prim = [a for a in (dep.allocations if dep else []) if a.role == "primary"]
    return max(prim, key=lambda a: a.weight).model_id if prim else None


def has_passing_eval(s: Session, uc: UseCase, model_id: str, pol: dict[str, Any], now: dt.datetime) -> bool:
    """A passing evaluation of ``model_id`` on ``uc`` newer than ``eval_max_age_days``."""
    since = now - dt.timedelta(days=float(pol["eval_max_age_days"]))
    return s.scalar(
        select(TestResult.id).where(
            TestResult.use_case_id == uc.id, TestResult.candidate_model_id == model_id,
            TestResult.passed.is_(True), TestResult.created_at >= since,
        ).limit(1)
    ) is not None


def shadow_share(s: Session, uc: UseCase, model_id: str, now: dt.datetime) -> tuple[float, bool]:
    """(percent of requests to mirror to ``model_id`` as a shadow, whether it has a passing
    evaluation): the use case's ``shadow_percent``, capped at ``unevaluated_shadow_percent`` when not."""
    pol = section_of(uc.config, "policy")
    share = float(section_of(uc.config, "rollout")["shadow_percent"])
    evaluated = has_passing_eval(s, uc, model_id, pol, now)
    return (share if evaluated else min(share, float(pol["unevaluated_shadow_percent"]))), evaluated


def _eval_ok(s: Session, uc: UseCase, model_id: str, pol: dict[str, Any], now: dt.datetime) -> Decision | None:
    days = float(pol["eval_max_age_days"])
    if not has_passing_eval(s, uc, model_id, pol, now):
        return _d("deny", "evaluation_required",
                  f"{model_id} has no passing evaluation on {uc.name!r} in the last {days:g} days; only shadow "
                  f"traffic is allowed (run `steward eval --use-case {uc.name} --candidate {model_id}`).")
    return None


def expected_cost(s: Session, model_id: str | None, use: Mapping[str, float]) -> float | None:
    """Expected USD per request of a model given the use case's mean tokens (``use``: the ``usage``
    fact); ``None`` for an unknown model or a paid one without a price (``catalog/hosting.py``)."""
    m = s.get(Model, model_id) if model_id else None
    if m is None:
        return None
    return cost_per_request(m, (use["input_tokens"], use["output_tokens"]))


def _cost_rules(f: Facts, s: Session, uc: UseCase, cand: str, share: float, pol: dict[str, Any],
                *, shadow_percent: float = 0.0) -> list[Decision]:
    """Budget (deny) and cost increase (approval) for ``cand`` taking ``share`` of live traffic."""
    out: list[Decision] = []
    stable = _stable(s, uc)
    use = f.need("usage", "budget and cost_increase")
    c_cand = expected_cost(s, cand, use)
    c_stab = expected_cost(s, stable, use)
    budget = float(uc.monthly_budget_usd) if uc.monthly_budget_usd is not None else None
    lowers_cost = not shadow_percent and c_cand is not None and c_stab is not None and c_cand < c_stab
    if budget is not None and c_cand is not None and use["monthly_requests"] > 0 and not lowers_cost:
        if shadow_percent:
            per_req = (c_stab or 0.0) + c_cand * shadow_percent / 100.0
        else:
            per_req = c_cand * share / 100.0 + (c_stab or 0.0) * (100.0 - share) / 100.0
        monthly = per_req * use["monthly_requests"]
        cap = budget * float(pol["budget_fraction"])
        if monthly > cap:
            out.append(_d("deny", "budget",
                          f"projected monthly cost ${monthly:,.2f} ({use['monthly_requests']:,.0f} requests x "
                          f"${per_req:.6f}) exceeds {float(pol['budget_fraction']):.0%} of the ${budget:,.2f} budget of "
                          f"{uc.name!r}"))
    if not shadow_percent and c_cand is not None and c_stab:
        rise = c_cand / c_stab - 1.0
        if rise > float(pol["cost_increase_approval"]):
            out.append(_d("needs_approval", "cost_increase",
                          f"{cand} raises expected cost per request by {rise:.0%} over {stable} "
                          f"(${c_cand:.6f} vs ${c_stab:.6f}); more than {float(pol['cost_increase_approval']):.0%} "
                          "needs a human approval"))
    return out


# ---------------------------------------------------------------------- per action
@rule("deploy")
def rule_deploy(f: Facts, s: Session, args: dict[str, Any]) -> list[Decision]:
    uc = _uc(s, args.get("use_case"))
    model_id = args.get("model_id")
    m = s.get(Model, model_id) if isinstance(model_id, str) else None
    if uc is None or m is None or status_for(s, m, uc.id) in ("retired", "rejected"):
        return []  # the tool refuses these with a clearer error than any policy could
    model_id = m.id
    pol = section_of(uc.config, "policy")
    strategy = args.get("strategy") or "canary"
    now = f.now
    out: list[Decision] = agent_no_check(f, "deploy", args)
    host = host_refusal(s, m)  # live prompts never go to a host nobody approved (egress_rules.py)
    if host:
        out.append(_d("deny", "host_not_approved", f"deploying sends live prompts to {host}"))
    ro = s.scalars(select(Rollout).where(Rollout.use_case_id == uc.id, Rollout.state.in_(ACTIVE_ROLLOUT_STATES))).first()
    if ro is not None:
        out.append(_d("deny", "one_active_rollout",
                      f"use case {uc.name!r} already has rollout {ro.id} ({ro.strategy} of {ro.candidate_model_id}, "
                      f"{ro.state}); one active rollout per use case"))
    last_rb = s.scalar(
        select(func.max(DeploymentHistory.created_at)).where(
            DeploymentHistory.use_case_id == uc.id, DeploymentHistory.action.in_(("rollback", "rollout_abort"))
        )
    )
    cool = float(pol["rollback_cooldown_minutes"])
    if last_rb is not None and now - last_rb < dt.timedelta(minutes=cool):
        left = dt.timedelta(minutes=cool) - (now - last_rb)
        out.append(_d("deny", "rollback_cooldown",
                      f"use case {uc.name!r} was rolled back at {last_rb:%H:%M:%S} UTC; no deploy for {cool:g} minutes "
                      f"after a rollback ({left.total_seconds() / 60:.0f} left)"))
    n = s.scalar(
        select(func.count(DeploymentHistory.id)).where(
            DeploymentHistory.use_case_id == uc.id, DeploymentHistory.action == "deploy",
            DeploymentHistory.created_at >= now - dt.timedelta(hours=1),
        )
    ) or 0
    cap = int(pol["max_deploys_per_hour"])
    if n >= cap:
        out.append(_d("deny", "deploy_rate", f"{n} deploys on {uc.name!r} in the last hour; at most {cap} per hour"))
    if f.traffic_needs:
        out += [_d("deny", "traffic_capabilities", r)
                for r in traffic_reasons(f.traffic_needs.get("capabilities"), m, uc.name)]
    if strategy in ("canary", "full"):
        e = _eval_ok(s, uc, model_id, pol, now)
        if e:
            out.append(e)
    rcfg = section_of(uc.config, "rollout")
    if strategy == "canary":
        try:
            validate_steps(args.get("steps") if args.get("steps") is not None else rcfg.get("steps"),
                           float(pol["max_step_points"]))
        except InvalidInput as exc:  # a step plan beyond the bound is a denial (recorded), not bad input
            out.append(_d("deny", "canary_step_size", exc.message))
        out += _cost_rules(f, s, uc, model_id, 100.0, pol)  # the goal of a canary is 100%
    elif strategy == "full":
        out += _cost_rules(f, s, uc, model_id, 100.0, pol)
        out.append(_d("needs_approval", "promotion_to_100",
                      f"switching {uc.name!r} to {model_id} at 100% at once needs a human approval"))
    elif strategy == "shadow":
        share, evaluated = shadow_share(s, uc, model_id, now)
        if not evaluated:
            out.append(_d("needs_approval", "shadow_unevaluated",
                          f"{model_id} has no passing evaluation on {uc.name!r}; mirroring live prompts to it needs a "
                          f"human approval, and then only {share:g}% of requests are mirrored "
                          f"(unevaluated_shadow_percent)"))
        out += _cost_rules(f, s, uc, model_id, 0.0, pol, shadow_percent=share)
    return out


@rule("rollout_advance")
def rule_rollout_advance(f: Facts, s: Session, args: dict[str, Any]) -> list[Decision]:
    """The rules of raising a canary's traffic (``_advance_rules``); an agent's no_check needs an approval."""
    return agent_no_check(f, "rollout_advance", args) + _advance_rules(f, s, args)


def _advance_rules(f: Facts, s: Session, args: dict[str, Any]) -> list[Decision]:
    uc = _uc(s, args.get("use_case"))
    now = f.now
    if uc is None:
        return []
    ro = s.scalars(select(Rollout).where(Rollout.use_case_id == uc.id, Rollout.state == "waiting")).first()
    if ro is None or ro.strategy == "shadow":
        return []
    # The tool gathers the analysis of the waiting step, and re-checks right before raising traffic
    # with the analysis it acted on (no race between an inconclusive verdict here and a successful one there).
    result = f.need("analysis", "rollout_advance")
    if result.outcome != "successful":
        return []  # the tool waits or aborts; neither raises traffic
    steps = [float(x) for x in ro.steps or []]
    nxt = ro.step_index + 1
    if nxt >= len(steps):
        return []
    benefit = None
    if steps[nxt] >= 100.0 and ro.strategy == "canary":
        benefit = f.need("benefit", "rollout_advance")
        if not benefit.worth_it:
            return []  # the tool ends the rollout "no gain, kept the current model": traffic goes down, not up
    pol = section_of(uc.config, "policy")
    out: list[Decision] = []
    e = _eval_ok(s, uc, ro.candidate_model_id, pol, now)
    if e:
        out.append(e)
    target, prev = steps[nxt], steps[ro.step_index]
    if target < 100.0 and target - prev > float(pol["max_step_points"]):
        out.append(_d("deny", "canary_step_size",
                      f"step {prev:g}% -> {target:g}% raises traffic by {target - prev:g} points; at most "
                      f"{float(pol['max_step_points']):g}"))
    out += [d for d in _cost_rules(f, s, uc, ro.candidate_model_id, target, pol)
            if d.verdict == "deny" or target >= 100.0]
    if target >= 100.0:
        passed = {e.get("step_index") for e in ro.analyses or []
                  if e.get("event") == "analysis" and e.get("outcome") == "successful"}
        passed.add(ro.step_index)
        missing = [i for i in range(len(steps) - 1) if i not in passed]
        if missing:
            out.append(_d("deny", "every_step_passed",
                          f"promotion to 100% needs a successful analysis of every step; steps {missing} "
                          f"({', '.join(f'{steps[i]:g}%' for i in missing)}) have none"))
        out.append(_d("needs_approval", "promotion_to_100",
                      f"rollout {ro.id}: {ro.candidate_model_id} passed every canary step on {uc.name!r} "
                      f"({result.reasons[0]}); benefit: {benefit.rule if benefit else 'n/a'}; promotion to 100% "
                      "needs a human approval"))
    return out


@rule("retire_model")
def rule_retire_model(f: Facts, s: Session, args: dict[str, Any]) -> list[Decision]:
    m = s.get(Model, args.get("model_id")) if isinstance(args.get("model_id"), str) else None
    if m is None:
        return []
    live = s.scalar(select(Allocation.id).where(Allocation.model_id == m.id, Allocation.role == "primary").limit(1))
    if m.status == "current" or live is not None:
        return [_d("needs_approval", "retire_current",
                   f"{m.id} is a current model; retiring it needs a human approval")]
    return []


@rule("fine_tune")
def rule_fine_tune(f: Facts, s: Session, args: dict[str, Any]) -> list[Decision]:
    if str(args.get("method") or "lora").lower() == "full":
        return [_d("needs_approval", "full_fine_tune",
                   f"full fine-tuning of {args.get('base') or args.get('base_model_id') or 'a model'} needs a human "
                   "approval (use method lora to proceed without one)")]
    return []


@rule("set_policy")
def rule_set_policy(f: Facts, s: Session, args: dict[str, Any]) -> list[Decision]:
    return [_d("needs_approval", "policy_change",
               f"changing policy of {args.get('use_case')!r} needs a human approval")]


@rule("approval_decide")
def rule_approval_decide(f: Facts, s: Session, args: dict[str, Any]) -> list[Decision]:
    out: list[Decision] = []
    if f.approval_id is not None:
        out.append(_d("deny", "no_self_approval", "an approval decision cannot be executed through an approval"))
    a = s.get(Approval, args.get("approval_id")) if isinstance(args.get("approval_id"), int) else None
    why = decision_refusal(s, a, f.actor)  # the one no-self-approval check (policies/approvals.py)
    if why:
        out.append(_d("deny", "no_self_approval", why))
    return out


# Mutating tools that need no restriction, each with the reason (an explicit entry, never a gap).
for _tool, _why in (
    ("rollback", "safety action: restores a snapshot's routing (never its policy), never blocked"),
    ("rollout_abort", "safety action: restores the routing from before the rollout, never blocked"),
    ("guard_check", "safety action: guardrails warn, pause, roll back or disable, never blocked"),
    ("scan", "reads provider catalogs into the registry as discovered models; no traffic changes"),
    ("logs_import", "appends rows to the log store; changes no routing"),
    ("build_dataset", "writes a training dataset under the workspace; changes no routing"),
    ("fine_tune_cancel", "stops a fine-tuning job; changes no routing"),
    ("agent_run", "each tool call of the run passes its own rule"),
    ("measure_gains", "writes only the derived gains ledger (and a violation to review)"),
):
    allow_always(_tool, _why)


@rule("logs_purge")
def rule_logs_purge(f: Facts, s: Session, args: dict[str, Any]) -> list[Decision]:
    from modelsteward.storage.retention import parse_age, retention_days

    uc = _uc(s, args.get("use_case"))
    if uc is None or args.get("older_than") is None:
        return []  # unknown use case: the tool reports it; no age: the use case's own TTL applies
    try:
        age = parse_age(str(args["older_than"]))
    except InvalidInput:
        return []  # the tool reports the bad age
    if age < dt.timedelta(days=1):
        return [_d("deny", "retention_min_age", f"purging logs younger than 1 day is refused ({args['older_than']}): "
                   "guard checks, rollout analyses and evaluations read them")]
    ttl = retention_days(uc.config)
    if ttl is not None and age < dt.timedelta(days=ttl):
        return [_d("needs_approval", "retention_shorter_than_ttl",
                   f"purging {uc.name!r} logs older than {args['older_than']} deletes more than its {ttl:g}-day "
                   "retention; a person approves")]
    if ttl is None and f.actor.startswith("agent:"):
        return [_d("needs_approval", "retention_shorter_than_ttl",
                   f"{uc.name!r} has no retention TTL; an agent's purge needs a human approval")]
    return []


@rule("logs_retention")
def rule_logs_retention(f: Facts, s: Session, args: dict[str, Any]) -> list[Decision]:
    days = args.get("days")
    if isinstance(days, (int, float)) and days < 1:
        return [_d("deny", "retention_min_age", f"a retention under 1 day ({days}) is refused: guard checks, "
                   "rollout analyses and evaluations read recent logs")]
    if f.actor.startswith("agent:"):
        return [_d("needs_approval", "retention_change", f"changing the retention of {args.get('use_case')!r} "
                   "needs a human approval")]
    return []
