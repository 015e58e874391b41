"""The operator console (``steward chat``): questions in, answers and guarded proposals out.

A session is one agent thread (one ``agent_runs`` row, trigger ``chat``); each operator line is a
turn through the same graph, so every proposed change passes the same guard.  The planner is the
LLM one when ``STEWARD_AGENT_LLM`` is set, else offline intent rules (``ChatIntentPlanner``).
When a turn stops at an approval, that thread stays parked for ``steward approvals approve`` to
resume, and the console continues on a fresh thread.

Identity: the console's tool calls run as the operator (``actor``, default ``cli:<OS user>``), so an
approval a chat proposal needs is requested by that operator, who then may not approve it
(no self-approval).  A resumed thread continues as ``agent:run-N``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from langchain_core.messages import HumanMessage

from modelsteward.agent.planners import Planner
from modelsteward.agent.runner import _drive, agent_lock, make_planner
from modelsteward.context import Steward
from modelsteward.errors import InvalidInput
from modelsteward.storage import runs
from modelsteward.storage.read import AgentRunOut

__all__ = ["ChatSession", "ChatReply", "CHAT_MAX_STEPS"]

CHAT_MAX_STEPS = 8


@dataclass
class ChatReply:
    answer: str
    status: str
    run_id: int
    approval_id: int | None = None
    error: str | None = None


class ChatSession:
    def __init__(self, steward: Steward, *, planner: Planner | None = None, use_case: str | None = None,
                 actor: str | None = None) -> None:
        from modelsteward.context import effective_user

        self.steward = steward
        self.actor = actor or f"cli:{effective_user()}"
        self.planner = planner or make_planner(steward.settings.agent_llm, chat=True)
        self.use_case = use_case
        self.run: AgentRunOut | None = None

    def _new_run(self, text: str) -> AgentRunOut:
        return runs.start_run(self.steward.sessions, trigger="chat", goal=text[:2000], use_case=self.use_case,
                              started_by=self.actor, thread_id=f"chat-{uuid.uuid4().hex}", planner=self.planner.name)

    def ask(self, text: str) -> ChatReply:
        text = text.strip()
        if not text:
            raise InvalidInput("Say something: a question, a SELECT over the logs, or an action.")
        with agent_lock(self.steward, wait=60.0):
            if self.run is None:
                self.run = self._new_run(text)
            state = {"messages": [HumanMessage(content=text)], "run_id": self.run.id, "goal": text,
                     "use_case": self.use_case, "mode": "chat", "step": 0, "max_steps": CHAT_MAX_STEPS,
                     "outcome": ""}
            res = _drive(self.steward, self.run, state, self.planner, self.actor)
        if res.status == "waiting_approval":
            self.run = None  # that thread waits for a person; later turns use a fresh one
            answer = (f"Proposed action needs approval #{res.approval_id}. Approve with "
                      f"`steward approvals approve {res.approval_id}` (or reject); the agent resumes then.")
            return ChatReply(answer, res.status, res.run_id, res.approval_id)
        if res.status == "failed":
            self.run = None
            return ChatReply(f"The agent failed: {res.error}", res.status, res.run_id, error=res.error)
        return ChatReply(res.answer or "(no answer)", res.status, res.run_id)
