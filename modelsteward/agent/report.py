"""The run report (Markdown, stored in ``agent_runs.report``) and its MLflow record.

MLflow is imported lazily; a tracking failure is noted in the run, never fails it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage

from modelsteward.agent.decisions import collect
from modelsteward.agent.state import AgentState
from modelsteward.privacy import redact, redact_obj

if TYPE_CHECKING:
    from modelsteward.agent.runtime import AgentRuntime
    from modelsteward.context import Steward

__all__ = ["render_report", "log_to_mlflow", "failure_report", "decision_lines"]


def _args(args: Any) -> str:
    text = json.dumps(args, default=str, sort_keys=True) if not isinstance(args, str) else args
    return text if len(text) <= 200 else text[:200] + "..."


def _cell(text: Any) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")[:300]


def render_report(state: AgentState, rt: AgentRuntime) -> str:
    journal = state.get("journal", [])
    final = next((m for m in reversed(state.get("messages", [])) if isinstance(m, AIMessage)), None)
    lines = [
        f"# Agent run {rt.run_id}",
        "",
        f"- planner: `{rt.planner.name}`",
        f"- goal: {_cell(state.get('goal') or '(default cycle)')}",
        f"- scope: {state.get('use_case') or 'all use cases'}",
        f"- outcome: {state.get('outcome') or 'done'}",
        f"- planner turns: {state.get('step', 0)} of {state.get('max_steps', 0)}",
        "",
        "## Summary",
        "",
        str(final.content).strip() if final is not None and final.content else "(no summary)",
        "",
        "## Tool calls and decisions",
        "",
        "| # | tool | arguments | guard | result |",
        "| --- | --- | --- | --- | --- |",
    ]
    by_id: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for e in journal:
        cid = e.get("id")
        if e["kind"] in ("guard", "approval", "tool") and cid:
            if cid not in by_id:
                by_id[cid] = {"name": e.get("name"), "args": e.get("args")}
                order.append(cid)
            row = by_id[cid]
            if e["kind"] == "guard":
                row["guard"] = e["verdict"] + (f" (#{e['approval_id']})" if e.get("approval_id") else "")
                if e["verdict"] not in ("allow", "needs_approval"):
                    row["result"] = e.get("reason")
            elif e["kind"] == "approval":
                row["guard"] = (f"{row.get('guard', '')}; {e['status']}" + (f" by {e['decided_by']}" if e.get("decided_by") else "")
                                + (f" ({e['reason']})" if e.get("reason") else ""))
                if e["status"] != "approved":
                    row["result"] = "not run"
            else:
                row["result"] = ("ok: " + (e.get("result") or "")) if e.get("ok") else f"error: {e.get('error')}"
    for i, cid in enumerate(order, 1):
        r = by_id[cid]
        lines.append(f"| {i} | {_cell(r['name'])} | `{_cell(_args(r['args']))}` | {_cell(r.get('guard', ''))} "
                     f"| {_cell(r.get('result', 'pending'))} |")
    if not order:
        lines.append("| - | (none) | | | |")
    lines += decision_lines(collect(journal))
    checks = [c for e in journal if e["kind"] == "verify" for c in e.get("checks", [])]
    if checks:
        lines += ["", "## Verification", ""]
        lines += [f"- {c['name']}: **{c['status']}** {c['detail']}" for c in checks]
    errors = [err for e in journal if e["kind"] == "observe" for err in e.get("errors", [])]
    if errors:
        lines += ["", "## Observation problems", ""] + [f"- {_cell(x)}" for x in sorted(set(errors))]
    # tool results and errors can quote logged prompts: the report leaves the log store redacted
    return redact("\n".join(lines) + "\n")


def _num(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def decision_lines(decisions: list[dict[str, Any]], limit: int = 40) -> list[str]:
    """The decisions section: taken first, then declined (skips say why), each with rule and numbers."""
    if not decisions:
        return []
    lines = ["", "## Decisions", "", "| decision | use case | model | rule | why | numbers | evidence |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    ordered = [d for d in decisions if d.get("taken")] + [d for d in decisions if not d.get("taken")]
    for d in ordered[:limit]:
        nums = ", ".join(f"{k}={_num(v)}" for k, v in (d.get("numbers") or {}).items() if v is not None)
        label = d["kind"] if d.get("taken") else f"{d['kind']} (declined)"
        lines.append(f"| {_cell(label)} | {_cell(d.get('use_case'))} | {_cell(d.get('model_id'))} | {_cell(d.get('rule'))} "
                     f"| {_cell(d.get('summary'))} | {_cell(nums)} | {_cell('; '.join(d.get('evidence') or []))} |")
    if len(ordered) > limit:
        lines.append(f"| ... | {len(ordered) - limit} more decisions in `steward agent run --json` | | | | | |")
    return lines


def failure_report(run_id: int, planner: str, reason: str) -> str:
    return (f"# Agent run {run_id}\n\n- planner: `{planner}`\n- outcome: **failed**\n\n## Reason\n\n{redact(reason)}\n\n"
            "No further actions were taken.\n")


def log_to_mlflow(steward: Steward, run_id: int, *, status: str, planner: str, report: str,
                  journal: list[dict[str, Any]]) -> str | None:
    """One MLflow run per agent run (experiment ``steward-agent``): report, journal, counts."""
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=steward.tracking_uri())
        exp = client.get_experiment_by_name("steward-agent")
        exp_id = exp.experiment_id if exp else client.create_experiment(
            "steward-agent", artifact_location=(steward.settings.artifacts_path / "mlflow").as_uri())
        run = client.create_run(exp_id, run_name=f"agent-run-{run_id}", tags={"steward.agent_run_id": str(run_id),
                                                                              "steward.planner": planner,
                                                                              "steward.workspace": str(steward.settings.workspace)})
        rid = run.info.run_id
        tools = [e for e in journal if e.get("kind") == "tool"]
        denied = [e for e in journal if e.get("kind") == "guard" and e.get("verdict") not in ("allow", "needs_approval")]
        client.log_param(rid, "status", status)
        for key, val in (("tool_calls", len(tools)), ("tool_errors", sum(1 for e in tools if not e.get("ok"))),
                         ("guard_refusals", len(denied)),
                         ("approvals", sum(1 for e in journal if e.get("kind") == "approval"))):
            client.log_metric(rid, key, float(val))
        client.log_text(rid, redact(report), "report.md")
        client.log_text(rid, json.dumps(redact_obj(journal), indent=2, default=str), "journal.json")
        client.set_terminated(rid, "FINISHED" if status == "completed" else "FAILED")
        return rid
    except Exception as exc:  # noqa: BLE001 - tracking must never fail a run
        return f"error: {type(exc).__name__}: {exc}"[:300]
