"""Rules of access: who may create or revoke credentials (API tokens, gateway keys), and their audit.

Policies (names as recorded in ``policy_decisions.policy``):
- ``no_agent_credentials`` (deny): an agent never creates or revokes a token or a gateway key (it
  would hand itself, or anyone, a way in; nor may it lock people out);
- ``credentials_role`` (deny): an API token is created or revoked by role admin only (a token can
  carry any role, admin included: only an admin hands one out); a gateway key by role operator or
  higher; a caller whose role no front-end proved (``Facts.role`` None) is refused.
Every allowed change is audited: the tool records an ``allow`` row in ``policy_decisions`` (who,
what, never the secret) with ``audit`` once it has acted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelsteward.context import ToolContext
from modelsteward.policies.registry import Decision, Facts, rule
from modelsteward.storage.approvals import transaction
from modelsteward.storage.tokens import API_ROLES, role_at_least

if TYPE_CHECKING:
    from modelsteward.storage.policy_reads import PolicyReads

__all__ = ["NEEDED_ROLE", "audit"]

NEEDED_ROLE = {"token_create": "admin", "token_revoke": "admin", "key_create": "operator", "key_revoke": "operator"}
_WHAT = {"token_create": "create an API token", "token_revoke": "revoke an API token",
         "key_create": "create a gateway key", "key_revoke": "revoke a gateway key"}


def _credentials(action: str, f: Facts) -> list[Decision]:
    if f.actor.startswith("agent:"):
        return [Decision("deny", "no_agent_credentials",
                         f"an agent may not {_WHAT[action]}; a person does it (`steward tokens` / `steward keys`)")]
    need = NEEDED_ROLE[action]
    if f.role not in API_ROLES or not role_at_least(f.role, need):
        have = "no proven role" if f.role is None else f"role {f.role!r}"
        return [Decision("deny", "credentials_role",
                         f"to {_WHAT[action]} needs role {need!r} or higher; {f.actor} has {have}")]
    return []


def _credential_rule(action: str) -> None:
    def check(f: Facts, r: PolicyReads, args: dict[str, Any]) -> list[Decision]:
        return _credentials(action, f)

    check.__qualname__ = f"credential_rule[{action}]"
    rule(action, doc=f"Only a person with role {NEEDED_ROLE[action]} or higher may {_WHAT[action]}; never an agent.")(check)


for _action in NEEDED_ROLE:  # token_create, token_revoke, key_create, key_revoke: one rule each
    _credential_rule(_action)


def audit(ctx: ToolContext, action: str, args: dict[str, Any], what: str) -> None:
    """Record an allowed credential change (``verdict`` allow, policy ``credentials_role``): who did
    ``what``.  ``args`` must not hold the secret (the tools pass the name, role, bound use cases)."""
    with transaction(ctx.steward.sessions) as tx:
        tx.record_decision(action=action, arguments=dict(args), verdict="allow", policy="credentials_role",
                           reason=f"{what} by {ctx.actor} (role {ctx.role})", actor=ctx.actor, use_case_id=None)
