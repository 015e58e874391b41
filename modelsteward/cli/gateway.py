"""``steward keys create | list | revoke``: gateway API keys for applications."""

from __future__ import annotations

from typing import Any, Optional

import typer

from modelsteward.cli.common import JsonOpt, console, emit_json, open_ctx, table

__all__ = ["register"]

keys_app = typer.Typer(help="Gateway API keys for applications (separate from admin tokens).", no_args_is_help=True)


def _use_cases(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out += [p.strip() for p in v.split(",") if p.strip()]
    return out


@keys_app.command("create")
def create(
    name: str = typer.Option(..., "--name", help="A name for the application using the key."),
    use_case: Optional[list[str]] = typer.Option(  # noqa: UP007 - typer needs Optional here
        None, "--use-case", help="Bind the key to this use case (repeat or comma-separate; default: all)."
    ),
    json_out: bool = JsonOpt,
) -> None:
    """Create a gateway key; the key is printed once and stored only as a hash."""
    from modelsteward.tools import access as access_tools
    from modelsteward.tools.base import call_tool

    ctx = open_ctx()
    try:
        created = call_tool(access_tools.key_create, {"name": name, "use_cases": _use_cases(use_case)}, ctx)
    finally:
        ctx.steward.close()
    if json_out:
        emit_json({"id": created.id, "name": created.name, "key": created.key, "prefix": created.prefix,
                   "use_cases": created.use_cases})
        return
    scope = ", ".join(created.use_cases) or "all use cases"
    console.print(f"[green]gateway key {created.name!r} created[/green] for {scope}. It is shown only once:")
    typer.echo(created.key)


@keys_app.command("list")
def list_(json_out: bool = JsonOpt) -> None:
    """List gateway keys (names, prefixes and bindings; never the keys)."""
    from modelsteward.gateway.keys import list_keys

    ctx = open_ctx()
    try:
        rows = list_keys(ctx.steward.registry)
    finally:
        ctx.steward.close()
    data: list[dict[str, Any]] = [
        {"id": k.id, "name": k.name, "prefix": k.prefix, "use_cases": [str(u) for u in k.use_cases or []],
         "revoked": k.revoked, "created_at": k.created_at}
        for k in rows
    ]
    if json_out:
        emit_json(data)
        return
    table("gateway keys", ["name", "prefix", "use cases", "revoked", "created"],
          [(d["name"], d["prefix"] + "...", ", ".join(d["use_cases"]) or "all", d["revoked"], d["created_at"])
           for d in data])


@keys_app.command("revoke")
def revoke(name: str = typer.Argument(..., help="The key's name."), json_out: bool = JsonOpt) -> None:
    """Revoke a gateway key (the gateway refuses it within a second)."""
    from modelsteward.tools import access as access_tools
    from modelsteward.tools.base import call_tool

    ctx = open_ctx()
    try:
        row = call_tool(access_tools.key_revoke, {"name": name}, ctx)
    finally:
        ctx.steward.close()
    if json_out:
        emit_json({"name": row.name, "revoked": True})
    else:
        console.print(f"gateway key {row.name!r} revoked")


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
