"""Run lifecycle: start a run, resume a killed one, resume after an approval decision.

- Checkpoints: LangGraph ``SqliteSaver`` in ``<workspace>/checkpoints.db``, or ``PostgresSaver`` on
  the registry's database when that is PostgreSQL.  Runs invoke with ``durability="sync"``.
- One agent execution at a time per workspace: an ``fcntl`` lock on ``<workspace>/agent.lock``
  (plus a PostgreSQL advisory lock when the registry is PostgreSQL, for several hosts) held while
  the graph executes (not while a run waits for a person).  Because the lock is
  released by the OS when a process dies, a run still marked ``running`` that we find while
  holding the lock was killed: ``run_agent`` resumes such runs first (from their checkpoint).
- Run statuses: running, waiting_approval, completed, failed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import HumanMessage

from modelsteward.agent.decisions import collect as collect_decisions
from modelsteward.agent.graph import EXCLUDED_TOOLS, AgentRuntime, build_graph
from modelsteward.agent.planners import ChatIntentPlanner, Planner, PlaybookPlanner
from modelsteward.agent.report import failure_report, log_to_mlflow
from modelsteward.context import Steward
from modelsteward.errors import Conflict, InvalidInput, NotFound, StewardError
from modelsteward.storage import read, runs
from modelsteward.storage.db import advisory_lock, libpq_conninfo
from modelsteward.storage.read import AgentRunOut
from modelsteward.timeutil import utc_now_naive as utcnow
from modelsteward.tools.base import ToolSpec, list_tools

__all__ = [
    "AgentResult", "run_agent", "resume_run", "resume_after_decision", "resume_orphans", "make_planner",
    "agent_toolset", "open_checkpointer", "agent_lock", "AgentBusy", "DEFAULT_MAX_STEPS",
]

DEFAULT_MAX_STEPS = 20


class AgentBusy(Conflict):
    code = "agent_busy"


@dataclass
class AgentResult:
    run_id: int
    thread_id: str
    status: str
    report: str
    approval_id: int | None = None
    error: str | None = None
    answer: str = ""
    decisions: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "thread_id": self.thread_id, "status": self.status,
                "approval_id": self.approval_id, "error": self.error, "report": self.report,
                "decisions": self.decisions}


def agent_toolset(exclude: set[str] | frozenset[str] = EXCLUDED_TOOLS) -> dict[str, ToolSpec]:
    """Every registered tool the agent may call (people-only tools left out)."""
    return {t.name: t for t in list_tools() if t.name not in exclude}


def make_planner(spec: str | None, *, chat: bool = False) -> Planner:
    """``None``/"playbook" -> the playbook (intent rules in chat); ``openai:MODEL`` -> the LLM planner."""
    if not spec or spec == "playbook":
        return ChatIntentPlanner() if chat else PlaybookPlanner()
    from modelsteward.agent.llm import LLMPlanner

    return LLMPlanner.from_spec(spec, chat=chat, exclude=EXCLUDED_TOOLS)


@contextlib.contextmanager
def open_checkpointer(steward: Steward) -> Iterator[Any]:
    url = steward.settings.db_url
    if url.startswith("postgresql"):
        from langgraph.checkpoint.postgres import PostgresSaver
        conninfo = libpq_conninfo(url)
        with PostgresSaver.from_conn_string(conninfo) as saver:
            saver.setup()
            yield saver
        return
    import sqlite3

    from langgraph.checkpoint.sqlite import SqliteSaver

    path = steward.settings.workspace / "checkpoints.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    # owner-only: checkpoints hold the runs' messages (SQLite gives its -wal/-shm files the same mode)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    os.chmod(path, 0o600)
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        lite = SqliteSaver(conn)
        lite.setup()
        yield lite
    finally:
        conn.close()


@contextlib.contextmanager
def agent_lock(steward: Steward, *, wait: float | None = 0.0) -> Iterator[None]:
    """Exclusive agent lock; ``wait=None`` blocks, ``0`` fails at once with ``AgentBusy``.

    A file lock in the workspace; on PostgreSQL also a session advisory lock, so replicas on
    other hosts sharing the database exclude each other too.  Both vanish with a killed process.
    """
    deadline = None if wait is None else time.monotonic() + wait
    path = steward.settings.workspace / "agent.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
                    raise AgentBusy(f"Another agent run is executing in this workspace (pid {holder}); try again later.") from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        with _pg_advisory_lock(steward, deadline):
            yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextlib.contextmanager
def _pg_advisory_lock(steward: Steward, deadline: float | None) -> Iterator[None]:
    if not steward.settings.db_url.startswith("postgresql"):
        yield
        return
    busy = lambda: AgentBusy("Another agent run is executing against this database (another host); try again later.")  # noqa: E731
    with advisory_lock(steward.engine, "modelsteward-agent", deadline=deadline, busy=busy):
        yield


def _set_run(steward: Steward, run_id: int, **values: Any) -> None:
    runs.set_run(steward.sessions, run_id, **values)


def _runtime(steward: Steward, run: AgentRunOut, planner: Planner | None, actor: str | None = None) -> AgentRuntime:
    planner = planner or make_planner(run.planner if run.planner != "playbook" else None, chat=run.trigger == "chat")
    tools = agent_toolset()
    return AgentRuntime(steward=steward, planner=planner, tools=tools, run_id=run.id, thread_id=run.thread_id,
                        actor=actor or f"agent:run-{run.id}")


def _drive(steward: Steward, run: AgentRunOut, graph_input: Any, planner: Planner | None,
           actor: str | None = None) -> AgentResult:
    """Invoke (or resume) the graph for ``run`` and settle the run row from how it stopped."""
    rt = _runtime(steward, run, planner, actor)
    config = {"configurable": {"thread_id": run.thread_id}, "recursion_limit": 400}
    journal: list[dict[str, Any]] = []
    try:
        with open_checkpointer(steward) as saver:
            graph = build_graph(rt, saver)
            _set_run(steward, run.id, status="running", error=None)
            graph.invoke(graph_input, config, durability="sync")
            snap = graph.get_state(config)
            journal = list(snap.values.get("journal", []))
            interrupts = [i.value for i in snap.interrupts] if snap.interrupts else []
            messages = snap.values.get("messages", [])
    except StewardError as exc:
        reason = f"{exc.code}: {exc.message}"
        return _fail(steward, run, rt.planner.name, reason)
    except Exception as exc:  # noqa: BLE001 - a run ends "failed" with its reason, never half-silent
        return _fail(steward, run, rt.planner.name, f"{type(exc).__name__}: {exc}")
    if interrupts:
        aid = interrupts[0].get("approval_id") if isinstance(interrupts[0], dict) else None
        note = (f"# Agent run {run.id}\n\nWaiting for approval #{aid}: {interrupts[0].get('action')} "
                f"{interrupts[0].get('arguments')}.\nApprove with `steward approvals approve {aid}` "
                f"or reject with `steward approvals reject {aid}`.\n")
        _set_run(steward, run.id, status="waiting_approval", report=note,
                 steps=[e for e in journal if e.get("kind") != "observe"])
        return AgentResult(run.id, run.thread_id, "waiting_approval", note, approval_id=aid,
                           answer=_answer(messages), decisions=collect_decisions(journal))
    try:
        row = read.agent_run(steward, run.id)
        report, status = row.report or "", row.status
    except NotFound:
        report, status = "", "completed"
    mlflow_id = log_to_mlflow(steward, run.id, status=status, planner=rt.planner.name, report=report, journal=journal)
    if mlflow_id and mlflow_id.startswith("error:"):
        journal.append({"kind": "mlflow", "error": mlflow_id})
    return AgentResult(run.id, run.thread_id, status, report, answer=_answer(messages),
                       decisions=collect_decisions(journal))


def _answer(messages: list[Any]) -> str:
    from langchain_core.messages import AIMessage

    last = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
    return str(last.content) if last is not None and not last.tool_calls else ""


def _fail(steward: Steward, run: AgentRunOut, planner: str, reason: str) -> AgentResult:
    report = failure_report(run.id, planner, reason)
    _set_run(steward, run.id, status="failed", error=reason[:2000], report=report, finished_at=utcnow())
    log_to_mlflow(steward, run.id, status="failed", planner=planner, report=report, journal=[])
    return AgentResult(run.id, run.thread_id, "failed", report, error=reason)


def _get_run(steward: Steward, run_id: int) -> AgentRunOut:
    try:
        return read.agent_run(steward, run_id)
    except NotFound:
        raise NotFound(f"Unknown agent run {run_id}.", kind="agent_run", id=run_id) from None


def _waiting_on(steward: Steward, run: AgentRunOut) -> list[int]:
    """The approval ids the run's thread is interrupted on."""
    with open_checkpointer(steward) as saver:
        graph = build_graph(_runtime(steward, run, None), saver)
        snap = graph.get_state({"configurable": {"thread_id": run.thread_id}})
    return [int(i.value["approval_id"]) for i in (snap.interrupts or ())
            if isinstance(i.value, dict) and i.value.get("approval_id") is not None]


def _resume_decided(steward: Steward, run: AgentRunOut, approval_id: int) -> AgentResult | None:
    """Resume ``run`` if its thread waits on ``approval_id`` and that is decided (lock held by caller)."""
    if approval_id not in _waiting_on(steward, run):
        return None
    try:
        status = read.approval(steward, approval_id).status
    except NotFound:
        status = "missing"
    if status == "pending":
        return None
    from langgraph.types import Command

    return _drive(steward, run, Command(resume={"approval_id": approval_id, "status": status}), None)


def resume_orphans(steward: Steward) -> list[AgentResult]:
    """Call while holding the agent lock: resume runs left ``running`` by a killed process, and runs
    whose awaited approval was decided while nobody could resume them (e.g. the lock was busy)."""
    killed = sorted(r.id for r in read.agent_runs(steward, status="running", limit=None))
    parked = sorted(r.id for r in read.agent_runs(steward, status="waiting_approval", limit=None))
    out = [_drive(steward, _get_run(steward, rid), None, None) for rid in killed]
    for rid in parked:
        run = _get_run(steward, rid)
        for aid in _waiting_on(steward, run):
            res = _resume_decided(steward, run, aid)
            if res is not None:
                out.append(res)
            break  # a thread waits on one approval at a time
    return out


def run_agent(
    steward: Steward,
    *,
    goal: str = "",
    use_case: str | None = None,
    trigger: str = "cli",
    planner: Planner | None = None,
    max_steps: int = DEFAULT_MAX_STEPS,
    lock_wait: float | None = 0.0,
    resume_killed: bool = True,
    started_by: str | None = None,
) -> AgentResult:
    """One agent cycle (after resuming any killed run).  Raises ``AgentBusy`` if another executes.

    ``started_by``: who started it (``api:alice``, ``cli:bob``, ``schedule``); that person may not
    approve what the run requests (``policies.approvals.decision_refusal``)."""
    if max_steps < 1:
        raise InvalidInput(f"max_steps must be at least 1, got {max_steps}.")
    if use_case is not None:
        steward.registry.get_use_case(use_case)  # NotFound names close matches
    planner = planner or make_planner(steward.settings.agent_llm, chat=trigger == "chat")
    with agent_lock(steward, wait=lock_wait):
        if resume_killed:
            resume_orphans(steward)
        thread_id = f"agent-{uuid.uuid4().hex}"
        run = runs.start_run(steward.sessions, trigger=trigger, goal=goal, use_case=use_case, thread_id=thread_id,
                             planner=planner.name, started_by=started_by)
        text = goal or "Run one management cycle: observe, improve models where the evidence supports it, report."
        state = {"messages": [HumanMessage(content=text)], "run_id": run.id, "goal": goal, "use_case": use_case,
                 "mode": "chat" if trigger == "chat" else "run", "step": 0, "max_steps": max_steps, "journal": []}
        return _drive(steward, run, state, planner)


def resume_run(steward: Steward, run_id: int, *, lock_wait: float | None = 60.0) -> AgentResult:
    """Continue a killed or interrupted run from its last checkpoint."""
    run = _get_run(steward, run_id)
    if run.status in ("completed", "failed"):
        raise Conflict(f"Agent run {run_id} is {run.status}; nothing to resume.")
    with agent_lock(steward, wait=lock_wait):
        return _drive(steward, run, None, None)


def resume_after_decision(steward: Steward, approval_id: int, *, lock_wait: float | None = 300.0) -> AgentResult | None:
    """After a person decided ``approval_id``: resume the agent thread waiting on it.

    Returns ``None`` when no agent thread waits on that approval (e.g. a CLI-requested action).
    The ``approval_decide`` tool calls this (registered below) after recording the decision.  If another run
    holds the agent lock past ``lock_wait``, ``AgentBusy`` is raised; the decision stands and the
    next agent start (``run_agent``) resumes the thread.
    """
    try:
        a = read.approval(steward, approval_id)
    except NotFound:
        raise NotFound(f"Unknown approval {approval_id}; see `steward approvals list`.", kind="approval",
                       id=approval_id) from None
    if a.status == "pending":
        raise Conflict(f"Approval {approval_id} is still pending; decide it before resuming the agent.")
    run_id, thread_id = a.agent_run_id, a.thread_id
    if run_id is None or thread_id is None:
        return None
    run = _get_run(steward, run_id)
    if run.status != "waiting_approval":
        return None
    with agent_lock(steward, wait=lock_wait):
        return _resume_decided(steward, _get_run(steward, run_id), approval_id)

