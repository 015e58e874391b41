"""The playbook planner: given the agent state, propose the next tool call as one ``AIMessage``.

``PlaybookPlanner`` is deterministic and needs no LLM.  It never reads free text (model
descriptions, logged prompts) as instructions: it decides on structured fields only, which is
why a prompt injection in a catalog description cannot steer it.  Per use case, first match wins:

0. ``guard_check`` once per run (records violations and acts on them);
1. unhandled violations of severity rollback/disable -> ``rollout_abort`` (active rollout) or
   ``rollback``;
1b. an open ``slo_*`` violation on the *live* model (no rollout running) -> a switch: ``deploy``
   (``config["agent"]["switch_strategy"]``, default full, which policy sends to a person) of a
   healthy alternative that passed its evaluation against the live model (a fallback first, then
   any candidate); a healthy fallback without such an evaluation is evaluated first; with no
   alternative, a declined ``switch`` decision (warn only).  Only open violations count (a guard
   check that no longer finds one closes it).  A pending switch of the same intent (use case, model,
   strategy) is not asked again (the guard check adds new violations to its evidence); a switch
   withdrawn because its cause cleared is not proposed again within ``SWITCH_COOLDOWN_MINUTES``
   (``config["agent"]["switch_cooldown_minutes"]``);
2. an active (waiting) rollout -> ``rollout_advance`` once per run: the rollout tool analyses the
   live step against the stable model and advances, rolls back or waits (a paused rollout is left
   to a person);
2b. a completed rollout (90 days) whose realised gain is not measured for good -> ``measure_gains``
   (once per run; the tool raises a violation when the realised gain contradicts the stated one);
3. the catalog is stale (no good scan in 24 h) -> ``scan`` (once per run);
5. ``evaluate`` the candidates of this run's *candidate intake* (``agent/intake.py``: every
   compatible registered model, linked or not, with no evidence on the use case or a chance of a
   benefit, within the use case's evaluation budget, linked ones first, then by chance of a
   benefit per evaluation dollar; an inconclusive one again on twice the sample), each with
   ``max_seconds`` = what is left of the cycle's ``evaluation.max_minutes_per_cycle`` (none left:
   a deferral record).  Without an intake plan (chat turns): ``rank``, then up to two linked
   untested candidates;
6. (unless the last fine-tune's model is still a candidate or in a rollout) at least
   ``FINE_TUNE_MIN_FEEDBACK`` (or ``config["agent"]["fine_tune_min_feedback"]``) new
   high-feedback logs since the last fine-tune or the end of the last rollout (whichever is later;
   never in the run that ended a rollout) -> ``build_dataset`` then ``fine_tune`` of a
   self-hosted base on that dataset (``config["agent"]["fine_tune"]``: extra arguments);
7. no rollout, no pending approval, a candidate whose latest test against the current model
   passed (non-inferior and safe) *and* states a benefit (``metrics["benefit"]["verdict"]`` cheaper
   or better; none when missing) -> ``deploy``: ``shadow`` first, ``canary`` once the candidate
   passed shadow on this use case.  A non-inferior fine-tune of the current line may go to a
   canary without one: its promotion then needs an online feedback gain (enforced by the rollout).
   A use case may set ``config["agent"]["rollout_strategy"]`` (shadow | canary | full; full always
   needs an approval by policy) and ``config["agent"]["evaluate"]`` (extra ``evaluate`` arguments).

Every decision taken or declined is a :class:`~modelsteward.agent.decisions.DecisionRecord`
attached to the planner's message (``additional_kwargs["decisions"]``) and journaled by the graph.

Rules whose tool is not registered are skipped (and named in the report), so the playbook
works with whatever areas are installed.

One vocabulary: every call is written with the tools' own field names (``use_case``,
``model_id``, ``base``, ``dataset``, ...), and earlier results are read back through the tool's
output model (``ToolSpec.output_model``) from the typed payload the graph keeps on each
``ToolMessage`` (``artifact``), never by guessing at keys.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Iterable
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from pydantic import BaseModel, ValidationError

from modelsteward.agent.decisions import DecisionRecord
from modelsteward.agent.intake import MAX_EVAL_SAMPLES
from modelsteward.agent.observe import HIGH_FEEDBACK
from modelsteward.agent.state import AgentState
from modelsteward.policies.approvals import intent_key
from modelsteward.bounds import EVALUATION_BOUNDS
from modelsteward.tools.base import ToolSpec

__all__ = ["PlaybookPlanner", "benefit_of", "deploy_decision", "call", "args_of", "turn_messages", "results",
           "PLAYBOOK_TOOLS", "FINE_TUNE_MIN_FEEDBACK", "MAX_EVAL_SAMPLES", "EVALS_PER_RUN"]

FINE_TUNE_MIN_FEEDBACK = 200
SWITCH_COOLDOWN_MINUTES = 120.0  # a withdrawn switch is not proposed again for this long
MIN_EVAL_SECONDS = 5.0  # an evaluation needs at least this much of the cycle left to start
MAX_EVAL_SECONDS = EVALUATION_BOUNDS["max_minutes_per_cycle"].hard * 60
EVALS_PER_RUN = 2
PLAYBOOK_TOOLS = (
    "guard_check", "scan", "rank", "evaluate", "build_dataset", "fine_tune", "deploy", "rollout_advance", "rollout_abort",
    "rollback", "measure_gains",
)


def args_of(**fields: Any) -> dict[str, Any]:
    """A call's arguments, in the tool's own field names; an unset (None) field is left out."""
    return {k: v for k, v in fields.items() if v is not None}


def call(name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "args": args, "id": f"pb_{uuid.uuid4().hex[:12]}", "type": "tool_call"}


def turn_messages(state: AgentState) -> list[Any]:
    """Messages since the operator's last message (the current chat turn or the whole run)."""
    msgs = list(state.get("messages", []))
    for i in range(len(msgs) - 1, -1, -1):
        if isinstance(msgs[i], HumanMessage):
            return msgs[i + 1:]
    return msgs


def results(state: AgentState) -> list[tuple[dict[str, Any], ToolMessage]]:
    """(call, result) pairs of this turn, in order."""
    calls: dict[str, dict[str, Any]] = {}
    out = []
    for m in turn_messages(state):
        if isinstance(m, AIMessage):
            for c in m.tool_calls:
                calls[str(c["id"])] = dict(c)
        elif isinstance(m, ToolMessage) and m.tool_call_id in calls:
            out.append((calls[m.tool_call_id], m))
    return out


def _called(state: AgentState) -> list[dict[str, Any]]:
    return [dict(c) for m in turn_messages(state) if isinstance(m, AIMessage) for c in m.tool_calls]


def benefit_of(test: dict[str, Any] | None) -> dict[str, Any]:
    """The evaluation's stated benefit (``metrics["benefit"]``); a row without one (older evaluations) has none."""
    b = ((test or {}).get("metrics") or {}).get("benefit")
    if not isinstance(b, dict) or b.get("verdict") not in ("cheaper", "better", "none"):
        return {"verdict": "none", "rule": "no benefit recorded by the evaluation"}
    return b


def deploy_decision(cand: dict[str, Any], current: dict[str, Any] | None, use_case: str) -> DecisionRecord:
    """Whether a candidate that passed its evaluation against the live model earns a rollout.

    Passed = non-inferior and safe.  A rollout needs a benefit (``cheaper`` or ``better``, stated with
    its evidence by the evaluation); a fine-tune of the current line that is non-inferior may go to a
    canary, where its promotion needs an online feedback gain (the rollout enforces that)."""
    test = cand.get("latest_test") or {}
    b = benefit_of(test)
    nums: dict[str, Any] = {k: b.get(k) for k in ("quality_ratio", "quality_ratio_lcb", "cost_ratio")
                            if isinstance(b.get(k), (int, float)) or b.get(k) is None}
    ev = [f"test #{test.get('id')} ({test.get('verdict')}, {test.get('samples')} samples) vs {test.get('baseline')}"]
    if b.get("method"):
        ev.append(f"quality method: {b['method']}")
    if b.get("verdict") in ("cheaper", "better"):
        return DecisionRecord(kind="deploy", use_case=use_case, model_id=cand["id"], rule=f"benefit.{b['verdict']}",
                              summary=f"{cand['id']} passed and is {b['verdict']}: {b.get('rule', '')}".strip(),
                              numbers=nums, evidence=ev)
    line = {current.get("id"), current.get("parent_model_id")} - {None} if current else set()
    if cand.get("kind") == "fine_tuned" and (not line or cand.get("parent_model_id") in line):
        return DecisionRecord(kind="deploy", use_case=use_case, model_id=cand["id"], rule="benefit.fine_tune_canary",
                              summary=f"{cand['id']} is a non-inferior fine-tune: canary, promoted only on a "
                                      "significant online feedback gain", numbers=nums, evidence=ev)
    return DecisionRecord(kind="deploy", taken=False, use_case=use_case, model_id=cand["id"], rule="benefit.none",
                          summary=f"{cand['id']} passed (non-inferior) but shows no benefit: kept the current model"
                                  + (f" ({b.get('rule')})" if b.get("rule") else ""), numbers=nums, evidence=ev)


class _Turn:
    """What one planning turn knows: the calls and results so far, notes, and the decisions it records."""

    def __init__(self, state: AgentState, tools: dict[str, ToolSpec]) -> None:
        self.state = state
        self.tools = tools
        self.obs: dict[str, Any] = state.get("observation") or {}
        self.called = _called(state)
        self.done = {(c["name"], c["args"].get("use_case"), c["args"].get("model_id")) for c in self.called}
        self.results = results(state)
        self.notes: list[str] = []
        self.decisions: list[dict[str, Any]] = []
        # pending proposals by what they would do (not their reason text: one open proposal per switch)
        self._pending = {intent_key(a["action"], a["arguments"]) for a in self.obs.get("pending_approvals", [])}

    def has(self, name: str) -> bool:
        if name in self.tools:
            return True
        if f"tool {name} missing" not in self.notes:
            self.notes.append(f"tool {name} missing")
        return False

    def once(self, name: str, uc: str | None, model: str | None = None) -> bool:
        return (name, uc, model) not in self.done

    def ever(self, name: str) -> bool:
        """Whether ``name`` was called at all this turn."""
        return any(c["name"] == name for c in self.called)

    def pending(self, name: str, args: dict[str, Any]) -> bool:
        return intent_key(name, args) in self._pending

    def output(self, name: str, use_case: str) -> BaseModel | None:
        """The latest result of ``name`` for ``use_case`` this turn, read through the tool's output model
        (None when it failed, or has no payload of that shape)."""
        spec = self.tools.get(name)
        for c, m in reversed(self.results):
            if c["name"] != name or c["args"].get("use_case") != use_case:
                continue
            if spec is None or m.status == "error" or not isinstance(m.artifact, dict):
                return None
            try:
                return spec.output_model.model_validate(m.artifact)
            except ValidationError:
                self.notes.append(f"{use_case}: the {name} result is not a {spec.output_model.__name__}")
                return None
        return None

    def extra(self, uc: dict[str, Any], section: str, tool: str) -> dict[str, Any]:
        """The use case's ``config["agent"][section]`` arguments that ``tool`` takes (others are dropped)."""
        fields = self.tools[tool].input_model.model_fields
        return {k: v for k, v in dict((uc.get("agent_config") or {}).get(section) or {}).items() if k in fields}

    def decide(self, record: DecisionRecord) -> None:
        """Record a decision with the message this turn returns (intake records are journaled by observe)."""
        self.decisions.append(record.model_dump(mode="json"))

    def msg(self, calls: list[dict[str, Any]], why: str) -> AIMessage:
        extra = {"decisions": self.decisions} if self.decisions else {}
        return AIMessage(content=why, tool_calls=calls, additional_kwargs=extra, id=f"pb_{uuid.uuid4().hex[:12]}")

    def finish(self) -> AIMessage:
        summary = "Playbook: nothing more to do this cycle."
        if self.notes:
            summary += " Notes: " + "; ".join(self.notes) + "."
        return self.msg([], summary)


class PlaybookPlanner:
    """The built-in deterministic playbook (see the module docstring for its rules).

    ``plan`` runs three stages, first proposal wins: :meth:`_guard_first` (rule 0), :meth:`_react`
    (rules 1-2b: what is wrong or in flight, per use case), :meth:`_improve` (rules 3-7: look for a
    better or cheaper model, per use case without a rollout)."""

    name = "playbook"

    def tool_names(self, available: Iterable[str]) -> list[str]:
        avail = set(available)
        return [t for t in PLAYBOOK_TOOLS if t in avail]

    def plan(self, state: AgentState, tools: dict[str, ToolSpec]) -> AIMessage:
        t = _Turn(state, tools)
        for stage in (self._guard_first, self._react, self._improve):
            msg = stage(t)
            if msg is not None:
                return msg
        return t.finish()

    # ------------------------------------------------------------------ stages
    def _guard_first(self, t: _Turn) -> AIMessage | None:
        """0. guardrails first: records violations and acts on them (warn, pause, roll back)."""
        if "guard_check" in t.tools and not t.ever("guard_check"):
            return t.msg([call("guard_check", args_of(use_case=t.state.get("use_case")))],
                         "check guardrails on recent traffic")
        return None

    def _react(self, t: _Turn) -> AIMessage | None:
        """1-2b per use case: severe violations, an SLO switch, the active rollout, gains to measure."""
        for uc in t.obs.get("use_cases", []):
            msg = self._violations(t, uc) or self._switch(t, uc) or self._advance(t, uc) or self._measure(t, uc)
            if msg is not None:
                return msg
        return None

    def _improve(self, t: _Turn) -> AIMessage | None:
        """3-7 per use case without a rollout (one change at a time): scan, evaluate, fine-tune, deploy."""
        for uc in t.obs.get("use_cases", []):
            if uc.get("rollouts") or []:
                continue
            msg = (self._scan(t) or self._evaluate(t, uc, (t.state.get("intake") or {}).get(uc["name"]))
                   or self._fine_tune(t, uc) or self._deploy(t, uc))
            if msg is not None:
                return msg
        return None

    # ------------------------------------------------------------------ rules
    def _advance(self, t: _Turn, uc: dict[str, Any]) -> AIMessage | None:
        """2. an active rollout: rollout_advance analyses the step and advances, rolls back or waits."""
        active = uc.get("rollouts") or []
        if not active:
            return None
        name, ro = uc["name"], active[0]
        if ro["state"] == "paused":
            t.notes.append(f"{name}: rollout {ro['id']} is paused (needs a person: rollout advance --resume)")
        elif t.has("rollout_advance") and t.once("rollout_advance", name):
            args = args_of(use_case=name)
            if not t.pending("rollout_advance", args):
                return t.msg([call("rollout_advance", args)],
                             f"{name}: analyse rollout {ro['id']} ({ro['strategy']}, step {ro['step_index']})")
        return None

    def _measure(self, t: _Turn, uc: dict[str, Any]) -> AIMessage | None:
        """2b. promotions whose realised gain is not measured for good: measure (a contradiction is raised)."""
        if uc.get("gains_due") and "measure_gains" in t.tools and t.once("measure_gains", uc["name"]):
            return t.msg([call("measure_gains", args_of(use_case=uc["name"]))],
                         f"{uc['name']}: measure the realised gain of rollout(s) {uc['gains_due']}")
        return None

    def _scan(self, t: _Turn) -> AIMessage | None:
        """3. the catalog is stale: scan (once per run)."""
        if t.obs.get("catalog", {}).get("stale") and t.has("scan") and not t.ever("scan"):
            return t.msg([call("scan", args_of(use_case=t.state.get("use_case")))], "catalog is stale: scan")
        return None

    def _violations(self, t: _Turn, uc: dict[str, Any]) -> AIMessage | None:
        """1. unhandled violations of severity rollback/disable -> abort the rollout or roll back."""
        name = uc["name"]
        severe = [v for v in uc.get("violations", []) if not v["handled"] and v["severity"] in ("rollback", "disable")]
        if not severe:
            return None
        tool = "rollout_abort" if uc.get("rollouts") else "rollback"
        if t.has(tool) and t.once(tool, name):
            why = f"violation {severe[0]['policy']} ({severe[0]['severity']}) on {severe[0]['model_id']}"
            args = args_of(use_case=name, reason=why)
            if not t.pending(tool, args):
                t.decide(DecisionRecord(kind="rollback", use_case=name, model_id=severe[0]["model_id"],
                                        rule=f"guardrail.{severe[0]['policy']}", summary=why,
                                        numbers={"measured": severe[0].get("measured"),
                                                 "threshold": severe[0].get("threshold")},
                                        evidence=[f"violation #{severe[0].get('id')}"]))
                return t.msg([call(tool, args)], f"{name}: {why}")
        return None

    def _switch(self, t: _Turn, uc: dict[str, Any]) -> AIMessage | None:
        """1b. the live model breaks an absolute SLO (open ``slo_*`` violation): propose a switch to a
        healthy alternative (a fallback, else a candidate, that passed its evaluation against it)."""
        name, cur = uc["name"], uc.get("current_model")
        slo = [v for v in uc.get("violations", []) if str(v["policy"]).startswith("slo_") and not v["handled"]
               and v.get("model_id") == cur and v.get("open", True)]
        if not slo or not cur or uc.get("rollouts"):
            return None
        v = slo[0]
        models = {m["id"]: m for m in uc.get("models", [])}
        unhealthy = {x.get("model_id") for x in uc.get("violations", []) if not x["handled"] and x.get("open", True)}

        def healthy(mid: str) -> bool:
            m = models.get(mid)
            return m is not None and mid != cur and mid not in unhealthy and m["status"] not in ("rejected", "retired")

        def passing(mid: str) -> bool:
            test = models[mid].get("latest_test") or {}
            return bool(test.get("passed")) and test.get("baseline") == cur

        fallbacks = [f for f in uc.get("fallback") or [] if healthy(f)]
        alts = [f for f in fallbacks if passing(f)] + [m for m in sorted(models) if m not in fallbacks
                                                       and healthy(m) and passing(m)]
        evidence = [f"violation #{v.get('id')}: {v['policy']} measured {v.get('measured')} vs threshold "
                    f"{v.get('threshold')} on {cur}"]
        nums = {"measured": v.get("measured"), "threshold": v.get("threshold")}
        turned_down = [a for a in uc.get("declined_approvals") or [] if a.get("action") == "deploy"
                       and a.get("model_id") in alts and str(a.get("at") or "") >= str(v.get("at") or "")]
        if self._cooling_down(t, uc, alts, evidence, nums):
            return None
        if turned_down:
            a = turned_down[0]
            t.decide(DecisionRecord(kind="switch", taken=False, use_case=name, model_id=a["model_id"],
                                    rule="slo.switch_turned_down",
                                    summary=f"a person {a['status']} the switch to {a['model_id']} (approval "
                                            f"#{a['id']}) for this violation: warn only", numbers=nums,
                                    evidence=[*evidence, f"approval #{a['id']} {a['status']}"]))
            return None
        if alts:
            alt = alts[0]
            test = models[alt].get("latest_test") or {}
            strategy = str((uc.get("agent_config") or {}).get("switch_strategy") or "full")
            why = (f"live model {cur} breaks {v['policy']} ({v.get('measured')} vs {v.get('threshold')}, "
                   f"violation #{v.get('id')}); switch to {alt} "
                   f"({'fallback' if alt in fallbacks else 'candidate'}, passed test #{test.get('id')})")
            args = args_of(use_case=name, model_id=alt, strategy=strategy, reason=why,
                           violations=sorted(int(x["id"]) for x in slo if x.get("id") is not None) or None)
            if t.has("deploy") and t.once("deploy", name, alt) and not t.pending("deploy", args):
                t.decide(DecisionRecord(kind="switch", use_case=name, model_id=alt, rule="slo.switch", summary=why,
                                        numbers=nums, evidence=[*evidence, f"test #{test.get('id')} passed vs {cur}"]))
                return t.msg([call("deploy", args)], f"{name}: {why}")
            t.notes.append(f"{name}: switch to {alt} proposed; waits for approval")
            return None
        untested = [f for f in fallbacks if not (models[f].get("latest_test") or {}).get("baseline") == cur]
        if untested and t.has("evaluate") and t.once("evaluate", name, untested[0]):
            why = f"live model {cur} breaks {v['policy']}: evaluate fallback {untested[0]} before switching to it"
            t.decide(DecisionRecord(kind="evaluate", use_case=name, model_id=untested[0], rule="slo.evaluate_fallback",
                                    summary=why, numbers=nums, evidence=evidence))
            return t.msg([call("evaluate", args_of(use_case=name, model_id=untested[0]))],
                         f"{name}: {why}")
        t.decide(DecisionRecord(kind="switch", taken=False, use_case=name, model_id=cur, rule="slo.no_alternative",
                                summary=f"live model {cur} breaks {v['policy']} but no healthy alternative passed an "
                                        "evaluation against it: warn only", numbers=nums, evidence=evidence))
        return None

    @staticmethod
    def _cooling_down(t: _Turn, uc: dict[str, Any], alts: list[str], evidence: list[str],
                      nums: dict[str, Any]) -> bool:
        """A switch withdrawn (its cause cleared) within the cool-down is not proposed again: a model that
        fails in bursts does not open and withdraw proposals in a loop.  Records the declined switch."""
        minutes = float((uc.get("agent_config") or {}).get("switch_cooldown_minutes") or SWITCH_COOLDOWN_MINUTES)
        now = dt.datetime.fromisoformat(str(t.obs.get("at") or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
                                            .isoformat()))
        recent = [a for a in uc.get("declined_approvals") or [] if a.get("status") == "withdrawn"
                  and a.get("action") == "deploy" and a.get("model_id") in alts
                  and now - dt.datetime.fromisoformat(str(a["at"])) < dt.timedelta(minutes=minutes)]
        if not recent:
            return False
        a = recent[0]
        t.decide(DecisionRecord(kind="switch", taken=False, use_case=uc["name"], model_id=a["model_id"],
                                rule="slo.switch_cooldown",
                                summary=f"the switch to {a['model_id']} was withdrawn at {a['at']} (its cause "
                                        f"cleared); not proposed again within the {minutes:g}-minute cool-down: "
                                        "warn only", numbers=nums,
                                evidence=[*evidence, f"approval #{a['id']} withdrawn"]))
        return True

    def _evaluate(self, t: _Turn, uc: dict[str, Any], intake: dict[str, Any] | None) -> AIMessage | None:
        """5. evaluate the candidates the intake planned (within the evaluation budget), in its order."""
        name = uc["name"]
        if not uc.get("current_model") or intake is None:
            return self._evaluate_linked(t, uc)
        if not t.has("evaluate"):
            return None
        extra = t.extra(uc, "evaluate", "evaluate")
        deadline = (intake.get("budget") or {}).get("deadline_at")
        for c in intake.get("evaluate", []):
            if t.once("evaluate", name, c["model_id"]):
                args = {**args_of(use_case=name, model_id=c["model_id"]), **extra}
                if c["rule"] == "intake.inconclusive_retry":
                    args["samples"] = c["samples"]
                if deadline is not None:  # what is left of the cycle's evaluation minutes (intake.py)
                    left = float(deadline) - time.time()
                    if left < MIN_EVAL_SECONDS:
                        t.decide(DecisionRecord(
                            kind="skip", taken=False, use_case=name, model_id=c["model_id"],
                            rule="budget.minutes_per_cycle", numbers={"seconds_left": round(left, 1)},
                            summary=f"deferred: this cycle's evaluation minutes are used up ({left:.0f} s left)"))
                        continue
                    args["max_seconds"] = min(left, MAX_EVAL_SECONDS)
                return t.msg([call("evaluate", args)], f"{name}: evaluate {c['model_id']}: {c['why']}")
        return None

    def _evaluate_linked(self, t: _Turn, uc: dict[str, Any]) -> AIMessage | None:
        """Without an intake plan (chat turns, hand-made observations): rank, then the linked untested candidates."""
        name = uc["name"]
        candidates = [m for m in uc.get("models", []) if m["id"] != uc.get("current_model")
                      and m["status"] in ("discovered", "candidate", "evaluating")]
        if candidates and t.has("rank") and t.once("rank", name):
            return t.msg([call("rank", args_of(use_case=name))], f"{name}: rank candidates")
        order = {mid: i for i, mid in enumerate(_ranked_ids(t.output("rank", name)))}
        evaluated = [c for c in t.called if c["name"] == "evaluate" and c["args"].get("use_case") == name]
        if not (uc.get("current_model") and t.has("evaluate") and len(evaluated) < EVALS_PER_RUN):
            return None
        extra = t.extra(uc, "evaluate", "evaluate")
        configured = int(extra.get("samples") or 20)
        for m in sorted(candidates, key=lambda m: (order.get(m["id"], len(order)), m["id"])):
            test = m.get("latest_test")
            untested = test is None or test.get("baseline") != uc["current_model"]
            retry = (not untested and test is not None and test.get("verdict") == "inconclusive"
                     and int(test.get("samples") or 0) < min(2 * configured, MAX_EVAL_SAMPLES))
            if (untested or retry) and t.once("evaluate", name, m["id"]):
                args = {**args_of(use_case=name, model_id=m["id"]), **extra}
                why = f"{name}: evaluate untested candidate {m['id']}"
                if retry and test is not None:
                    args["samples"] = min(MAX_EVAL_SAMPLES, max(configured, int(test.get("samples") or 0)) * 2)
                    why = (f"{name}: {m['id']} was inconclusive on {test.get('samples')} samples: "
                           f"evaluate again on {args['samples']}")
                return t.msg([call("evaluate", args)], why)
        return None

    def _fine_tune(self, t: _Turn, uc: dict[str, Any]) -> AIMessage | None:
        """6. fine-tune on new high-feedback logs."""
        name = uc["name"]
        fb = (uc.get("new_feedback") or {}).get("high_feedback", 0)
        job = uc.get("last_fine_tune") or {}
        base = self._fine_tune_base(uc)
        cfg = uc.get("agent_config") or {}
        min_fb = int(cfg.get("fine_tune_min_feedback") or FINE_TUNE_MIN_FEEDBACK)
        models_by_id = {m["id"]: m for m in uc.get("models", [])}
        last_model = models_by_id.get(job.get("result_model_id") or "")
        in_flight = last_model is not None and last_model["status"] in ("candidate", "evaluating", "shadow", "canary")
        # cool-down: a run that just ended a rollout (promotion or rollback) does not fine-tune again
        ended_here = any(c["name"] in ("rollout_advance", "rollout_abort", "rollback") and c["args"].get("use_case") == name
                         for c in t.called)
        if ended_here and fb >= min_fb:
            t.notes.append(f"{name}: a rollout ended in this run; fine-tuning waits for new feedback")
        if not (fb >= min_fb and job.get("status") not in ("queued", "running") and base and not in_flight
                and not ended_here):
            return None
        if t.has("build_dataset") and t.once("build_dataset", name):
            args = {**args_of(use_case=name, min_feedback=HIGH_FEEDBACK), **t.extra(uc, "build_dataset", "build_dataset")}
            return t.msg([call("build_dataset", args)], f"{name}: {fb} new high-feedback logs: build a dataset")
        built = t.output("build_dataset", name)
        path = getattr(built, "path", None)
        if path and t.has("fine_tune") and t.once("fine_tune", name):
            args = {**args_of(use_case=name, base=base, dataset=path), **t.extra(uc, "fine_tune", "fine_tune")}
            return t.msg([call("fine_tune", args)], f"{name}: fine-tune {base} on the new dataset")
        return None

    def _deploy(self, t: _Turn, uc: dict[str, Any]) -> AIMessage | None:
        """7. a rollout for a candidate that passed against the live model and states a benefit."""
        name = uc["name"]
        current = next((m for m in uc.get("models", []) if m["id"] == uc.get("current_model")), None)
        for m in sorted(uc.get("models", []), key=lambda m: m["id"]):
            test = m.get("latest_test") or {}
            if m["id"] == uc.get("current_model") or not (test.get("passed") and test.get("baseline") == uc.get("current_model")):
                continue
            if m["status"] in ("rejected", "retired"):
                continue
            d = deploy_decision(m, current, name)
            if not d.taken:
                t.decide(d)
                continue
            if not (t.has("deploy") and t.once("deploy", name, m["id"])):
                continue
            strategy = str((uc.get("agent_config") or {}).get("rollout_strategy") or "shadow")
            if strategy == "shadow" and m.get("shadow_passed"):
                strategy = "canary"  # shadow done for this use case: canary next
            if d.rule == "benefit.fine_tune_canary" and strategy == "full":
                strategy = "canary"  # a fine-tune proves its gain online: never straight to 100%
            args = args_of(use_case=name, model_id=m["id"], strategy=strategy)
            if t.pending("deploy", args) or uc.get("pending_approvals"):
                t.notes.append(f"{name}: deploy of {m['id']} waits for approval")
                continue
            d.numbers["strategy"] = strategy
            t.decide(d)
            return t.msg([call("deploy", args)], f"{name}: {d.summary}: {strategy} rollout")
        return None

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


def _ranked_ids(ranking: BaseModel | None) -> list[str]:
    """Model ids in the order a ``rank`` result gives them: ranked first, then those it rejected."""
    ranked = getattr(ranking, "ranked", None) or []
    rejected = getattr(ranking, "rejected", None) or []
    return list(dict.fromkeys([r.model_id for r in ranked] + [r.model_id for r in rejected]))
