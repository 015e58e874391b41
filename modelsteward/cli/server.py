"""``steward serve`` and ``steward tokens create|list|revoke`` (API and console tokens)."""

from __future__ import annotations

import typer

from modelsteward.cli.common import JsonOpt, console, emit_json, table
from modelsteward.errors import InvalidInput

__all__ = ["register"]

ROLES = ("viewer", "operator", "approver", "admin")


def register(app: typer.Typer) -> None:
    _register_serve(app)
    tokens = typer.Typer(help="API and console tokens (roles viewer < operator < approver < admin).",
                         no_args_is_help=True)
    app.add_typer(tokens, name="tokens")
    _register_tokens(tokens)


def _register_serve(app: typer.Typer) -> None:
    """``steward serve``."""

    @app.command("serve")
    def serve(
        host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
        port: int = typer.Option(8080, "--port", min=1, max=65535, help="TCP port."),
        no_control_loop: bool = typer.Option(
            False, "--no-control-loop",
            help="Serve API, gateway and console only: no guard checks, rollout steps, agent cycles or notifications "
                 "from this replica (e.g. gateway-only replicas)."),
    ) -> None:
        """API + /v1 gateway + web console + control loop in one process (graceful drain on SIGTERM).

        The control loop (guard checks every STEWARD_GUARD_EVERY, rollout steps as soon as they can be
        judged, agent cycles every STEWARD_AGENT_EVERY or on STEWARD_AGENT_CRON, notifications to
        STEWARD_NOTIFY) runs on one replica at a time: the holder of a lease in the registry."""
        import logging
        import os

        from modelsteward.gateway.serve import listen
        from modelsteward.gateway.serve import serve as gateway_serve
        from modelsteward.server import create_app
        from modelsteward.server.loopconfig import LoopConfig

        # bad settings stop the server before anything starts (a ConfigError: one line, exit 1)
        loop_cfg = None if no_control_loop else LoopConfig.from_env(public_url=f"http://{host}:{port}")
        from modelsteward.settings import get_settings
        from modelsteward.storage.objectstore import open_objects

        open_objects(get_settings().logs_location)  # STEWARD_LOG_DIR: a supported scheme, an existing bucket
        sock = listen(host, port)  # a port in use: one line, exit 1, before any banner
        # a long-running server process: freeze the start-up heap out of the GC (p99 latency)
        os.environ.setdefault("STEWARD_GATEWAY_FREEZE_GC", "1")
        from modelsteward.gateway.events import configure_logging

        configure_logging(logging.WARNING)  # failures are logged as they happen (JSON: STEWARD_LOG_FORMAT=json)
        app_ = create_app()
        app_.state.startup_checks = True  # one warning per live or fallback model whose check fails (background)
        if loop_cfg is not None:
            from modelsteward.server.controlloop import ControlLoop

            app_.state.control_loop = ControlLoop(app_.state.steward, loop_cfg)
        console.print(f"Model Steward on http://{host}:{port}: console /, API /api (docs /docs), gateway /v1, "
                      "health /healthz /readyz, metrics /metrics.", markup=False, highlight=False)
        console.print(loop_cfg.describe() + "; one leader among the replicas on this registry."
                      if loop_cfg is not None else "control loop: off (--no-control-loop).", markup=False, highlight=False)
        # chat completions are answered before the API middleware (the gateway's fast path)
        gateway_serve(app_, host, port, gateway_state=getattr(app_.state, "gateway_state", None), sock=sock)


def _register_tokens(tokens: typer.Typer) -> None:
    """``steward tokens create|list|revoke``."""

    @tokens.command("create")
    def tokens_create(
        name: str = typer.Option(..., "--name", help="Who or what holds the token (unique)."),
        role: str = typer.Option(..., "--role", help="viewer | operator | approver | admin"),
        as_json: bool = JsonOpt,
    ) -> None:
        """Create a token and print it once (only its hash is stored)."""
        from modelsteward.context import open_steward
        from modelsteward.server.auth import create_token

        if role not in ROLES:  # a StewardError: run_cli prints one line and exits 2
            raise InvalidInput(f"Unknown role {role!r}; use one of {', '.join(ROLES)}.")
        steward = open_steward()
        try:
            row, plain = create_token(steward, name, role)
        finally:
            steward.close()
        if as_json:
            emit_json({"id": row.id, "name": row.name, "role": row.role, "prefix": row.prefix, "token": plain})
            return
        console.print(f"Created token {row.name!r} (role {row.role}). Store it now; it is not shown again:")
        typer.echo(plain)

    @tokens.command("list")
    def tokens_list(as_json: bool = JsonOpt) -> None:
        """List tokens (names, roles, prefixes; never the tokens)."""
        from modelsteward.context import open_steward
        from modelsteward.server.auth import list_tokens

        steward = open_steward()
        try:
            rows = list_tokens(steward)
        finally:
            steward.close()
        data = [{"id": r.id, "name": r.name, "role": r.role, "prefix": r.prefix, "revoked": r.revoked,
                 "created_at": r.created_at} for r in rows]
        if as_json:
            emit_json(data)
            return
        table("API tokens", ["id", "name", "role", "prefix", "revoked", "created"],
              [[d["id"], d["name"], d["role"], d["prefix"], d["revoked"], d["created_at"]] for d in data])

    @tokens.command("revoke")
    def tokens_revoke(token_id: int = typer.Argument(..., help="Token id (see tokens list)."), as_json: bool = JsonOpt) -> None:
        """Revoke a token; its console sessions end at once."""
        from modelsteward.context import open_steward
        from modelsteward.server.auth import revoke_token

        steward = open_steward()
        try:
            row = revoke_token(steward, token_id)
        finally:
            steward.close()
        if as_json:
            emit_json({"id": row.id, "name": row.name, "revoked": True})
            return
        console.print(f"Revoked token {row.id} ({row.name}).")
