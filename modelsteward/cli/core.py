"""``steward init``, ``steward usecase ...``, ``steward models ...``."""

from __future__ import annotations

from enum import Enum
from typing import Any, Optional

import typer

from modelsteward.cli.common import JsonOpt, console, emit_json, human, open_ctx, parse_weights, table

__all__ = ["register"]

class RegisterStatus(str, Enum):
    discovered = "discovered"
    candidate = "candidate"


usecase_app = typer.Typer(help="Use cases: what the application asks models to do.", no_args_is_help=True)
models_app = typer.Typer(help="The model registry.", no_args_is_help=True)


def _csv(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def _abspath(path: str | None) -> str | None:
    """A file the use case keeps (golden set, initial data): stored absolute, so a later command
    run from another folder still finds it."""
    from pathlib import Path

    return None if not path else str(Path(path).expanduser().resolve())


def init(json_out: bool = JsonOpt) -> None:
    """Create the workspace and bring the database to the latest schema (idempotent)."""
    from modelsteward.storage.db import current_revision

    ctx = open_ctx()
    st = ctx.steward
    st.settings.artifacts_path.mkdir(parents=True, exist_ok=True)
    st.logs  # opens the log store (replays any write-ahead file)
    info = {
        "workspace": str(st.settings.workspace),
        "database": st.engine.url.render_as_string(hide_password=True),
        "schema_revision": current_revision(st.engine),
        "log_dir": st.settings.logs_url,
        "wal_dir": str(st.settings.wal_path),
        "mlflow_tracking_uri": st.settings.tracking_uri,
    }
    st.close()
    if json_out:
        emit_json(info)
    else:
        console.print(f"[green]workspace ready[/green] at {info['workspace']}")
        for k, v in info.items():
            console.print(f"  {k}: {v}")


@usecase_app.command("add")
def usecase_add(
    name: str,
    description: str = typer.Option(..., "--description", help="What the use case does."),
    model: Optional[str] = typer.Option(None, "--model", help="First model (provider:model), live at 100% at once."),
    fallback: Optional[str] = typer.Option(None, "--fallback", help="Comma-separated fallback chain of model ids."),
    budget_usd: Optional[float] = typer.Option(None, "--budget-usd", help="Monthly budget in USD."),
    weights: Optional[str] = typer.Option(None, "--weights", help="quality=.5,cost=.3,latency=.2"),
    min_context: Optional[int] = typer.Option(None, "--min-context"),
    latency_slo_ms: Optional[float] = typer.Option(None, "--latency-slo-ms"),
    requires: Optional[str] = typer.Option(None, "--requires", help="tools,json"),
    sticky: bool = typer.Option(False, "--sticky", help="Route each `user` to the same model."),
    golden_set: Optional[str] = typer.Option(None, "--golden-set", help="JSONL of prompts (+ references)."),
    initial_data: Optional[str] = typer.Option(None, "--initial-data", help="JSONL chat examples for fine-tuning."),
    no_check: bool = typer.Option(False, "--no-check", help="Skip the check of --model and --fallback models "
                                  "(one tiny completion each): force it."),
    json_out: bool = JsonOpt,
) -> None:
    """Add a use case (--model makes that model live at 100% at once; it and the --fallback models pass
    their check first: a failing check refuses it naming the fix)."""
    from decimal import Decimal

    from modelsteward.tools import call_tool

    ctx = open_ctx()
    out = call_tool(
        "usecase_add",
        {
            "name": name, "description": description, "model": model, "fallback": _csv(fallback),
            "budget_usd": None if budget_usd is None else Decimal(str(budget_usd)),
            "weights": parse_weights(weights), "min_context": min_context, "latency_slo_ms": latency_slo_ms,
            "requires": _csv(requires), "sticky": sticky, "golden_set": _abspath(golden_set), "initial_data": _abspath(initial_data),
            **({"no_check": True} if no_check else {}),
        },
        ctx,
    )
    ctx.steward.close()
    _show_use_case(out, json_out)


def _show_use_case(out: Any, json_out: bool, headline: str | None = None) -> None:
    """A use case tool's output: its JSON, or its warnings, a headline and the use case."""
    if json_out:
        emit_json(out)
        return
    for w in out.warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")
    if headline:
        console.print(headline)
    _print_use_case(out)


def _print_use_case(uc) -> None:  # type: ignore[no-untyped-def]
    console.print(f"[bold]{uc.name}[/bold]: {uc.description}")
    console.print(f"  weights: {', '.join(f'{k}={v:.2f}' for k, v in uc.weights.items())}")
    if uc.monthly_budget_usd is not None:
        console.print(f"  monthly budget: ${human(uc.monthly_budget_usd)}")
    if uc.requirements:
        console.print(f"  requirements: {uc.requirements}")
    inferred = getattr(uc, "inferred_requirements", None)
    if inferred and inferred.get("capabilities"):
        needs = ", ".join(f"{c} ({v['share']:.0%})" for c, v in inferred["capabilities"].items())
        console.print(f"  traffic needs: {needs} of {inferred['requests']} requests in {inferred['window']}",
                      highlight=False)
    if uc.fallback:
        console.print(f"  fallback: {' -> '.join(uc.fallback)}")
    if getattr(uc, "golden_set_path", None):
        console.print(f"  golden set: {uc.golden_set_path}")
    table(f"routing table v{uc.deployment_version}", ["model", "role", "weight %"],
          [(a["model_id"], a["role"], f"{a['weight']:g}") for a in uc.allocations])


@usecase_app.command("list")
def usecase_list(json_out: bool = JsonOpt) -> None:
    """List use cases and their live models."""
    from modelsteward.tools import call_tool

    ctx = open_ctx(read=True)
    out = call_tool("list_use_cases", {}, ctx)
    ctx.steward.close()
    if json_out:
        emit_json(out.model_dump(mode="json")["use_cases"])  # type: ignore[attr-defined]
        return
    table("use cases", ["name", "description", "live models", "budget $/month"], [
        (u.name, u.description[:60], ", ".join(f"{a['model_id']} ({a['role']} {a['weight']:g}%)" for a in u.allocations),
         u.monthly_budget_usd)
        for u in out.use_cases  # type: ignore[attr-defined]
    ])


@usecase_app.command("show")
def usecase_show(name: str, json_out: bool = JsonOpt) -> None:
    """Show one use case: requirements, weights, routing table."""
    from modelsteward.tools.registry import use_case_info

    ctx = open_ctx()
    out = use_case_info(ctx, ctx.steward.registry.get_use_case(name), infer=True)
    ctx.steward.close()
    if json_out:
        emit_json(out)
    else:
        _print_use_case(out)


@usecase_app.command("update")
def usecase_update(
    name: str,
    description: Optional[str] = typer.Option(None, "--description"),
    budget_usd: Optional[float] = typer.Option(None, "--budget-usd", min=0, help="Monthly budget in USD."),
    weights: Optional[str] = typer.Option(None, "--weights", help="quality=.5,cost=.3,latency=.2"),
    fallback: Optional[str] = typer.Option(None, "--fallback", help="The whole fallback chain, comma-separated."),
    latency_slo_ms: Optional[float] = typer.Option(None, "--latency-slo-ms", min=0),
    min_context: Optional[int] = typer.Option(None, "--min-context", min=1),
    requires: Optional[str] = typer.Option(None, "--requires", help="tools,json"),
    max_price_per_m: Optional[float] = typer.Option(None, "--max-price-per-m", min=0),
    sticky: Optional[bool] = typer.Option(None, "--sticky/--no-sticky", help="Route each `user` to the same model."),
    quality_floor: Optional[float] = typer.Option(None, "--quality-floor", min=0, max=1),
    golden_set: Optional[str] = typer.Option(None, "--golden-set", help="JSONL of prompts (+ references)."),
    initial_data: Optional[str] = typer.Option(None, "--initial-data", help="JSONL chat examples for fine-tuning."),
    clear: Optional[list[str]] = typer.Option(
        None, "--clear", help="Unset a field (repeatable): budget_usd, fallback, golden_set, initial_data, "
        "latency_slo_ms, min_context, max_price_per_m, requires."),
    approval_id: Optional[int] = typer.Option(None, "--approval-id", help="Execute an approved approval of this call."),
    no_check: bool = typer.Option(False, "--no-check", help="Skip the check of fallback models new to the chain."),
    json_out: bool = JsonOpt,
) -> None:
    """Change a use case (only the options given). Changing the fallback, budget or stickiness of a
    live use case needs an approval (exit 1 naming it; re-run with --approval-id once approved).
    Fallback models new to the chain pass their check first (--no-check forces it)."""
    from decimal import Decimal

    from modelsteward.tools import call_tool

    args: dict[str, object] = {"use_case": name}
    for key, val in (("description", description), ("latency_slo_ms", latency_slo_ms), ("min_context", min_context),
                     ("sticky", sticky), ("quality_floor", quality_floor)):
        if val is not None:
            args[key] = val
    if budget_usd is not None:
        args["budget_usd"] = Decimal(str(budget_usd))
    if max_price_per_m is not None:
        args["max_price_per_m"] = Decimal(str(max_price_per_m))
    if weights is not None:
        args["weights"] = parse_weights(weights)
    if fallback is not None:
        args["fallback"] = _csv(fallback)
    if requires is not None:
        args["requires"] = _csv(requires)
    if golden_set is not None:
        args["golden_set"] = _abspath(golden_set)
    if initial_data is not None:
        args["initial_data"] = _abspath(initial_data)
    if clear:
        args["clear"] = [c.strip().replace("-", "_") for c in clear]
    if no_check:
        args["no_check"] = True
    ctx = open_ctx()
    ctx.approval_id = approval_id
    try:
        out = call_tool("usecase_update", args, ctx)
    finally:
        ctx.steward.close()
    changed = out.changed  # type: ignore[attr-defined]
    _show_use_case(out, json_out,
                   f"[green]updated[/green] {name}: {', '.join(changed) if changed else 'nothing changed'}")


@usecase_app.command("delete")
def usecase_delete(
    name: str,
    approval_id: Optional[int] = typer.Option(None, "--approval-id", help="Execute an approved approval of this call."),
    json_out: bool = JsonOpt,
) -> None:
    """Delete a use case (refused during a rollout or while requests arrive)."""
    from modelsteward.tools import call_tool

    ctx = open_ctx()
    ctx.approval_id = approval_id
    try:
        out = call_tool("usecase_delete", {"use_case": name}, ctx)
    finally:
        ctx.steward.close()
    if json_out:
        emit_json(out)
        return
    removed = ", ".join(f"{k} {v}" for k, v in out.removed.items() if v)  # type: ignore[attr-defined]
    console.print(f"[green]deleted[/green] {name}" + (f" (removed {removed})" if removed else ""))
    console.print(out.note)  # type: ignore[attr-defined]


@models_app.command("register")
def models_register(
    provider: str,
    model_id: str,
    base_url: Optional[str] = typer.Option(None, "--base-url"),
    price_in: Optional[str] = typer.Option(None, "--price-in", help="USD per million input tokens"),
    price_out: Optional[str] = typer.Option(None, "--price-out", help="USD per million output tokens"),
    context: Optional[int] = typer.Option(None, "--context", help="Context length in tokens"),
    use_case: Optional[str] = typer.Option(None, "--use-case"),
    api_key_env: Optional[str] = typer.Option(
        None, "--api-key-env", help="NAME of the env variable holding this model's own key (never the key itself)"),
    cost_per_hour: Optional[str] = typer.Option(None, "--cost-per-hour", help="Self-hosted: USD per hour of its machine"),
    hardware: Optional[str] = typer.Option(None, "--hardware", help="Self-hosted: cpu | gpu-small | gpu-medium | gpu-large"),
    hosting_cost: Optional[str] = typer.Option(None, "--hosting-cost", help="Self-hosted cost with unit: 1.20/h or 0.30/M"),
    status: Optional[RegisterStatus] = typer.Option(
        None, "--status", help="discovered or candidate (later statuses come from evaluations and rollouts)"),
    json_out: bool = JsonOpt,
) -> None:
    """Register a model (idempotent: registering again updates the given fields)."""
    from modelsteward.storage.registry import parse_price
    from modelsteward.tools import call_tool

    pin = parse_price(price_in, "--price-in")
    pout = parse_price(price_out, "--price-out")
    ctx = open_ctx()
    out = call_tool("models_register", {
        "provider": provider, "model_id": model_id, "base_url": base_url, "price_in": pin, "price_out": pout,
        "context": context, "use_case": use_case, "api_key_env": api_key_env,
        "cost_per_hour": cost_per_hour, "hardware": hardware, "hosting_cost": hosting_cost,
        "status": status.value if status is not None else None,
    }, ctx)
    ctx.steward.close()
    if json_out:
        emit_json(out)
    else:
        console.print(f"[green]registered[/green] {out.id} ({out.kind}, {out.status})")  # type: ignore[attr-defined]
        if out.status == "pending":  # type: ignore[attr-defined]
            console.print("its host is not approved: it receives nothing until an admin runs "
                          f"`steward hosts allow {base_url or 'URL'}`", markup=False, highlight=False)


@models_app.command("list")
def models_list(
    use_case: Optional[str] = typer.Option(None, "--use-case"),
    status: Optional[str] = typer.Option(None, "--status"),
    json_out: bool = JsonOpt,
) -> None:
    """List registered models."""
    from modelsteward.tools import call_tool

    ctx = open_ctx(read=True)
    out = call_tool("list_models", {"use_case": use_case, "status": status}, ctx)
    ctx.steward.close()
    if json_out:
        emit_json(out.model_dump(mode="json")["models"])  # type: ignore[attr-defined]
        return
    table("models", ["id", "kind", "status", "per use case", "$/M in", "$/M out", "context"], [
        (m.id, m.kind, m.status, ", ".join(f"{k}: {v}" for k, v in m.use_case_statuses.items()),
         m.price_in_per_m, m.price_out_per_m, m.context_length)
        for m in out.models  # type: ignore[attr-defined]
    ])


@models_app.command("show")
def models_show(model_id: str, json_out: bool = JsonOpt) -> None:
    """Show one model."""
    from modelsteward.tools.registry import model_view

    ctx = open_ctx()
    out = model_view(ctx, ctx.steward.registry.get_model(model_id))
    ctx.steward.close()
    if json_out:
        emit_json(out)
        return
    for k, v in out.model_dump().items():
        console.print(f"  {k}: {human(v) or '-'}", markup=False, highlight=False)


@models_app.command("check")
def models_check(model_id: str, json_out: bool = JsonOpt) -> None:
    """Send one tiny completion (max_tokens 3) through the real provider path: URL, key variable (set in this
    shell?), status, latency and the likely fix.  Exit 1 when the check fails."""
    from modelsteward.tools import call_tool

    ctx = open_ctx(read=True)
    try:
        out: Any = call_tool("models_check", {"model_id": model_id}, ctx)
    finally:
        ctx.steward.close()
    if json_out:
        emit_json(out)
    else:
        key = "no key variable" if out.key_env is None else f"{out.key_env} {'set' if out.key_set else 'UNSET'}"
        head = "[green]ok[/green]" if out.ok else "[red]failed[/red]"
        console.print(f"{head} {out.model_id}: {out.url or '-'}; {key}; status {out.status or '-'}; "
                      f"{out.latency_ms if out.latency_ms is not None else '-'} ms")
        if not out.ok:
            console.print(f"  error: {out.error}", markup=False, highlight=False)
            console.print(f"  fix: {out.fix}", markup=False, highlight=False)
    if not out.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.add_typer(usecase_app, name="usecase")
    app.add_typer(models_app, name="models")
