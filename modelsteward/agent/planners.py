"""Planners: given the agent state, propose the next tool calls as one ``AIMessage``.

Both planners emit the same messages (``AIMessage.tool_calls``; an ``AIMessage`` without calls
ends the cycle with its text as the answer), so the graph does not care which one plans:

- :class:`~modelsteward.agent.playbook.PlaybookPlanner` (``agent/playbook.py``): the deterministic
  playbook, no LLM, structured fields only;
- :class:`ChatIntentPlanner` (here): offline chat, the operator's line mapped to tool calls;
- ``LLMPlanner`` (``agent/llm.py``): free-form, with an OpenAI-compatible model.

Every call uses the tools' own field names (``use_case``, ``model_id``, ...): there is one
vocabulary, and no table of synonyms to translate it.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from typing import Any, Protocol

from langchain_core.messages import AIMessage, HumanMessage

from modelsteward.agent.playbook import (
    FINE_TUNE_MIN_FEEDBACK,
    MAX_EVAL_SAMPLES,
    PLAYBOOK_TOOLS,
    PlaybookPlanner,
    args_of,
    benefit_of,
    call,
    deploy_decision,
    results,
    turn_messages,
)
from modelsteward.agent.state import AgentState
from modelsteward.tools.base import ToolSpec

__all__ = ["Planner", "PlaybookPlanner", "ChatIntentPlanner", "benefit_of", "deploy_decision",
           "PLAYBOOK_TOOLS", "FINE_TUNE_MIN_FEEDBACK", "MAX_EVAL_SAMPLES"]


class Planner(Protocol):
    name: str

    def tool_names(self, available: Iterable[str]) -> list[str]:
        """The tools this planner may call (validated when the graph is compiled)."""
        ...

    def plan(self, state: AgentState, tools: dict[str, ToolSpec]) -> AIMessage: ...


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
        turn = turn_messages(state)
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
        for c, msg in results(state):
            body = msg.artifact if isinstance(msg.artifact, (dict, list)) else str(msg.content)
            status = "error" if msg.status == "error" else "ok"
            text = json.dumps(body, indent=2, default=str) if not isinstance(body, str) else body
            if len(text) > 4000:
                text = text[:4000] + "\n... (truncated)"
            parts.append(f"**{c['name']}** ({status}):\n```\n{text}\n```")
        return "\n\n".join(parts) or "Nothing to report."

    @staticmethod
    def _intent(text: str, tools: dict[str, ToolSpec]) -> list[dict[str, Any]]:
        low = text.lower().strip()

        def mk(name: str, **kw: Any) -> list[dict[str, Any]]:
            if name not in tools:
                return [call(name, kw)]  # the guard answers "unknown tool" with what exists
            return [call(name, args_of(**kw))]

        m = re.match(r"(?is)^sql:\s*(.+)$", text.strip()) or re.match(r"(?is)^((?:select|with)\b.*)$", text.strip())
        if m:
            return mk("query_logs", sql=m.group(1).strip().rstrip(";"))
        m = re.match(r"(?i)^(?:deploy|roll ?out)\s+(\S+)\s+(?:to|on|for)\s+(\S+)(?:\s+(?:as\s+)?(shadow|canary|full))?",
                     text.strip())
        if m:
            return mk("deploy", model_id=m.group(1), use_case=m.group(2), strategy=(m.group(3) or "shadow").lower())
        m = re.match(r"(?i)^(?:evaluate|eval|test)\s+(\S+)\s+(?:on|for|against)\s+(\S+)", text.strip())
        if m:
            return mk("evaluate", model_id=m.group(1), use_case=m.group(2))
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
