"""The agent graph: observe -> plan -> guard -> (approval) -> act -> verify -> plan ... -> report.

Built from ``StateGraph``; ``act`` is our tool node.  We do not use ``langgraph.prebuilt.ToolNode``
because a call must pass the policy guard and possibly a human approval first, carry the
``ToolContext`` (actor, approval id), and run one call per super-step: with ``durability="sync"``
every finished call is checkpointed before the next starts, so a killed run resumes without
repeating completed calls (only the call in flight at the kill can run again).

- ``guard`` judges every proposed call: unknown tool, malformed or invalid arguments and policy
  denials become error ``ToolMessage``s the planner sees; needs-approval (the policy engine
  persists the ``approvals`` row) parks the call in ``awaiting``.
- ``approval`` handles one awaiting call per pass and calls ``interrupt()`` only while its row is
  still pending; nothing before it repeats on resume.  The row in the database, not the resume
  payload, decides: approved -> run with ``ctx.approval_id``; rejected/expired -> error message.
- ``verify`` re-reads the world and checks the effect of each executed change with the tool's own
  ``verify`` hook (``ToolSpec.verify``); the graph never branches on tool names.
- ``report`` writes the Markdown report to ``agent_runs``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Hashable
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from pydantic import BaseModel

from modelsteward.agent.decisions import DecisionRecord, collect, from_rollout_result, persist
from modelsteward.agent.observe import observe_world
from modelsteward.agent.planners import Planner
from modelsteward.agent.report import render_report
from modelsteward.agent.runtime import AgentRuntime
from modelsteward.agent.state import AgentState, data_block, to_json_text
from modelsteward.errors import ApprovalRequired, ConfigError, NotFound, PolicyDenied, StewardError, close_matches
from modelsteward.privacy import redact_obj
from modelsteward.storage import read
from modelsteward.storage import runs
from modelsteward.timeutil import utc_now_naive as utcnow
from modelsteward.tools.base import ToolContext, ToolSpec, call_tool, pass_policies
from modelsteward.tools.evals import EvaluateIn, EvaluateOut
from modelsteward.tools.rollout import RolloutOut
from modelsteward.tools.observation import Observation

__all__ = ["AgentRuntime", "build_graph", "validate_toolset", "NODES", "EXCLUDED_TOOLS"]

NODES = ("observe", "plan", "guard", "approval", "act", "verify", "report")
# Never offered to the agent: deciding approvals is for people, starting runs would recurse, and
# creating use cases or importing logs is the operator's administration, not management; credentials
# (API tokens, gateway keys) are people's (policies/access_rules.py denies an agent them anyway).
EXCLUDED_TOOLS = frozenset({"approval_decide", "agent_run", "usecase_add", "usecase_update", "usecase_delete",
                            "logs_import", "token_create", "token_revoke", "key_create", "key_revoke"})
OUTPUT_LIMIT = 65_536  # a tool step of the journal keeps its whole typed payload ("output") up to this many characters


def validate_toolset(planner: Planner, tools: dict[str, ToolSpec], registry: dict[str, ToolSpec]) -> None:
    """Fail at build time, naming the culprit: unknown or excluded tools, non-object schemas."""
    for name in planner.tool_names(tools):
        if name not in tools:
            raise ConfigError(
                f"Planner {planner.name!r} uses tool {name!r}, which is not bound to the agent."
                + close_matches(name, list(tools)), tool=name)
    for name, spec in tools.items():
        if name in EXCLUDED_TOOLS:
            raise ConfigError(f"Tool {name!r} may not be bound to the agent (people decide approvals).", tool=name)
        if name not in registry or registry[name] is not spec:
            raise ConfigError(f"Tool {name!r} is not the registered tool of that name." + close_matches(name, list(registry)),
                              tool=name)
        schema = spec.json_schema()
        if schema.get("type") != "object":
            raise ConfigError(f"Tool {name!r}: input schema must be a JSON object, got {schema.get('type')!r}.", tool=name)


def _approval_id(exc: ApprovalRequired) -> int | None:
    aid = getattr(exc, "approval_id", None) or (exc.details or {}).get("approval_id")
    return int(aid) if aid is not None else None


def _with_ids(msg: AIMessage) -> AIMessage:
    """Every call gets an id (a planner may leave them out) so each can be answered."""
    if not msg.id:
        msg.id = f"ai_{uuid.uuid4().hex[:12]}"
    if all(c.get("id") for c in msg.tool_calls) and all(c.get("id") for c in msg.invalid_tool_calls):
        return msg
    calls = [{**c, "id": c.get("id") or f"call_{uuid.uuid4().hex[:12]}"} for c in msg.tool_calls]
    bad = [{**c, "id": c.get("id") or f"call_{uuid.uuid4().hex[:12]}"} for c in msg.invalid_tool_calls]
    return AIMessage(content=msg.content, tool_calls=calls, invalid_tool_calls=bad, id=msg.id)  # type: ignore[arg-type]


def _error_msg(call_id: str, name: str, text: str) -> ToolMessage:
    """An error result; its text may echo untrusted input (arguments, upstream bodies): a data block."""
    return ToolMessage(content="ERROR: the call was not carried out.\n" + data_block(f"error:{name or 'unknown'}", text),
                       tool_call_id=call_id, name=name or "unknown", status="error", artifact={"error": text})


class _Nodes:
    """The graph's nodes over one runtime (each a named stage; ``build_graph`` wires them)."""

    def __init__(self, rt: AgentRuntime) -> None:
        self.rt = rt

    def link_approval(self, aid: int) -> None:
        runs.link_approval(self.rt.steward.sessions, aid, thread_id=self.rt.thread_id, run_id=self.rt.run_id)

    def observe(self, state: AgentState) -> dict[str, Any]:
        obs = observe_world(self.rt.steward, state.get("use_case"), with_intake=state.get("mode") != "chat")
        intake = {u["name"]: u["intake"] for u in obs["use_cases"] if "intake" in u}
        for u in obs["use_cases"]:  # planners see the plan; the decision records go to the journal once
            if "intake" in u:
                u["intake"] = {k: v for k, v in u["intake"].items() if k not in ("decisions", "candidates")}
        decided = [{"kind": "decision", "record": r} for plan in intake.values() for r in plan.get("decisions", [])]
        return {"observation": obs, "intake": intake, "queue": [], "awaiting": [], "executed": [],
                "journal": [{"kind": "observe", "at": obs["at"], "use_cases": [u["name"] for u in obs["use_cases"]],
                             "errors": obs["errors"]}, *decided]}

    def plan(self, state: AgentState) -> dict[str, Any]:
        step = state.get("step", 0)
        if step >= state.get("max_steps", 20):
            return {"outcome": f"step budget of {state.get('max_steps', 20)} planner turns used up",
                    "journal": [{"kind": "budget", "step": step}]}
        msg = _with_ids(self.rt.planner.plan(state, self.rt.tools))
        entry = {"kind": "plan", "step": step + 1, "text": str(msg.content)[:1000],
                 "calls": [{"id": c["id"], "name": c["name"], "args": c["args"]} for c in msg.tool_calls]
                 + [{"id": c["id"], "name": c.get("name"), "args": c.get("args"), "invalid": c.get("error")}
                    for c in msg.invalid_tool_calls]}
        if any(e.get("logged_text") for e in state.get("journal", [])):
            entry["logged_text"] = True  # the planner's text may quote the query results it read
        decided = [{"kind": "decision", "record": r} for r in (msg.additional_kwargs or {}).get("decisions") or []]
        out: dict[str, Any] = {"messages": [msg], "step": step + 1, "journal": [entry, *decided]}
        if not msg.tool_calls and not msg.invalid_tool_calls:
            out["outcome"] = "done"
        return out

    def guard(self, state: AgentState) -> dict[str, Any]:
        last = next(m for m in reversed(state["messages"]) if isinstance(m, AIMessage))
        msgs: list[ToolMessage] = []
        queue: list[dict[str, Any]] = []
        awaiting: list[dict[str, Any]] = []
        journal: list[dict[str, Any]] = []
        for bad in last.invalid_tool_calls:
            text = f"call {bad.get('name')!r} rejected: {bad.get('error') or 'malformed arguments'}; send arguments as a JSON object."
            msgs.append(_error_msg(str(bad["id"]), bad.get("name") or "", text))
            journal.append({"kind": "guard", "id": bad["id"], "name": bad.get("name"), "verdict": "invalid", "reason": text})
        ctx = self.rt.ctx()
        for c in last.tool_calls:
            name, cid = c["name"], str(c["id"])
            verdict, reason, args, aid = self._judge(ctx, cid, name, c["args"])
            journal.append({"kind": "guard", "id": cid, "name": name, "args": args, "verdict": verdict,
                            "reason": reason, "approval_id": aid})
            if verdict == "allow":
                queue.append({"id": cid, "name": name, "args": args, "approval_id": None})
            elif verdict == "needs_approval":
                awaiting.append({"id": cid, "name": name, "args": args, "approval_id": aid, "reason": reason})
            else:
                msgs.append(_error_msg(cid, name, reason))
        return {"messages": msgs, "queue": queue, "awaiting": awaiting, "journal": journal}

    def _judge(self, ctx: ToolContext, cid: str, name: str, args: dict[str, Any]) -> tuple[str, str, dict[str, Any], int | None]:
        """One proposed call: (verdict, reason, its validated arguments, the approval asked for).  An
        allowed mutating call's policy verdict is kept for ``act`` to hand on (one pass per call)."""
        spec = self.rt.tools.get(name)
        if spec is None:
            return "unknown", f"unknown tool {name!r}." + close_matches(name, list(self.rt.tools)), args, None
        try:
            inp = spec.input_model.model_validate(args)
            args = inp.model_dump(mode="json")
            if spec.mutating:
                self.rt.verdicts[cid] = pass_policies(spec, ctx, inp)
        except PolicyDenied as exc:
            return "deny", f"policy denied: {exc.message}", args, None
        except ApprovalRequired as exc:
            aid = _approval_id(exc)
            if aid is None:
                return "deny", f"approval required but no approval was recorded: {exc.message}", args, None
            self.link_approval(aid)
            return "needs_approval", exc.message, args, aid
        except StewardError as exc:
            return "invalid", f"{exc.code}: {exc.message}", args, None
        except ValueError as exc:  # pydantic ValidationError
            return "invalid", f"invalid arguments for {name!r}: {exc}"[:1500], args, None
        return "allow", "", args, None

    def _approval_state(self, aid: int) -> tuple[str, str | None, str | None]:
        """(status, decided by, why) of an approval row; the row, not a resume payload, decides."""
        try:
            a = read.approval(self.rt.steward, aid)
        except NotFound:
            return "missing", None, None
        return a.status, a.decided_by, a.decision_reason

    def approval(self, state: AgentState) -> dict[str, Any]:
        item, rest = state["awaiting"][0], state["awaiting"][1:]
        aid = item["approval_id"]
        if self._approval_state(aid)[0] == "pending":
            interrupt({"approval_id": aid, "action": item["name"], "arguments": item["args"], "reason": item["reason"],
                       "run_id": self.rt.run_id, "thread_id": self.rt.thread_id})
        status, by, why = self._approval_state(aid)
        entry = {"kind": "approval", "id": item["id"], "name": item["name"], "approval_id": aid, "status": status,
                 "decided_by": by, "reason": why}
        if status == "approved":
            return {"awaiting": rest, "queue": [{**item, "approval_id": aid}, *state.get("queue", [])], "journal": [entry]}
        text = f"approval #{aid} for {item['name']} is {status}" + (f" by {by}" if by else "") + (f": {why}" if why else "")
        return {"awaiting": rest, "messages": [_error_msg(item["id"], item["name"], text + "; the action was not run.")],
                "journal": [entry]}

    def act(self, state: AgentState) -> dict[str, Any]:
        item, rest = state["queue"][0], state["queue"][1:]
        name, cid = item["name"], item["id"]
        started = utcnow()
        entry: dict[str, Any] = {"kind": "tool", "id": cid, "name": name, "args": item["args"],
                                 "approval_id": item.get("approval_id"), "started": started.isoformat()}
        judged = self.rt.verdicts.pop(cid, None)
        if self.rt.tools[name].mutating:
            self.rt.verdicts.clear()  # this call changes the world the other verdicts were judged on
        try:
            out = call_tool(name, item["args"], self.rt.ctx(item.get("approval_id")), verdict=judged)
        except ApprovalRequired as exc:
            aid = _approval_id(exc)
            if aid is not None and aid != item.get("approval_id"):
                self.link_approval(aid)
                entry.update(ok=False, error=f"needs approval #{aid}")
                return {"queue": rest, "journal": [entry],
                        "awaiting": [*state.get("awaiting", []), {**item, "approval_id": aid, "reason": exc.message}]}
            msg, err = _error_msg(cid, name, f"approval problem: {exc.message}"), exc.message
        except PolicyDenied as exc:
            msg, err = _error_msg(cid, name, f"policy denied: {exc.message}"), exc.message
        except StewardError as exc:
            msg, err = _error_msg(cid, name, f"{exc.code}: {exc.message}"), f"{exc.code}: {exc.message}"
        except Exception as exc:  # noqa: BLE001 - a crashing tool is data the planner sees, not a crash
            msg, err = _error_msg(cid, name, f"tool failed: {type(exc).__name__}: {exc}"), f"{type(exc).__name__}: {exc}"
        else:
            return self._acted(state, item, rest, entry, out, started)
        entry.update(ok=False, error=str(err)[:1000])
        failed = _failed_evaluation(self.rt.tools[name], item["args"], str(err))
        return {"queue": rest, "messages": [msg], "journal": [entry, *failed],
                "executed": [*state.get("executed", []), {**item, "mutating": False, "failed": True}]}

    def _acted(self, state: AgentState, item: dict[str, Any], rest: list[dict[str, Any]], entry: dict[str, Any],
               out: BaseModel, started: dt.datetime) -> dict[str, Any]:
        """A call that ran: its typed payload goes on the message (``artifact``: what planners read back through
        the tool's output model), a short text to the journal, and the decision a rollout result stands for."""
        name, cid = item["name"], item["id"]
        payload = out.model_dump(mode="json")
        if self.rt.tools[name].logged_text:  # logged prompts and answers: redacted before a planner, journal or
            payload = redact_obj(payload)     # checkpoint holds them; viewers do not see such steps (issue 25)
            entry["logged_text"] = True
        msg = ToolMessage(content=data_block(f"tool:{name}", payload), tool_call_id=cid, name=name, artifact=payload)
        entry.update(ok=True, result=to_json_text(payload, 2000), seconds=round((utcnow() - started).total_seconds(), 3))
        if len(to_json_text(payload, OUTPUT_LIMIT + 1)) <= OUTPUT_LIMIT:  # the typed payload, whole, for readers of the run
            entry["output"] = payload
        outcome = from_rollout_result(item["args"], out) if isinstance(out, RolloutOut) else None
        journal = [entry] + ([{"kind": "decision", "record": outcome.model_dump(mode="json")}] if outcome else [])
        if isinstance(out, EvaluateOut):  # what it was evaluated as (its fingerprint) is stored now, not at the report
            persist(self.rt.steward, self.rt.run_id, collect([*state.get("journal", []), *journal]))
        return {"queue": rest, "messages": [msg], "journal": journal,
                "executed": [*state.get("executed", []), {**item, "mutating": self.rt.tools[name].mutating}]}

    def verify(self, state: AgentState) -> dict[str, Any]:
        before = state.get("observation") or {}
        after = observe_world(self.rt.steward, state.get("use_case"))
        checks = [_check(self.rt.tools.get(item["name"]), item, before, after)
                  for item in state.get("executed", []) if item.get("mutating")]
        return {"observation": after, "executed": [], "journal": [{"kind": "verify", "checks": checks}]}

    def report(self, state: AgentState) -> dict[str, Any]:
        rt = self.rt
        text = render_report(state, rt)
        persist(rt.steward, rt.run_id, collect(state.get("journal", [])))
        if rt.run_id is not None:
            runs.set_run(rt.steward.sessions, rt.run_id, report=text, status="completed", finished_at=utcnow(),
                         steps=[e for e in state.get("journal", []) if e.get("kind") != "observe"])
        return {"journal": [{"kind": "report", "at": dt.datetime.now(dt.timezone.utc).isoformat()}]}


def _after_plan(state: AgentState) -> str:
    return "report" if state.get("outcome") else "guard"


def _route_calls(state: AgentState) -> str:
    if state.get("awaiting"):
        return "approval"
    if state.get("queue"):
        return "act"
    return "verify" if state.get("executed") else "plan"


def build_graph(rt: AgentRuntime, checkpointer: Any = None) -> Any:
    """Compile the graph for one runtime; validates the tool set and every edge first."""
    from modelsteward.tools.base import TOOLS

    validate_toolset(rt.planner, rt.tools, TOOLS)
    nodes = _Nodes(rt)
    g = StateGraph(AgentState)
    for name in NODES:
        g.add_node(name, getattr(nodes, name))
    g.add_edge(START, "observe")
    g.add_edge("observe", "plan")
    g.add_conditional_edges("plan", _after_plan, {"report": "report", "guard": "guard"})  # type: ignore[arg-type]
    paths: dict[Hashable, str] = {"approval": "approval", "act": "act", "verify": "verify", "plan": "plan"}
    g.add_conditional_edges("guard", _route_calls, paths)
    g.add_conditional_edges("approval", _route_calls, paths)
    g.add_conditional_edges("act", _route_calls, paths)
    g.add_edge("verify", "plan")
    g.add_edge("report", END)
    missing = set(NODES) - set(g.nodes)
    if missing:
        raise ConfigError(f"Agent graph lacks node(s) {sorted(missing)}.")
    return g.compile(checkpointer=checkpointer, name="steward-agent")


def _failed_evaluation(spec: ToolSpec | None, args: dict[str, Any], err: str) -> list[dict[str, Any]]:
    """An evaluation that did not run is not a decision taken: its record says so (no fingerprint kept)."""
    if spec is None or spec.input_model is not EvaluateIn:
        return []
    model = args.get("model_id")
    rec = DecisionRecord(kind="evaluate", taken=False, use_case=args.get("use_case"), model_id=model,
                         rule="evaluate.failed", summary=f"the evaluation of {model} did not run: {err}"[:500])
    return [{"kind": "decision", "record": rec.model_dump(mode="json")}]


def _check(spec: ToolSpec | None, item: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Did the change show up?  The tool's own ``verify`` hook says: confirmed | not_visible, with what was
    compared; n/a for a tool without one."""
    result = {"id": item["id"], "name": item["name"], "status": "n/a", "detail": ""}
    if spec is None or spec.verify is None:
        return result
    try:
        inp = spec.input_model.model_validate(item["args"])
    except ValueError:  # arguments checkpointed by an older version: nothing to compare
        return result
    ok, detail = spec.verify(inp, Observation.model_validate(before), Observation.model_validate(after))  # typed worlds
    result.update(status="confirmed" if ok else "not_visible", detail=detail)
    return result
