"""Planners: given the agent state, propose the next tool calls as one ``AIMessage``.

Both planners emit the same messages (``AIMessage.tool_calls``; an ``AIMessage`` without calls
ends the cycle with its text as the answer), so the graph does not care which one plans.

``PlaybookPlanner`` is deterministic and needs no LLM.  It never reads free text (model
descriptions, logged prompts) as instructions: it decides on structured fields only, which is
why a prompt injection in a catalog description cannot steer it.  Per use case, first match wins:

0. ``guard_check`` once per run (records violations and acts on them);
1. unhandled violations of severity rollback/disable -> ``rollout_abort`` (active rollout) or
   ``rollback``;
2. an active (waiting) rollout -> ``rollout_advance`` once per run: the rollout tool analyses the
   live step against the stable model and advances, rolls back or waits (a paused rollout is left
   to a person);
3. the catalog is stale (no good scan in 24 h) -> ``scan`` (once per run);
4. ``rank`` the use case (once per run);
5. ``evaluate`` up to two top-ranked untested candidates (no test against the current model), and
   re-evaluate an inconclusive one on twice the sample (up to ``MAX_EVAL_SAMPLES``);
6. (unless the last fine-tune's model is still a candidate or in a rollout) at least
   ``FINE_TUNE_MIN_FEEDBACK`` (or ``config["agent"]["fine_tune_min_feedback"]``) new
   high-feedback logs since the last fine-tune or the end of the last rollout (whichever is later;
   never in the run that ended a rollout) -> ``build_dataset`` then ``fine_tune`` of a
   self-hosted base on that dataset (``config["agent"]["fine_tune"]``: extra arguments);
7. no rollout, no pending approval, a candidate whose latest test against the current model
   passed and that is better or cheaper -> ``deploy``: ``shadow`` first, ``canary`` once the
   candidate passed shadow on this use case.  A use case may set
   ``config["agent"]["rollout_strategy"]`` (shadow | canary | full; full always needs an approval
   by policy) and ``config["agent"]["evaluate"]`` (extra ``evaluate`` arguments, e.g. samples).

Rules whose tool is not registered are skipped (and named in the report), so the playbook
works with whatever areas are installed.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from typing import Any, Protocol

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from modelsteward.agent.observe import HIGH_FEEDBACK
from modelsteward.agent.state import AgentState
from modelsteward.tools.base import ToolSpec

__all__ = ["Planner", "PlaybookPlanner", "ChatIntentPlanner", "fit_args", "better_or_cheaper", "PLAYBOOK_TOOLS",
           "FINE_TUNE_MIN_FEEDBACK"]

FINE_TUNE_MIN_FEEDBACK = 200
EVALS_PER_RUN = 2
MAX_EVAL_SAMPLES = 200  # re-evaluating an inconclusive candidate doubles its sample up to this
PLAYBOOK_TOOLS = (
    "guard_check", "scan", "rank", "evaluate", "build_dataset", "fine_tune", "deploy", "rollout_advance", "rollout_abort", "rollback",
)

# canonical argument -> field names a tool's input model may use for it
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "use_case": ("use_case", "use_case_name", "usecase"),
    "model": ("model", "model_id", "candidate", "candidate_model_id"),
    "base": ("base", "base_model", "base_model_id"),
    "strategy": ("strategy",),
    "provider": ("provider",),
    "samples": ("samples", "sample_count", "n_samples"),
    "sql": ("sql", "query"),
    "reason": ("reason",),
    "dataset": ("dataset", "dataset_path", "dataset_id"),
    "min_feedback": ("min_feedback",),
}


class Planner(Protocol):
    name: str

    def tool_names(self, available: Iterable[str]) -> list[str]:
        """The tools this planner may call (validated when the graph is compiled)."""
        ...

    def plan(self, state: AgentState, tools: dict[str, ToolSpec]) -> AIMessage: ...


def fit_args(spec: ToolSpec, **canonical: Any) -> dict[str, Any]:
    """Map canonical arguments onto the field names of ``spec``'s input model (dropping the rest)."""
    fields = spec.input_model.model_fields
    out: dict[str, Any] = {}
    for key, value in canonical.items():
        if value is None:
            continue
        for name in _SYNONYMS.get(key, (key,)):
            if name in fields:
                out[name] = value
                break
    return out


def _call(name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "args": args, "id": f"pb_{uuid.uuid4().hex[:12]}", "type": "tool_call"}


def _turn_messages(state: AgentState) -> list[Any]:
    """Messages since the operator's last message (the current chat turn or the whole run)."""
    msgs = list(state.get("messages", []))
    for i in range(len(msgs) - 1, -1, -1):
        if isinstance(msgs[i], HumanMessage):
            return msgs[i + 1:]
    return msgs


def _results(state: AgentState) -> list[tuple[dict[str, Any], ToolMessage]]:
    """(call, result) pairs of this turn, in order."""
    calls: dict[str, dict[str, Any]] = {}
    out = []
    for m in _turn_messages(state):
        if isinstance(m, AIMessage):
            for c in m.tool_calls:
                calls[str(c["id"])] = dict(c)
        elif isinstance(m, ToolMessage) and m.tool_call_id in calls:
            out.append((calls[m.tool_call_id], m))
    return out


def _called(state: AgentState) -> list[dict[str, Any]]:
    return [dict(c) for m in _turn_messages(state) if isinstance(m, AIMessage) for c in m.tool_calls]


def _payload(msg: ToolMessage) -> Any:
    if isinstance(msg.artifact, (dict, list)):
        return msg.artifact
    return None


def _arg(call: dict[str, Any], key: str) -> Any:
    for name in _SYNONYMS.get(key, (key,)):
        if name in call["args"]:
            return call["args"][name]
    return None


def _ranked_ids(payload: Any) -> list[str]:
    ids: list[str] = []

    def walk(o: Any) -> None:
        if isinstance(o, dict):
            mid = o.get("model_id") or o.get("id") or o.get("model")
            if isinstance(mid, str) and ":" in mid and mid not in ids:
                ids.append(mid)
            for v in o.values():
                if isinstance(v, (list, dict)):
                    walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(payload)
    return ids


def _price(m: dict[str, Any]) -> float | None:
    if m.get("price_in_per_m") is None and m.get("price_out_per_m") is None:
        return None
    return float(m.get("price_in_per_m") or 0) + float(m.get("price_out_per_m") or 0)


def _quality_gain(test: dict[str, Any]) -> float | None:
    mt = test.get("metrics") or {}
    for ratio in ("quality_ratio", "relative_quality"):
        if isinstance(mt.get(ratio), (int, float)):
            return float(mt[ratio]) - 1.0
    cand = next((mt[k] for k in ("candidate_quality", "quality_candidate", "quality") if isinstance(mt.get(k), (int, float))), None)
    base = next((mt[k] for k in ("baseline_quality", "quality_baseline", "current_quality") if isinstance(mt.get(k), (int, float))), None)
    if cand is not None and base is not None:
        return float(cand) - float(base)
    return None


def better_or_cheaper(cand: dict[str, Any], current: dict[str, Any] | None,
                      config: dict[str, Any] | None = None) -> str | None:
    """Why a passing candidate is worth a rollout ('better' / 'cheaper' / a specialised fine-tune), or None."""
    test = cand.get("latest_test") or {}
    gain = _quality_gain(test)
    if gain is not None and gain > 0.0:
        return f"better (quality gain {gain:+.3f})"
    if (config or {}).get("rollout_fine_tunes_on_pass") and current is not None and cand.get("kind") == "fine_tuned" \
            and cand.get("parent_model_id") in (current.get("id"), current.get("parent_model_id")):
        return "a fine-tune of the current model on this use case's own traffic that passed the gate"
    pc, pb = _price(cand), _price(current) if current else None
    if pc is not None and pb is not None and pc < pb:
        return f"cheaper ({pc:g} vs {pb:g} USD per M in+out)"
    if pc == 0 and pb is None and current is not None and current.get("kind") == "paid":
        return "cheaper (self-hosted)"
    return None


class PlaybookPlanner:
    """The built-in deterministic playbook (see the module docstring for its rules)."""

    name = "playbook"

    def tool_names(self, available: Iterable[str]) -> list[str]:
        avail = set(available)
        return [t for t in PLAYBOOK_TOOLS if t in avail]

    def plan(self, state: AgentState, tools: dict[str, ToolSpec]) -> AIMessage:
        obs = state.get("observation") or {}
        called = _called(state)
        done = {(c["name"], _arg(c, "use_case"), _arg(c, "model")) for c in called}
        results = _results(state)
        notes: list[str] = []

        def has(name: str) -> bool:
            if name in tools:
                return True
            if f"tool {name} missing" not in notes:
                notes.append(f"tool {name} missing")
            return False

        def once(name: str, uc: str | None, model: str | None = None) -> bool:
            return (name, uc, model) not in done

        pending_actions = {(a["action"], json.dumps(a["arguments"], sort_keys=True, default=str))
                           for a in obs.get("pending_approvals", [])}

        def pending(name: str, args: dict[str, Any]) -> bool:
            return (name, json.dumps(args, sort_keys=True, default=str)) in pending_actions

        # 0. guardrails first: records violations and acts on them (warn, pause, roll back)
        if "guard_check" in tools and not any(c["name"] == "guard_check" for c in called):
            return self._msg([_call("guard_check", fit_args(tools["guard_check"], use_case=state.get("use_case")))],
                             "check guardrails on recent traffic")
        for uc in obs.get("use_cases", []):
            name = uc["name"]
            active = uc.get("rollouts") or []
            # 1. violations
            severe = [v for v in uc.get("violations", []) if not v["handled"] and v["severity"] in ("rollback", "disable")]
            if severe:
                tool = "rollout_abort" if active else "rollback"
                if has(tool) and once(tool, name):
                    why = f"violation {severe[0]['policy']} ({severe[0]['severity']}) on {severe[0]['model_id']}"
                    args = fit_args(tools[tool], use_case=name, reason=why)
                    if not pending(tool, args):
                        return self._msg([_call(tool, args)], f"{name}: {why}")
            # 2. active rollout: rollout_advance analyses the step and advances, rolls back or waits
            if active:
                ro = active[0]
                if ro["state"] == "paused":
                    notes.append(f"{name}: rollout {ro['id']} is paused (needs a person: rollout advance --resume)")
                elif has("rollout_advance") and once("rollout_advance", name):
                    args = fit_args(tools["rollout_advance"], use_case=name)
                    if not pending("rollout_advance", args):
                        return self._msg([_call("rollout_advance", args)],
                                         f"{name}: analyse rollout {ro['id']} ({ro['strategy']}, step {ro['step_index']})")
                continue  # one change at a time per use case while a rollout runs
        for uc in obs.get("use_cases", []):
            name = uc["name"]
            if (uc.get("rollouts") or []):
                continue
            # 3. scan
            if obs.get("catalog", {}).get("stale") and has("scan") and not any(c["name"] == "scan" for c in called):
                args = fit_args(tools["scan"], use_case=state.get("use_case"))
                return self._msg([_call("scan", args)], "catalog is stale: scan")
            # 4. rank
            candidates = [m for m in uc.get("models", []) if m["id"] != uc.get("current_model")
                          and m["status"] in ("discovered", "candidate", "evaluating")]
            if candidates and has("rank") and once("rank", name):
                return self._msg([_call("rank", fit_args(tools["rank"], use_case=name))], f"{name}: rank candidates")
            # 5. evaluate top-ranked untested candidates
            ranked = next((_ranked_ids(_payload(m)) for c, m in reversed(results)
                           if c["name"] == "rank" and _arg(c, "use_case") == name and _payload(m)), [])
            order = {mid: i for i, mid in enumerate(ranked)}
            by_rank = sorted(candidates, key=lambda m: (order.get(m["id"], len(order)), m["id"]))
            evaluated = [c for c in called if c["name"] == "evaluate" and _arg(c, "use_case") == name]
            if uc.get("current_model") and has("evaluate") and len(evaluated) < EVALS_PER_RUN:
                extra = dict((uc.get("agent_config") or {}).get("evaluate") or {})
                configured = int(extra.get("samples") or 20)
                for m in by_rank:
                    t = m.get("latest_test")
                    untested = t is None or t.get("baseline") != uc["current_model"]
                    # an inconclusive verdict means "too few samples to tell": ask again with twice as many,
                    # once (a sample already twice the configured size, or the cap, is not asked again)
                    retry = (not untested and t is not None and t.get("verdict") == "inconclusive"
                             and int(t.get("samples") or 0) < min(2 * configured, MAX_EVAL_SAMPLES))
                    if (untested or retry) and once("evaluate", name, m["id"]):
                        args = {**fit_args(tools["evaluate"], use_case=name, model=m["id"]),
                                **{k: v for k, v in extra.items() if k in tools["evaluate"].input_model.model_fields}}
                        why = f"{name}: evaluate untested candidate {m['id']}"
                        if retry and "samples" in tools["evaluate"].input_model.model_fields:
                            args["samples"] = min(MAX_EVAL_SAMPLES, max(configured, int(t.get("samples") or 0)) * 2)
                            why = (f"{name}: {m['id']} was inconclusive on {t.get('samples')} samples: "
                                   f"evaluate again on {args['samples']}")
                        return self._msg([_call("evaluate", args)], why)
            # 6. fine-tune on new high-feedback logs
            fb = (uc.get("new_feedback") or {}).get("high_feedback", 0)
            job = uc.get("last_fine_tune") or {}
            base = self._fine_tune_base(uc)
            cfg = uc.get("agent_config") or {}
            min_fb = int(cfg.get("fine_tune_min_feedback") or FINE_TUNE_MIN_FEEDBACK)
            models_by_id = {m["id"]: m for m in uc.get("models", [])}
            last_model = models_by_id.get(job.get("result_model_id") or "")
            in_flight = last_model is not None and last_model["status"] in ("candidate", "evaluating", "shadow", "canary")
            # cool-down: a run that just ended a rollout (promotion or rollback) does not fine-tune again
            ended_here = any(c["name"] in ("rollout_advance", "rollout_abort", "rollback") and _arg(c, "use_case") == name
                             for c in called)
            if ended_here and fb >= min_fb:
                notes.append(f"{name}: a rollout ended in this run; fine-tuning waits for new feedback")
            if (fb >= min_fb and job.get("status") not in ("queued", "running") and base and not in_flight
                    and not ended_here):
                if has("build_dataset") and once("build_dataset", name):
                    extra = dict(cfg.get("build_dataset") or {})
                    args = {**fit_args(tools["build_dataset"], use_case=name, min_feedback=HIGH_FEEDBACK),
                            **{k: v for k, v in extra.items() if k in tools["build_dataset"].input_model.model_fields}}
                    return self._msg([_call("build_dataset", args)], f"{name}: {fb} new high-feedback logs: build a dataset")
                built = next((_payload(m) for c, m in reversed(results)
                              if c["name"] == "build_dataset" and _arg(c, "use_case") == name), None)
                if isinstance(built, dict) and built.get("path") and has("fine_tune") and once("fine_tune", name):
                    extra = dict(cfg.get("fine_tune") or {})
                    args = {**fit_args(tools["fine_tune"], use_case=name, base=base, dataset=built["path"]),
                            **{k: v for k, v in extra.items() if k in tools["fine_tune"].input_model.model_fields}}
                    return self._msg([_call("fine_tune", args)], f"{name}: fine-tune {base} on the new dataset")
            # 7. start a rollout for a passing, better or cheaper candidate
            current = next((m for m in uc.get("models", []) if m["id"] == uc.get("current_model")), None)
            for m in by_rank:
                t = m.get("latest_test") or {}
                if not (t.get("passed") and t.get("baseline") == uc.get("current_model")):
                    continue
                worth = better_or_cheaper(m, current, uc.get("agent_config"))
                if worth and has("deploy") and once("deploy", name, m["id"]):
                    strategy = str((uc.get("agent_config") or {}).get("rollout_strategy") or "shadow")
                    if strategy == "shadow" and m.get("shadow_passed"):
                        strategy = "canary"  # shadow done for this use case: canary next
                    args = fit_args(tools["deploy"], use_case=name, model=m["id"], strategy=strategy)
                    if pending("deploy", args) or uc.get("pending_approvals"):
                        notes.append(f"{name}: deploy of {m['id']} waits for approval")
                        continue
                    return self._msg([_call("deploy", args)], f"{name}: {m['id']} passed and is {worth}: {strategy} rollout")
        summary = "Playbook: nothing more to do this cycle."
        if notes:
            summary += " Notes: " + "; ".join(notes) + "."
        return AIMessage(content=summary, id=f"pb_{uuid.uuid4().hex[:12]}")

    @staticmethod
    def _fine_tune_base(uc: dict[str, Any]) -> str | None:
        models = {m["id"]: m for m in uc.get("models", [])}
        cur = models.get(uc.get("current_model") or "")
        if cur and cur["kind"] in ("self_hosted", "fine_tuned"):
            return cur.get("parent_model_id") or cur["id"]
        for m in models.values():
            if m["kind"] == "self_hosted" and m["status"] not in ("rejected", "retired"):
                return m["id"]
        return None

    @staticmethod
    def _msg(calls: list[dict[str, Any]], why: str) -> AIMessage:
        return AIMessage(content=why, tool_calls=calls, id=f"pb_{uuid.uuid4().hex[:12]}")


# ---------------------------------------------------------------------------- chat intents
_HELP = (
    "I understand (offline playbook mode): `sql: SELECT ...` or a SELECT statement (read-only, view `logs`), "
    "`use cases`, `models [USE_CASE]`, `rollouts [USE_CASE]`, `approvals`, `status`, "
    "`deploy MODEL to USE_CASE [shadow|canary|full]`, `evaluate MODEL on USE_CASE`, `rollback USE_CASE`, "
    "`advance USE_CASE`, `abort USE_CASE`, `scan`, `rank USE_CASE`, `run` (one playbook cycle). "
    "Set STEWARD_AGENT_LLM=openai:MODEL for free-form questions."
)


class ChatIntentPlanner:
    """Offline chat: maps the operator's line to tool calls by simple rules, then summarises.

    Actions it proposes go through the same guard as every other call.  ``run`` hands the
    rest of the turn to the playbook.
    """

    name = "playbook"

    def __init__(self) -> None:
        self._playbook = PlaybookPlanner()

    def tool_names(self, available: Iterable[str]) -> list[str]:
        return sorted(set(available))

    def plan(self, state: AgentState, tools: dict[str, ToolSpec]) -> AIMessage:
        msgs = list(state.get("messages", []))
        last_human = next((m for m in reversed(msgs) if isinstance(m, HumanMessage)), None)
        text = str(last_human.content).strip() if last_human else ""
        turn = _turn_messages(state)
        if re.fullmatch(r"(?i)(run|cycle|playbook|run the playbook|run a cycle)\.?", text):
            return self._playbook.plan(state, tools)
        if turn:  # tools already answered this turn: summarise what they returned
            return AIMessage(content=self._summary(state), id=f"chat_{uuid.uuid4().hex[:12]}")
        calls = self._intent(text, tools)
        if not calls:
            return AIMessage(content=_HELP, id=f"chat_{uuid.uuid4().hex[:12]}")
        return AIMessage(content="", tool_calls=calls, id=f"chat_{uuid.uuid4().hex[:12]}")

    @staticmethod
    def _summary(state: AgentState) -> str:
        parts = []
        for call, msg in _results(state):
            body = msg.artifact if isinstance(msg.artifact, (dict, list)) else str(msg.content)
            status = "error" if msg.status == "error" else "ok"
            text = json.dumps(body, indent=2, default=str) if not isinstance(body, str) else body
            if len(text) > 4000:
                text = text[:4000] + "\n... (truncated)"
            parts.append(f"**{call['name']}** ({status}):\n```\n{text}\n```")
        return "\n\n".join(parts) or "Nothing to report."

    @staticmethod
    def _intent(text: str, tools: dict[str, ToolSpec]) -> list[dict[str, Any]]:
        low = text.lower().strip()

        def mk(name: str, **kw: Any) -> list[dict[str, Any]]:
            if name not in tools:
                return [_call(name, kw)]  # the guard answers "unknown tool" with what exists
            return [_call(name, fit_args(tools[name], **kw))]

        m = re.match(r"(?is)^sql:\s*(.+)$", text.strip()) or re.match(r"(?is)^((?:select|with)\b.*)$", text.strip())
        if m:
            return mk("query_logs", sql=m.group(1).strip().rstrip(";"))
        m = re.match(r"(?i)^(?:deploy|roll ?out)\s+(\S+)\s+(?:to|on|for)\s+(\S+)(?:\s+(?:as\s+)?(shadow|canary|full))?",
                     text.strip())
        if m:
            return mk("deploy", model=m.group(1), use_case=m.group(2), strategy=(m.group(3) or "shadow").lower())
        m = re.match(r"(?i)^(?:evaluate|eval|test)\s+(\S+)\s+(?:on|for|against)\s+(\S+)", text.strip())
        if m:
            return mk("evaluate", model=m.group(1), use_case=m.group(2))
        m = re.match(r"(?i)^(rollback|roll back|advance|abort|rank)\s+(\S+)", text.strip())
        if m:
            name = {"rollback": "rollback", "roll back": "rollback", "advance": "rollout_advance",
                    "abort": "rollout_abort", "rank": "rank"}[m.group(1).lower()]
            return mk(name, use_case=m.group(2))
        uc = re.search(r"\b(?:for|on|of)\s+([\w-]+)\s*\??$", low)
        uc_name = uc.group(1) if uc else None
        if low.startswith("scan"):
            return mk("scan")
        if "approval" in low:
            return mk("approvals_list")
        if "run" in low and ("agent" in low or "history" in low or "recent" in low):
            return mk("agent_runs")
        if "rollout" in low:
            return mk("show_rollouts", use_case=uc_name)
        if "use case" in low or "usecase" in low:
            return mk("list_use_cases")
        if "model" in low:
            m2 = re.match(r"(?i)^models?\s+([\w-]+)$", low)
            return mk("list_models", use_case=uc_name or (m2.group(1) if m2 else None))
        if low in ("status", "state", "overview") or "status" in low:
            return mk("show_status", use_case=uc_name)
        return []
