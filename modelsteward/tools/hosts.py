"""Egress tools: ``hosts_allow`` (an admin approves a host to receive model calls) and ``hosts_list``.

What may receive calls, and why, is ``providers.egress``; the policy (an agent's request waits for a
person) is ``policies.egress_rules``.  Front-ends require role admin for ``hosts_allow``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from modelsteward.tools.base import InputModel, ToolContext, tool

__all__ = ["HostsAllowInput", "HostAllowed", "HostsListInput", "HostList", "HostView"]


class HostsAllowInput(InputModel):
    url: str = Field(min_length=1, max_length=500, description="A URL on the host (https://host:port/v1); its "
                     "origin (scheme, host, port) is what gets approved.")
    reason: str = Field("", max_length=2000)


class HostAllowed(BaseModel):
    origin: str
    added: bool = Field(description="False: the host was approved already.")
    approved_by: str
    released: list[str] = Field(default_factory=list, description="Pending models at this host, now usable.")


def _check_url(ctx: ToolContext, inp: HostsAllowInput) -> None:
    from modelsteward.providers.egress import origin

    origin(inp.url)  # InvalidInput naming the URL, before any approval is requested


@tool("hosts_allow", input_model=HostsAllowInput, output_model=HostAllowed, mutating=True, check=_check_url)
def hosts_allow(ctx: ToolContext, inp: HostsAllowInput) -> HostAllowed:
    """Approve a host to receive model calls (prompts and the model's key); its pending models become
    usable.  An agent's request waits for a person (policy host_approval)."""
    from modelsteward.providers.egress import origin
    from modelsteward.providers.endpoints import resolve_base_url
    from modelsteward.storage.hosts import approve_host

    o = origin(inp.url)

    def at_origin(m: Any) -> bool:
        try:
            return m.provider != "local" and origin(resolve_base_url(m.provider, m.base_url)) == o
        except Exception:  # noqa: BLE001 - a model without a usable endpoint is not at this host
            return False

    added, released = approve_host(ctx.steward.sessions, o, approved_by=ctx.actor, reason=inp.reason,
                                   approval_id=ctx.approval_id, at_origin=at_origin)
    return HostAllowed(origin=o, added=added, approved_by=ctx.actor, released=released)


class HostsListInput(InputModel):
    pass


class HostView(BaseModel):
    origin: str
    source: str = Field(description="configured (a provider's endpoint), admin (STEWARD_ALLOWED_HOSTS) or approved")
    detail: str = ""
    approved_by: str | None = None
    at: str | None = None


class HostList(BaseModel):
    hosts: list[HostView]
    key_env_allow: list[str] = Field(description="The admin's allow-list of api_key_env names (PREFIX* = prefix).")


@tool("hosts_list", input_model=HostsListInput, output_model=HostList, mutating=False)
def hosts_list(ctx: ToolContext, inp: HostsListInput) -> HostList:
    """Where model calls may go: providers' configured endpoints, STEWARD_ALLOWED_HOSTS, approved hosts."""
    import os

    from modelsteward.providers.egress import ALLOWED_HOSTS_ENV, configured_origins, key_env_patterns
    from modelsteward.storage.hosts import host_rows

    by_origin: dict[str, list[str]] = {}
    for provider, o in configured_origins().items():
        by_origin.setdefault(o, []).append(provider)
    hosts = [HostView(origin=o, source="configured", detail=", ".join(ps)) for o, ps in sorted(by_origin.items())]
    hosts += [HostView(origin=e.strip(), source="admin", detail=ALLOWED_HOSTS_ENV)
              for e in os.environ.get(ALLOWED_HOSTS_ENV, "").split(",") if e.strip()]
    hosts += [HostView(origin=r["origin"], source="approved", detail=r["reason"], approved_by=r["approved_by"],
                       at=r["at"]) for r in host_rows(ctx.steward.sessions)]
    return HostList(hosts=hosts, key_env_allow=key_env_patterns())
