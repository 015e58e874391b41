"""Shared CLI plumbing: opening the workspace, JSON output, errors as one line and a non-zero exit."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from modelsteward.errors import InvalidInput, StewardError

__all__ = ["console", "err_console", "open_ctx", "cli_identity", "emit_json", "table", "run_cli", "JsonOpt", "to_jsonable", "fail", "parse_weights"]

console = Console()
err_console = Console(stderr=True)

JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON (a stable, documented shape).")


def to_jsonable(obj: Any) -> Any:
    if isinstance(obj, decimal.Decimal):
        return float(obj) if obj == obj.to_integral_value() or True else str(obj)
    if isinstance(obj, (dt.datetime, dt.date)):
        return obj.isoformat()
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_jsonable(v) for v in obj]
    return obj


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(data), indent=2, default=str) + "\n")


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    t = Table(title=title, show_lines=False)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*["" if v is None else str(v) for v in r])
    console.print(t)


def open_ctx(actor: str | None = None):  # type: ignore[no-untyped-def]
    """A ToolContext on the workspace named by STEWARD_HOME (migrated on open), acting as
    ``actor`` or else as the identity ``cli_identity`` proves (STEWARD_TOKEN, or the OS user)."""
    from modelsteward.context import open_steward
    from modelsteward.tools.base import ToolContext

    steward = open_steward()
    return ToolContext(steward=steward, actor=actor or cli_identity(steward)[0])


def cli_identity(steward: Any, claimed: str | None = None, need_role: str | None = None) -> tuple[str, str]:
    """``(actor, role)`` of the person at the command line: the name and role of the token in
    ``STEWARD_TOKEN`` (``steward tokens create``), or without one the OS user (role ``admin``: the
    workspace's owner).  ``claimed`` (``--as``) may only restate that name; anything else is refused."""
    import getpass
    import os

    from modelsteward.errors import PolicyDenied

    plain = os.environ.get("STEWARD_TOKEN", "").strip()
    if plain:
        from modelsteward.server.auth import identify

        ident = identify(steward, plain)
        if ident is None:
            raise InvalidInput("STEWARD_TOKEN is not a valid token of this workspace (unknown or revoked); create one "
                               "with `steward tokens create --name NAME --role approver`, or unset it to act as the OS user.")
        name, role, source = ident.name, ident.role, f"STEWARD_TOKEN (token {ident.name!r})"
    else:
        name, role, source = getpass.getuser(), "admin", "the OS user"
    if claimed is not None and claimed.strip().removeprefix("cli:").lower() != name.lower():
        raise InvalidInput(f"--as {claimed} does not match your identity {name!r} from {source}; --as may only restate "
                           "it: drop --as, or set STEWARD_TOKEN to a token of that person.")
    if need_role is not None:
        from modelsteward.server.auth import role_at_least

        if not role_at_least(role, need_role):
            raise PolicyDenied(f"This needs role {need_role!r} or higher; {source} has role {role!r}.",
                               policy="role", required_role=need_role, role=role)
    return f"cli:{name}", role


def fail(message: str, code: int = 1) -> None:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def run_cli(app: typer.Typer) -> None:
    """Run the app; a StewardError becomes one line on stderr and exit code 1 (2 for bad input)."""
    try:
        rv = app(standalone_mode=False)
        # non-standalone Typer *returns* the code of typer.Exit (fail()) and of Ctrl-C (130)
        if isinstance(rv, int) and not isinstance(rv, bool) and rv != 0:
            sys.exit(rv)
    except StewardError as exc:
        err_console.print(f"[red]error[/red] ({exc.code}): {exc.message}", highlight=False, soft_wrap=True)
        sys.exit(2 if exc.code in ("invalid_input",) else 1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        raise


def parse_weights(text: str | None) -> dict[str, float] | None:
    """``quality=.5,cost=.3,latency=.2`` -> dict; malformed parts raise InvalidInput."""
    if not text:
        return None
    out: dict[str, float] = {}
    for part in text.split(","):
        key, sep, val = part.partition("=")
        if not sep:
            raise InvalidInput(f"Weight {part!r} is not key=value (e.g. quality=.5,cost=.3,latency=.2).")
        try:
            out[key.strip()] = float(val)
        except ValueError:
            raise InvalidInput(f"Weight {part!r}: {val!r} is not a number.") from None
    return out
