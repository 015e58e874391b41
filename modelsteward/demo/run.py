"""``steward demo``: the whole closed loop on the embedded defaults, offline, with no keys.

1. a ``story_teller`` use case served by ``local:smollm2-135m-instruct``;
2. traffic from the shipped prompt set through the real gateway (``steward serve`` in the
   background) with simulated user feedback;
3. the agent (playbook planner) scans, builds a dataset from the logs, LoRA-fine-tunes SmolLM2,
   evaluates the fine-tune against the current model and, on a pass, starts a shadow then canary
   rollout; between agent cycles the demo sends more traffic so each analysis window fills;
4. at the approval for promotion the demo shows it and approves it as the demo operator (said so
   on screen), and the rollout completes — or, when the gate fails, it shows why and rolls back;
5. a final report: what was found, scores, costs, the decision and where to look next.

Everything the demo changes goes through the same tools (and policies) as the CLI and the agent.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from modelsteward.storage.states import ACTIVE_ROLLOUT_STATES

if TYPE_CHECKING:
    from modelsteward.tools.rollout import RolloutView

__all__ = ["DemoOptions", "run_demo", "DEMO_OPERATOR", "USE_CASE", "BASE"]

USE_CASE = "story_teller"
BASE = "local:smollm2-135m-instruct"
DEMO_OPERATOR = "demo-operator"
AGENT_GOAL = "Keep story_teller on the best model: look for a better or cheaper one and roll it out safely."


@dataclass
class DemoOptions:
    fresh: bool = False
    requests: int = 200          # initial traffic
    step_requests: int = 24      # traffic per analysis window
    max_tokens: int = 32
    concurrency: int = 8          # client connections (the local provider batches them)
    port: int = 0                # 0: a free port
    finetune_steps: int = 20
    learning_rate: float = 5e-5
    eval_samples: int = 12
    max_cycles: int = 14
    window_requests: int = 12    # analysis window: minimum requests per step
    window_seconds: int = 30     # analysis window: minimum duration per step (the hard lower bound)
    min_feedback_rows: int = 30  # new high-feedback logs before the playbook fine-tunes
    dataset_min_feedback: float = 1.0  # train on the answers users liked outright (+1), not the lukewarm ones
    json_out: bool = False


@dataclass
class DemoReport:
    workspace: str = ""
    console_url: str = ""
    traffic: list[dict[str, Any]] = field(default_factory=list)
    cycles: list[dict[str, Any]] = field(default_factory=list)
    approvals: list[dict[str, Any]] = field(default_factory=list)
    fine_tuned: str | None = None
    evaluation: dict[str, Any] | None = None
    decision: str = "unfinished"
    routing: list[dict[str, Any]] = field(default_factory=list)
    report_files: list[str] = field(default_factory=list)
    tools: dict[str, Any] | None = None  # the tool-using use case (demo/tools.py)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Server:
    """``steward serve`` as a background process on the demo workspace."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180.0) -> None:
        import httpx

        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            # the demo takes each step itself, in order: no control loop beside it
            [sys.executable, "-m", "modelsteward", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--no-control-loop"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "STEWARD_EXPOSE_ROUTE_HEADERS": "1"},  # the demo shows which model answered
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"steward serve exited with {self.proc.returncode}; see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"steward serve did not answer within {timeout:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # graceful: drains requests, flushes logs
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Demo:
    def __init__(self, opts: DemoOptions) -> None:
        self.opts = opts
        self.console = Console(stderr=opts.json_out)
        self.report = DemoReport()
        self.t0 = time.time()
        self._seen_calls: set[Any] = set()  # agent-run step ids already shown

    # ------------------------------------------------------------------ helpers
    def say(self, text: str) -> None:
        self.console.print(text)

    def step(self, title: str) -> None:
        self.console.rule(f"[bold cyan]{title}[/bold cyan]  [dim]{time.time() - self.t0:5.0f} s[/dim]")

    def call(self, name: str, args: dict[str, Any], actor: str | None = None, approval_id: int | None = None) -> Any:
        from modelsteward.tools import call_tool

        ctx = self.ctx
        if actor is not None or approval_id is not None:
            from modelsteward.tools.base import ToolContext

            ctx = ToolContext(steward=self.steward, actor=actor or self.ctx.actor, approval_id=approval_id)
        return call_tool(name, args, ctx)

    def approve(self, approval_id: int, why: str) -> Any:
        """Decide an approval as the demo operator (a person's role, played by the demo); the
        ``approval_decide`` tool carries it out (resumes the waiting run or executes the call)."""
        appr = self.call("approval_decide", {"approval_id": approval_id, "decision": "approve", "reason": why},
                         actor=DEMO_OPERATOR)
        self.report.approvals.append({"id": appr.id, "action": appr.action, "arguments": appr.arguments,
                                      "requested_by": appr.requester, "approved_by": DEMO_OPERATOR, "why": why,
                                      "outcome": appr.outcome, "summary": appr.summary})
        self.say(f"[bold magenta]DEMO OPERATOR[/bold magenta] approves #{appr.id} ({appr.action}) — {why}")
        self.say(f"  {escape(appr.summary)}")
        return appr

    def show_approval(self, a: Any) -> None:
        t = Table(title=f"approval #{a.id} is waiting for a person", show_header=False)
        t.add_row("action", a.action)
        t.add_row("arguments", json.dumps(a.arguments))
        t.add_row("requested by", a.requester)
        t.add_row("why it needs a person", a.reason)
        self.console.print(t)

    def traffic(self, n: int, label: str) -> None:
        from modelsteward.demo.traffic import send_traffic

        with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=self.console, transient=False) as bar:
            task = bar.add_task(label, total=n)
            stats = send_traffic(self.server.url, USE_CASE, n, concurrency=self.opts.concurrency,
                                 max_tokens=self.opts.max_tokens, seed=len(self.report.traffic),
                                 progress=lambda: bar.advance(task))
        s = stats.summary()
        self.report.traffic.append({"label": label, **s})
        self.say(f"  {s['ok']}/{s['sent']} answered, {s['errors']} errors, {s['feedback']} feedback; "
                 f"served by {s['by_model']}")
        for msg in stats.error_messages[:3]:
            self.say(f"  [red]error:[/red] {msg}")

    # ------------------------------------------------------------------ phases
    def setup(self) -> None:
        from modelsteward.context import open_steward
        from modelsteward.providers.local_assets import ensure_base_model
        from modelsteward.settings import get_settings, reset_settings_cache
        from modelsteward.tools.base import ToolContext

        reset_settings_cache()
        settings = get_settings()
        ws = settings.workspace
        self.step("1. workspace and the story_teller use case")
        if self.opts.fresh and ws.exists():
            if not (ws / "steward.db").exists() and any(ws.iterdir()):
                raise SystemExit(f"--fresh refuses to delete {ws}: it does not look like a Model Steward workspace.")
            shutil.rmtree(ws)
            self.say(f"--fresh: removed the previous workspace {ws}")
        self.steward = open_steward(settings)
        self.ctx = ToolContext(steward=self.steward, actor="cli:demo")
        self.report.workspace = str(ws)
        with self.console.status("local model: converting the SmolLM2 GGUF once per machine (cached)"):
            path = ensure_base_model(settings.cache_dir)
        self.say(f"local model ready: {path}")
        reg = self.steward.registry
        if reg.find_model(BASE) is None:
            self.call("models_register", {"provider": "local", "model_id": BASE.split(":", 1)[1], "price_in": "0",
                                          "price_out": "0", "context": 8192})
        existing = {u.name for u in reg.list_use_cases()}
        golden = str(resources.files("modelsteward.demo").joinpath("golden.jsonl"))
        if USE_CASE not in existing:
            self.call("usecase_add", {
                "name": USE_CASE, "description": "Tells short stories to players of a story game.", "model": BASE,
                "budget_usd": "20", "weights": {"quality": 0.6, "cost": 0.2, "latency": 0.2},
                "latency_slo_ms": 60000, "golden_set": golden,
            })
            self.say(f"use case {USE_CASE} created; {BASE} is live at 100%")
        else:
            self.say(f"reusing use case {USE_CASE} (run with --fresh to start over)")
        self.demo_policy()

    def demo_policy(self) -> None:
        """Demo-sized settings; a policy change needs a person, so the demo operator approves it.

        Analysis windows as short as the hard bounds allow, and playbook settings sized for a
        2-core machine: fine-tune after a few dozen high-feedback logs, a short LoRA run, a small
        evaluation sample, and roll out a passing fine-tune of the current model (its point is
        specialisation on this use case's traffic, not a measured quality gain).  The dataset is the
        answers users liked (self-distillation on the application's own good traffic).
        """
        from modelsteward.errors import ApprovalRequired

        o = self.opts
        # canary steps start at 25% so a window fills with few requests (each step adds <= 25 points)
        rollout = {"min_requests": o.window_requests, "min_duration_s": o.window_seconds, "steps": [25, 50, 75, 100]}
        agent = {
            "rollout_strategy": "shadow", "fine_tune_min_feedback": o.min_feedback_rows,
            "rollout_fine_tunes_on_pass": True,
            "build_dataset": {"min_rows": 6, "min_feedback": o.dataset_min_feedback},
            "fine_tune": {"max_steps": o.finetune_steps, "max_seq_len": 256, "batch_size": 4,
                          "learning_rate": o.learning_rate,
                          "eval_every": max(5, o.finetune_steps // 3)},
            "evaluate": {"samples": o.eval_samples, "max_tokens": o.max_tokens, "safety_prompts": 4,
                         "concurrency": 2},
        }
        cfg = self.steward.registry.get_use_case(USE_CASE).config or {}
        if all(cfg.get("rollout", {}).get(k) == v for k, v in rollout.items()) and cfg.get("agent") == agent:
            return
        args = {"use_case": USE_CASE, "rollout": rollout, "agent": agent}
        try:
            self.call("set_policy", args)
        except ApprovalRequired as exc:
            appr_id = int(exc.details.get("approval_id") or getattr(exc, "approval_id"))
            self.say(f"demo settings for {USE_CASE} are a policy change: approval #{appr_id} requested")
            done = self.approve(appr_id, f"demo: analysis windows of {rollout['min_requests']} requests / "
                                f"{rollout['min_duration_s']} s, fine-tune after {o.min_feedback_rows} high-feedback "
                                f"logs, {o.finetune_steps} LoRA steps, {o.eval_samples} eval samples")
            if done.outcome != "executed":
                raise RuntimeError(f"the demo settings were approved but not applied: {done.summary}")
        self.say(f"rollout windows {rollout}; playbook settings {agent}")

    def serve(self) -> None:
        self.step("2. steward serve (API + /v1 gateway + console) in the background")
        port = self.opts.port or _free_port()
        self.server = _Server(port, Path(self.report.workspace) / "demo-server.log")
        with self.console.status(f"starting steward serve on port {port}"):
            self.server.start()
        self.report.console_url = f"{self.server.url}/"
        self.say(f"serving {self.server.url}  (gateway {self.server.url}/v1, console {self.server.url}/)")

    def agent_loop(self) -> None:
        from types import SimpleNamespace

        self.step("4. the agent (playbook planner) runs the loop")
        for cycle in range(1, self.opts.max_cycles + 1):
            self.say(f"[bold]agent cycle {cycle}[/bold]")
            res = self.call("agent_run", {"use_case": USE_CASE, "goal": AGENT_GOAL, "trigger": "cli"})
            acted = self._record_cycle(cycle, res)
            while res.status == "waiting_approval" and res.approval_id:
                appr = self._approval(res.approval_id)
                self.show_approval(appr)
                done = self.approve(appr.id, "demo: every analysis step passed; promote the candidate")
                if done.agent_run is None:  # nothing was waiting any more: the call ran (or failed) at once
                    break
                res = SimpleNamespace(**done.agent_run.model_dump())
                acted |= self._record_cycle(cycle, res, resumed=True)
            ro = self._rollout()
            state = ro.state if ro else "none"
            if state in ("completed", "rolled_back", "aborted"):
                self.report.decision = state
                break
            if ro is not None and state in ACTIVE_ROLLOUT_STATES:
                self._fill_window(ro)
                self._wait_for_window(ro)
            elif not acted:
                self.report.decision = self._why_no_rollout()
                self.say(f"[yellow]the agent has nothing more to do:[/yellow] {self.report.decision}")
                break
        else:
            last = self._rollout()
            if last is not None and last.state in ACTIVE_ROLLOUT_STATES:
                # never leave a half-done rollout behind: the operator aborts it, visibly
                why = f"demo: {self.opts.max_cycles} agent cycles used and the rollout is still undecided"
                self.say(f"[yellow]DEMO OPERATOR aborts the rollout[/yellow] — {why}")
                self.call("rollout_abort", {"use_case": USE_CASE, "reason": why})
                self.report.decision = "aborted"

    def _window_requests(self, ro: RolloutView) -> int:
        """Candidate requests logged since the current step started (what the analysis will count)."""
        from modelsteward.rollout.metrics import window_metrics

        if ro.state not in ("running", "waiting") or not ro.step_started_at:
            return 1 << 30
        roles = ("shadow",) if ro.strategy == "shadow" else ("canary", "primary")
        since = dt.datetime.fromisoformat(ro.step_started_at)
        return int(window_metrics(self.steward, USE_CASE, since, model_id=ro.candidate, roles=roles).requests)

    def _fill_window(self, ro: RolloutView) -> None:
        """Send traffic until the candidate has the window's minimum of requests (a few rounds at most).

        Sticky per-user routing makes the candidate's share uneven over a few dozen requests, so
        the demo counts what the analysis will count instead of trusting the nominal weight.  When
        the last analysis waited for more feedback (a drop not yet significant), one more window's
        worth of traffic goes out even though the request minimum is met.
        """
        need = self.opts.window_requests
        last = (ro.events or [{}])[-1]
        # the last analysis waits for feedback to tell a drop from noise: the window needs more votes
        more_votes = "not significant yet" in json.dumps(last, default=str)
        for _ in range(4):
            have = self._window_requests(ro)
            if have >= need and not more_votes:
                return
            share = self._candidate_share()
            missing = need - have if have < need else need
            more_votes = False
            n = max(self.opts.step_requests, int(1.2 * missing * 100 / max(share, 1.0)) + 2)
            self.traffic(n, f"traffic for the analysis window (candidate at {share:g}%, {have}/{need} requests)")

    def _wait_for_window(self, ro: RolloutView) -> None:
        """Sleep out the rest of the step's minimum analysis duration, so the next cycle can judge it.

        Without this, a fast machine asks the agent again while the window is still open and spends
        its cycles on "waiting" answers.  Logged rows are readable as soon as they are acknowledged
        (the logs view reads the write-ahead files); half a second lets mirrored shadow calls finish.
        """
        from modelsteward.timeutil import utc_now_naive as utcnow

        if ro.state not in ("running", "waiting") or not ro.step_started_at:
            return
        cfg = (self.steward.registry.get_use_case(USE_CASE).config or {}).get("rollout", {})
        min_s = float(cfg.get("min_duration_s", self.opts.window_seconds))
        started = dt.datetime.fromisoformat(ro.step_started_at)
        remaining = (started - utcnow()).total_seconds() + min_s + 1.0
        remaining = max(remaining, 0.5)
        with self.console.status(f"waiting {remaining:.0f} s for the step's {min_s:g} s analysis window"):
            time.sleep(remaining)

    def _why_no_rollout(self) -> str:
        from modelsteward.storage import read

        tr = next(iter(read.evaluations(self.steward, use_case=USE_CASE, limit=1)), None)
        if tr is None:
            return "no candidate was evaluated"
        if tr.verdict != "pass":
            return f"the gate did not pass {tr.candidate_model_id} ({tr.verdict}): " + "; ".join(map(str, tr.reasons))[:400]
        return f"{tr.candidate_model_id} passed but is neither better nor cheaper than the current model"

    def _approval(self, approval_id: int) -> Any:
        out = self.call("approvals_list", {"status": "all", "limit": 1000})
        for a in out.approvals:
            if a.id == approval_id:
                return a
        raise RuntimeError(f"approval {approval_id} not found")

    def _record_cycle(self, cycle: int, res: Any, resumed: bool = False) -> bool:
        """Print what the run did; True when it changed something (a mutating call other than guard_check)."""
        from modelsteward.errors import NotFound
        from modelsteward.storage import read
        from modelsteward.tools.base import get_tool

        try:
            steps = list(read.agent_run(self.steward, res.run_id).steps or [])
        except NotFound:
            steps = []
        entry = {"cycle": cycle, "run_id": res.run_id, "status": res.status, "resumed": resumed,
                 "error": getattr(res, "error", None), "calls": []}
        acted = False
        for st in steps:
            if st.get("kind") != "tool":
                continue
            if resumed and st.get("id") in self._seen_calls:
                continue
            self._seen_calls.add(st.get("id"))
            ok = bool(st.get("ok"))
            entry["calls"].append({"tool": st["name"], "ok": ok})
            try:
                mutating = get_tool(st["name"]).mutating
            except Exception:  # noqa: BLE001 - an unknown tool name is shown as it is
                mutating = False
            acted |= ok and mutating and st["name"] != "guard_check"
            colour = "green" if ok else "red"
            self.say(f"  [{colour}]{st['name']}[/{colour}] {_summary(st)} "
                     f"[dim]({st.get('seconds', 0):.1f} s)[/dim]")
        self.report.cycles.append(entry)
        self.say(f"  run #{res.run_id}: {res.status}" + (" (resumed after the approval)" if resumed else ""))
        if entry["error"]:
            self.say(f"  [red]{entry['error']}[/red]")
        return acted

    def _candidate_share(self) -> float:
        """Percent of requests the candidate sees now (shadow mirrors all of them)."""
        routing = self.steward.registry.routing_table(self.steward.registry.deployment(USE_CASE))
        if any(a["role"] == "shadow" for a in routing):
            return 100.0
        return sum(a["weight"] for a in routing if a["role"] == "canary") or 100.0

    def _rollout(self) -> RolloutView | None:
        """The use case's active (or latest) rollout as ``rollout_status`` shows it; None before the first."""
        return self.call("rollout_status", {"use_case": USE_CASE}).rollout

    def final_report(self) -> None:
        from modelsteward.storage import read

        self.step("5. report")
        reg = self.steward.registry
        self.report.routing = reg.routing_table(reg.deployment(USE_CASE))
        job = next(iter(read.jobs(self.steward, limit=1)), None)
        tr = next(iter(read.evaluations(self.steward, limit=1)), None)
        if job is not None:
            self.report.fine_tuned = job.result_model_id
        rollouts = [f"#{r.id} {r.strategy} of {r.candidate_model_id}: {r.state}"
                    for r in read.rollouts(self.steward, limit=None, oldest_first=True)]
        if tr is not None:
            self.report.evaluation = {"candidate": tr.candidate_model_id, "baseline": tr.baseline_model_id,
                                      "verdict": tr.verdict, "samples": tr.sample_count, "reasons": tr.reasons,
                                      "report": tr.report_path}
            if tr.report_path:
                self.report.report_files.append(tr.report_path)
        stats = self.steward.logs.stats(USE_CASE, since="1d")
        t = Table(title="traffic by model and role (last day)")
        for c in ("model", "role", "requests", "err %", "p95 ms", "cost $", "feedback"):
            t.add_column(c)
        for r in stats:
            t.add_row(r["model_id"], r["role"], str(r["count"]), f"{100 * r['error_rate']:.1f}",
                      "" if r["p95_ms"] is None else f"{r['p95_ms']:.0f}", f"{r['cost_usd']:.4f}",
                      "" if r["mean_feedback"] is None else f"{r['mean_feedback']:.2f}")
        self.console.print(t)
        ev = self.report.evaluation or {}
        lines = [
            f"fine-tuned model: {self.report.fine_tuned or 'none'}",
            f"evaluation: {ev.get('verdict', 'none')} on {ev.get('samples', 0)} samples"
            + (f" — {'; '.join(map(str, ev.get('reasons') or []))[:300]}" if ev else ""),
            "rollouts: " + ("; ".join(rollouts) if rollouts else "none"),
            f"decision: {self.report.decision}",
            "routing now: " + ", ".join(f"{a['model_id']} {a['role']} {a['weight']:g}%" for a in self.report.routing),
            f"approvals decided by the demo operator: {len(self.report.approvals)}",
            "tool-using use case: " + "; ".join(
                f"{e['candidate']} {e['verdict']} (tools {e['strata']['tools']}, structured {e['strata']['structured']})"
                for e in (self.report.tools or {}).get("evaluations", [])),
            "",
            f"web console: steward serve, then {self.report.console_url or 'http://127.0.0.1:8080/'} "
            "(log in with a token from `steward tokens create --name me --role admin`)",
            f"MLflow UI: mlflow ui --backend-store-uri {self.steward.settings.tracking_uri}",
        ]
        lines += [f"evaluation report: {p}" for p in self.report.report_files]
        self.report.seconds = round(time.time() - self.t0, 1)
        lines.append(f"demo time: {self.report.seconds:.0f} s")
        self.console.print(Panel("\n".join(lines), title="Model Steward demo — final report"))
        out = Path(self.report.workspace) / "demo-report.json"
        out.write_text(json.dumps(self.report.as_dict(), indent=2, default=str))
        self.say(f"report file: {out}")

    def run(self) -> DemoReport:
        self.setup()
        self.serve()
        try:
            self.step("3. traffic through the gateway, with simulated user feedback")
            self.traffic(self.opts.requests, "story requests")
            self.agent_loop()
            self.step("4b. a tool-using use case: tool calls and JSON answers through the loop")
            from modelsteward.demo.tools import run_tool_use_case

            self.report.tools = run_tool_use_case(self, self.server.url, upstream_port=_free_port())
        finally:
            self.server.stop()
        self.final_report()
        self.steward.close()
        return self.report


def _summary(step: dict[str, Any]) -> str:
    """One line about a tool step of an agent run for the demo's screen, from its typed output."""
    from modelsteward.catalog.rank import Ranking
    from modelsteward.tools.base import get_tool
    from modelsteward.tools.catalog import ScanOutput
    from modelsteward.tools.evals import EvaluateOut
    from modelsteward.tools.rollout import RolloutOut
    from modelsteward.tools.training import BuildDatasetOut, FineTuneOut

    text = str(step.get("result") or step.get("error") or "")
    if not step.get("ok") or not isinstance(step.get("output"), dict):
        return text[:160]
    try:
        out = get_tool(step["name"]).output_model.model_validate(step["output"])
    except Exception:  # noqa: BLE001 - an unknown tool or an older shape is shown as its text
        return text[:160]
    if isinstance(out, ScanOutput):
        return "; ".join(f"{x.provider}: {x.status or ('ok' if not x.error else x.error_kind)}" for x in out.sources)[:200]
    if isinstance(out, BuildDatasetOut):
        return f"{out.train_rows} train / {out.validation_rows} validation rows -> {out.path}"
    if isinstance(out, FineTuneOut):
        m = out.metrics
        return (f"{out.result_model_id}: {m.get('steps')} steps, train loss "
                f"{m.get('first_train_loss') or 0:.3f} -> {m.get('train_loss') or 0:.3f}, "
                f"validation loss {m.get('val_loss') or 0:.3f}, {m.get('tokens_per_s') or 0:.0f} tokens/s")
    if isinstance(out, EvaluateOut):
        return f"{out.candidate}: {out.verdict.upper()} — {'; '.join(out.reasons)[:160]}"
    if isinstance(out, RolloutOut):
        return f"{out.action}: {out.message}"[:200]
    if isinstance(out, Ranking):
        return f"top: {', '.join(r.model_id for r in out.ranked[:3])}"
    return text[:160]


def run_demo(opts: DemoOptions) -> DemoReport:
    from modelsteward.wiring import wire

    wire()  # the composition root: approval_decide resumes the agent's runs, show_status observes
    return Demo(opts).run()
