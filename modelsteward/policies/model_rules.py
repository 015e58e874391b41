"""Rules of model registration (``models_register`` is an upsert on provider + model id).

Policies (names as recorded in ``policy_decisions.policy``):
- ``model_in_rollout`` (deny): changing a model's endpoint (``base_url``), prices or key reference
  (``api_key_env``) while a rollout of that model (as candidate or as the stable model) is active;
- ``live_model_change`` (approval): the same change on a model that carries traffic -- a primary,
  canary or shadow allocation, or a use case's fallback list.  Setting prices to 0 is such a
  change (it switches budgets and cost rules off); so is re-pointing the endpoint, which would send
  live prompts elsewhere.
- ``agent_registration`` (approval): an agent registering or changing a model (an agent never widens
  where prompts go on its own);
- ``host_not_approved`` (deny): re-pointing a model with traffic at a host nobody approved (a model
  without traffic goes ``pending`` instead: ``egress_rules.py``).
Otherwise registering a new model, or one without traffic, or repeating the stored values, needs nothing.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from modelsteward.errors import ConfigError, InvalidInput
from modelsteward.policies.egress_rules import url_refusal
from modelsteward.policies.registry import Decision, Facts, rule
from modelsteward.providers.endpoints import resolve_base_url
from modelsteward.storage.registry import parse_price

if TYPE_CHECKING:
    from modelsteward.storage.policy_reads import PolicyReads

__all__ = ["endpoint_changes", "model_traffic", "rule_models_register"]



def _url(provider: str, url: str | None) -> str | None:
    try:
        return resolve_base_url(provider, url)
    except ConfigError:
        return url.rstrip("/") if url else None


def _price(v: Any) -> Decimal | None:
    """A price as the registry reads it (``storage.registry.parse_price``, the one price parser);
    ``None`` for one it refuses: the tool reports that, with the field, not the policy."""
    try:
        return parse_price(v)
    except InvalidInput:
        return None


def _fmt(d: Decimal | None) -> str:
    return "unset" if d is None else format(d.normalize(), "f")


def endpoint_changes(m: Any, args: dict[str, Any]) -> list[str]:
    """The endpoint, price and key-reference changes ``args`` would make to ``m`` (empty: none)."""
    out: list[str] = []
    if args.get("base_url") is not None:
        old, new = _url(m.provider, m.base_url), _url(m.provider, args["base_url"])
        if old != new:
            out.append(f"base_url {old or 'unset'} -> {new}")
    for field, attr in (("price_in", "price_in_per_m"), ("price_out", "price_out_per_m")):
        if args.get(field) is not None:
            old_p, new_p = _price(getattr(m, attr)), _price(args[field])
            if old_p != new_p:
                out.append(f"{field} {_fmt(old_p)} -> {_fmt(new_p)}")
    if args.get("api_key_env") is not None:
        old_k, new_k = (m.meta or {}).get("api_key_env") or None, args["api_key_env"] or None
        if old_k != new_k:
            out.append(f"api_key_env {old_k or 'unset'} -> {new_k or 'unset'}")
    # a hosting cost is a price too: it feeds cost per request, budgets and the cost rules
    host = (m.meta or {}).get("hosting") or {}
    stored = {"cost_per_hour": _price(host.get("cost_per_hour_usd")), "hardware": host.get("hardware")}
    for field in ("hosting_cost", "cost_per_hour", "hardware"):
        if args.get(field) is None:
            continue
        new_v = _price(args[field]) if field == "cost_per_hour" else args[field]
        if field == "hosting_cost" or new_v != stored[field]:
            out.append(f"{field} -> {args[field]}")
    return out


def model_traffic(r: PolicyReads, model_id: str) -> list[str]:
    """Where ``model_id`` receives requests: allocations (any role) and fallback lists."""
    out = [f"{role} on {name!r} ({w:g}%)" for name, role, w in r.model_allocations(model_id)]
    return out + [f"fallback of {name!r}" for name in r.fallback_of(model_id)]


@rule("models_register")
def rule_models_register(f: Facts, r: PolicyReads, args: dict[str, Any]) -> list[Decision]:
    """Endpoint, price or key-reference changes of a model with traffic (approval) or in a rollout (deny)."""
    provider, pid = args.get("provider"), args.get("model_id")
    if not isinstance(provider, str) or not isinstance(pid, str):
        return []
    agent = [Decision("needs_approval", "agent_registration",
                      f"an agent asks to register {provider}:{pid}" + (f" at {args['base_url']}" if args.get("base_url")
                                                                       else "") + "; a person approves new endpoints")
             ] if f.actor.startswith("agent:") else []
    m = r.model(f"{provider}:{pid}")
    if m is None:
        return agent  # a new model has no traffic yet
    changes = endpoint_changes(m, args)
    if not changes:
        return agent
    what = "; ".join(changes)
    ro = r.active_rollout_of_model(m.id)
    if ro is not None:
        return [Decision("deny", "model_in_rollout",
                         f"{m.id} is in rollout {ro.id} ({ro.strategy}, {ro.state}); its endpoint, prices and key "
                         f"reference stay fixed until that rollout ends ({what})")]
    traffic = model_traffic(r, m.id)
    host = url_refusal(r, m.provider, args["base_url"]) if traffic and args.get("base_url") else None
    if host:
        return [Decision("deny", "host_not_approved",
                         f"{m.id} serves traffic ({', '.join(traffic)}); re-pointing it sends live prompts to {host}")]
    if traffic:
        return [*agent, Decision("needs_approval", "live_model_change",
                                 f"{m.id} serves traffic ({', '.join(traffic)}); changing {what} needs a human approval")]
    return agent
