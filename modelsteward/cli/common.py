"""Shared CLI plumbing: opening the workspace, JSON output, errors as one line and a non-zero exit."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from modelsteward.errors import InvalidInput, StewardError

__all__ = ["console", "err_console", "open_ctx", "cli_identity", "emit_json", "table", "run_cli", "JsonOpt", "to_jsonable", "fail",
           "parse_weights", "one_line", "human", "headline"]

# soft_wrap: a line is never broken at 80 columns when the output is piped (grep, less, a file);
# emoji=False: ``:m:`` in a model id (``openai:m:x``) or in logged text prints as written, never as an emoji
console = Console(soft_wrap=True, emoji=False)
err_console = Console(stderr=True, soft_wrap=True, emoji=False)

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


def human(value: Any) -> str:
    """A cell or value as a person reads it: ``25`` not ``25.0000000000``, ``0`` not ``0E-10``."""
    if value is None:
        return ""
    if isinstance(value, decimal.Decimal):
        from modelsteward.formatting import fmt_decimal

        return fmt_decimal(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A table at its full width: on a terminal it fits the window, piped it is never cut at 80 columns.

    Title, headers and cells print as written (``Text``: no Rich markup, no emoji codes): a cell may
    hold logged or imported text (``[echo]``, ``[/foo]``, ``:m:``) or a model id."""
    t = Table(title=Text(title), show_lines=False)
    for c in columns:
        t.add_column(Text(c))
    for r in rows:
        t.add_row(*[Text(human(v)) for v in r])
    if console.is_terminal:
        console.print(t)
    else:
        wide = console.options.update(max_width=100_000)
        width = max(console.measure(t, options=wide).maximum, 20)
        Console(file=console.file, width=width, soft_wrap=True, force_terminal=False, emoji=False).print(t)


def open_ctx(actor: str | None = None, *, read: bool = False):  # type: ignore[no-untyped-def]
    """A ToolContext on the workspace named by STEWARD_HOME (migrated on open), acting as
    ``actor`` or else as the identity ``cli_identity`` proves (STEWARD_TOKEN, or the OS user).
    ``read``: for a read command, whose tool answers through the read model: the database engine
    (SQLAlchemy) is made only if something needs it (``open_steward(lazy=True)``)."""
    from modelsteward.context import open_steward
    from modelsteward.tools.base import ToolContext

    steward = open_steward(lazy=read)
    if actor is not None:
        return ToolContext(steward=steward, actor=actor)
    who, role = cli_identity(steward)
    return ToolContext(steward=steward, actor=who, role=role)


def cli_identity(steward: Any, claimed: str | None = None, need_role: str | None = None, *,
                 need_token: bool = False) -> tuple[str, str]:
    """``(actor, role)`` of the person at the command line: the name and role of the token in
    ``STEWARD_TOKEN`` (``steward tokens create``), or without one the effective OS user (role
    ``admin``: the workspace's owner; ``context.effective_user``, never ``LOGNAME``/``USER``).
    ``claimed`` (``--as``) may only restate that name; anything else is refused.  ``need_token``:
    only a token names the person (deciding approvals: an OS account may be shared)."""
    import os

    from modelsteward.context import effective_user
    from modelsteward.errors import PolicyDenied

    plain = os.environ.get("STEWARD_TOKEN", "").strip()
    if plain:
        from modelsteward.server.auth import identify

        ident = identify(steward, plain)
        if ident is None:
            raise InvalidInput("STEWARD_TOKEN is not a valid token of this workspace (unknown or revoked); create one "
                               "with `steward tokens create --name NAME --role approver`, or unset it to act as the OS user.")
        name, role, source = ident.name, ident.role, f"STEWARD_TOKEN (token {ident.name!r})"
    elif need_token:
        raise PolicyDenied("Deciding an approval needs an approver token naming you: set STEWARD_TOKEN to a token "
                           "from `steward tokens create --name YOU --role approver`.", policy="approver_token")
    else:
        name, role, source = effective_user(), "admin", "the OS user"
    if claimed is not None and claimed.strip().removeprefix("cli:").lower() != name.lower():
        raise InvalidInput(f"--as {claimed} does not match your identity {name!r} from {source}; --as may only restate "
                           "it: drop --as, or set STEWARD_TOKEN to a token of that person.")
    if need_role is not None:
        from modelsteward.server.auth import role_at_least

        if not role_at_least(role, need_role):
            raise PolicyDenied(f"This needs role {need_role!r} or higher; {source} has role {role!r}.",
                               policy="role", required_role=need_role, role=role)
    return f"cli:{name}", role


def headline(action: str, message: str | None) -> str:
    """``action - message``, without saying the action twice when the message starts with it
    (``waiting`` + ``waiting: 3/50 requests`` -> ``waiting: 3/50 requests``)."""
    message = (message or "").strip()
    words = action.replace("_", " ").strip()
    if not message or message.lower() == words.lower():
        return words
    if message.lower().startswith(words.lower()):
        return message
    return f"{words} - {message}"


def one_line(text: str) -> str:
    """``text`` on one line (the CLI's errors are one line each; a message never breaks it)."""
    return " ".join(str(text).split())


def _error_line(code: str | None, message: str) -> None:
    label = f"error ({code})" if code else "error"
    err_console.print(f"[red]{label}:[/red] {escape(one_line(message))}", highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> None:
    _error_line(None, message)
    raise typer.Exit(code)


def _usage_error_types() -> tuple[type[BaseException], ...]:
    """The exceptions the command-line parser raises for a bad command line.

    Typer >= 0.2x bundles its own Click (``typer._click``), whose errors derive from
    ``typer.TyperException`` and not from ``click.ClickException``; older Typer uses Click itself.
    Both are caught, so the CLI has one error path whichever is installed.
    """
    kinds: list[type[BaseException]] = []
    typer_exc = getattr(typer, "TyperException", None)
    if isinstance(typer_exc, type):
        kinds.append(typer_exc)
    click = sys.modules.get("click")
    if click is not None:
        kinds.append(click.ClickException)
    return tuple(kinds)


def _show_usage_error(exc: BaseException) -> int:
    """One line on stderr for a parser error; returns the exit code (2 for a usage error)."""
    code = int(getattr(exc, "exit_code", 1) or 1)
    ctx = getattr(exc, "ctx", None)
    where = getattr(ctx, "command_path", None) or "steward"
    if type(exc).__name__ == "NoArgsIsHelpError":  # the help text went to stdout already
        _error_line("usage", f"'{where}' needs a command (listed above); see '{where} --help'.")
        return code
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    if code == 2:
        end = "" if message.rstrip().endswith((".", "?", "!")) else "."
        _error_line("usage", f"{message.rstrip()}{end} See '{where} --help'.")
    else:
        _error_line(None, message)
    return code


def quiet_libraries() -> None:
    """Keep libraries' chatter off the CLI's stderr (set before they are imported; a value the
    user set wins): MLflow's INFO lines ("Creating initial MLflow database tables...") and, when
    stderr is not a terminal, Hugging Face progress bars ("Loading weights: 100%|...")."""
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    if not sys.stderr.isatty():
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TQDM_DISABLE", "1")


def run_cli(app: typer.Typer, args: Sequence[str] | None = None) -> NoReturn:
    """Run the app: every error is one line on stderr and a non-zero exit, never a traceback.

    Exit codes: 0 success; 1 an error (``error (CODE): ...``, CODE from ``errors.py``); 2 bad input
    (``invalid_input``) or a command line the parser refuses (``usage``); 130 interrupted.  An
    unexpected exception (a bug) is one line too, ``error (internal): ...``; set ``STEWARD_DEBUG=1``
    to get its traceback instead.
    """
    quiet_libraries()
    try:
        rv = app(args=list(args) if args is not None else None, standalone_mode=False)
        # non-standalone Typer *returns* the code of typer.Exit (fail()) and of Ctrl-C (130)
        code = rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
    except StewardError as exc:
        _error_line(exc.code, exc.message)
        code = 2 if exc.code == InvalidInput.code else 1
    except typer.Exit as exc:
        code = exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        code = 130
    except _usage_error_types() as exc:
        code = _show_usage_error(exc)
    except Exception as exc:  # noqa: BLE001 - the last resort: a bug, reported on one line
        if os.environ.get("STEWARD_DEBUG"):
            raise
        code = _show_unexpected(exc)
    sys.exit(code)


def _show_unexpected(exc: BaseException) -> int:
    exit_exc = _click_exit(exc)
    if exit_exc is not None:
        return exit_exc
    if isinstance(exc, OSError) and exc.filename is not None:
        _error_line("os_error", f"{exc.strerror or exc}: {exc.filename}")
        return 1
    _error_line("internal", f"{type(exc).__name__}: {exc} (a bug: please report it; STEWARD_DEBUG=1 shows the "
                "traceback).")
    return 1


def _click_exit(exc: BaseException) -> int | None:
    click = sys.modules.get("click")
    if click is not None and isinstance(exc, click.exceptions.Exit):
        return int(exc.exit_code)
    return None


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
