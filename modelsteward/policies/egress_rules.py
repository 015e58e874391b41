"""Rules of egress: who may widen where prompts and keys go (``hosts_allow``, ``evaluate``), and the
host check other rules share (``host_refusal``: deploy, models_register).

Policies (names as recorded in ``policy_decisions.policy``):
- ``host_not_approved`` (deny): evaluating (candidate or judge), deploying, or re-pointing a model
  with traffic at a host nobody approved (``providers.egress``: a provider's configured endpoint,
  ``STEWARD_ALLOWED_HOSTS`` or ``steward hosts allow``);
- ``host_approval`` (approval): an agent asking to allow a host (an agent never widens its own reach);
- ``new_host_in_run`` (approval): an agent evaluating a model it registered, or whose host was
  approved, in the same run (what a run brings in, a person looks at before prompts go there).
A person allowing a host needs role admin; the front-ends check the role (CLI ``cli_identity``,
API route role), this rule records who did it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelsteward.errors import ConfigError
from modelsteward.policies.registry import Decision, Facts, rule
from modelsteward.providers.egress import host_allowance, origin
from modelsteward.providers.endpoints import resolve_base_url

if TYPE_CHECKING:
    from modelsteward.storage.policy_reads import PolicyReads

__all__ = ["host_refusal", "url_refusal", "rule_hosts_allow", "rule_evaluate"]


def url_refusal(r: PolicyReads, provider: str, base_url: str | None) -> str | None:
    """Why a ``provider`` model at ``base_url`` may not be called (None: its host may receive calls)."""
    if provider == "local":
        return None
    try:
        url = resolve_base_url(provider, base_url)
    except ConfigError:
        return None  # no endpoint at all: the provider refuses that with its own error
    if host_allowance(url, r.approved_origins()) is not None:
        return None
    o = origin(url)
    return f"{o} is a host nobody approved; an admin approves it with `steward hosts allow {o}`"


def host_refusal(r: PolicyReads, m: Any) -> str | None:
    """``url_refusal`` for a stored model (a row view), naming it."""
    why = url_refusal(r, m.provider, m.base_url)
    return f"{m.id}: {why}" if why else None


def _in_this_run(r: PolicyReads, f: Facts, m: Any) -> str | None:
    """What this agent run brought in about ``m`` (None: nothing, or not an agent)."""
    if not f.actor.startswith("agent:"):
        return None
    if (m.meta or {}).get("registered_by") == f.actor:
        return f"{m.id} was registered in this agent run"
    try:
        o = origin(resolve_base_url(m.provider, m.base_url)) if m.provider != "local" else None
    except (ConfigError, ValueError):
        o = None
    if o and r.host_approval_requester(o) == f.actor:
        return f"the host of {m.id} ({o}) was approved in this agent run"
    return None


@rule("hosts_allow")
def rule_hosts_allow(f: Facts, r: PolicyReads, args: dict[str, Any]) -> list[Decision]:
    """An agent asking to allow a host waits for a person (host_approval)."""
    if f.actor.startswith("agent:"):
        return [Decision("needs_approval", "host_approval",
                         f"an agent asks to let model calls (prompts and keys) go to {args.get('url')!r}; a person "
                         "approves the hosts that may receive them")]
    return []


@rule("evaluate")
def rule_evaluate(f: Facts, r: PolicyReads, args: dict[str, Any]) -> list[Decision]:
    """Evaluation sends logged prompts to the candidate (and judge): only to approved hosts."""
    out: list[Decision] = []
    for field in ("model_id", "judge_model"):
        mid = args.get(field)
        m = r.model(mid)
        if m is None:
            continue  # the tool reports an unknown model
        why = host_refusal(r, m)
        if why:
            out.append(Decision("deny", "host_not_approved", f"evaluating sends logged prompts to {why}"))
            continue
        new = _in_this_run(r, f, m)
        if new:
            out.append(Decision("needs_approval", "new_host_in_run",
                                f"{new}; evaluating sends it the use case's logged prompts, so a person approves"))
    return out
