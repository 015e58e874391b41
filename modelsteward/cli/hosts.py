"""``steward hosts allow URL | list``: where model calls (prompts and keys) may go.

Allowing a host needs role admin: the OS user who owns the workspace, or a ``STEWARD_TOKEN`` of role
admin (``cli_identity``); the approval is recorded with who and why (``approved_hosts``).
"""

from __future__ import annotations

from typing import Any

import typer

from modelsteward.cli.common import JsonOpt, cli_identity, console, emit_json, open_ctx, table

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    hosts_app = typer.Typer(help="Egress: the hosts that may receive model calls.", no_args_is_help=True)
    app.add_typer(hosts_app, name="hosts")

    @hosts_app.command("allow")
    def hosts_allow(
        url: str = typer.Argument(..., help="A URL on the host, e.g. https://gpu-box:8000/v1."),
        reason: str = typer.Option("", "--reason", help="Why this host may receive prompts and keys."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Approve a host (admin): its models stop being pending and may be evaluated and deployed."""
        from modelsteward.tools.base import ToolContext, call_tool
        from modelsteward.tools import hosts as hosts_tools

        base = open_ctx()
        actor, _role = cli_identity(base.steward, need_role="admin")
        out = call_tool(hosts_tools.hosts_allow, {"url": url, "reason": reason},
                        ToolContext(steward=base.steward, actor=actor))
        if as_json:
            emit_json(out)
            return
        said = "approved" if out.added else "already approved"
        console.print(f"{out.origin} {said} by {out.approved_by}", markup=False, highlight=False)
        if out.released:
            console.print(f"no longer pending: {', '.join(out.released)}", markup=False, highlight=False)

    @hosts_app.command("list")
    def hosts_list(as_json: bool = JsonOpt) -> None:
        """Where model calls may go, and why; and the allowed api_key_env names."""
        from modelsteward.tools.base import call_tool
        from modelsteward.tools import hosts as hosts_tools

        ctx = open_ctx()
        out = call_tool(hosts_tools.hosts_list, {}, ctx)
        if as_json:
            emit_json(out)
            return
        table("Hosts that may receive model calls", ["origin", "source", "detail", "approved by"],
              [[h.origin, h.source, h.detail, h.approved_by or ""] for h in out.hosts])
        console.print(f"api_key_env allow-list: {', '.join(out.key_env_allow) or '(empty)'}", markup=False,
                      highlight=False)
