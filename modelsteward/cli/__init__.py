"""The ``steward`` command line (a contract: names and flags in DESIGN.md).

Each area adds its commands in its own module ``modelsteward/cli/<area>.py`` exposing
``register(app: typer.Typer) -> None``.  Modules import only light things at the top (no torch,
transformers, MLflow or LangChain): ``steward --help`` must answer in well under a second.
"""

from __future__ import annotations

import importlib

import typer

from modelsteward.cli.common import run_cli

__all__ = ["app", "main"]

app = typer.Typer(
    name="steward",
    help="Model Steward: keeps the LLMs behind an application on the best model for each job.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_AREAS = ("core", "logs", "gateway", "catalog", "evals", "training", "rollout", "agent", "server", "demo", "report",
          "hosts")

for _area in _AREAS:
    try:
        _mod = importlib.import_module(f"modelsteward.cli.{_area}")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"modelsteward.cli.{_area}":
            raise
        continue
    _mod.register(app)


def main() -> None:
    from modelsteward.wiring import wire

    wire()  # the composition root: hands the agent's entry points to the tools (the agent loads on first use)
    run_cli(app)
