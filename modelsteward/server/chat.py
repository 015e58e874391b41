"""Chat with the agent over HTTP (``POST /api/chat``) and from the console's chat panel.

Each conversation is a ``modelsteward.agent.chat.ChatSession`` (one agent thread, trigger
``chat``): every change it proposes passes the same guard and approvals as any tool call.
Decision: conversations are held in memory by the process (the last ``KEEP``), keyed by a
random session id and bound to the token that opened them; another token cannot continue one.
What they did is in ``agent_runs`` either way.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from modelsteward.context import Steward
from modelsteward.errors import NotFound
from modelsteward.server.api import ERROR_RESPONSES
from modelsteward.server.auth import Identity
from modelsteward.server.deps import OperatorDep, StewardDep
from modelsteward.tools.base import InputModel

__all__ = ["ChatIn", "ChatOut", "ChatHub", "router"]

KEEP = 100


class ChatIn(InputModel):
    message: str = Field(min_length=1, max_length=4000, description="A question, a SELECT over the logs, or an action.")
    session_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")] | None = Field(
        default=None, description="Continue this conversation (from an earlier answer); omit to start one.")
    use_case: str | None = Field(default=None, max_length=100, description="Scope a new conversation to a use case.")


class ChatOut(BaseModel):
    session_id: str
    answer: str
    status: str
    run_id: int
    approval_id: int | None = None
    error: str | None = None


class _Conversation:
    def __init__(self, owner: int, session: Any) -> None:
        self.owner = owner
        self.session = session
        self.lock = threading.Lock()


class ChatHub:
    """The live conversations of one app."""

    def __init__(self, steward: Steward) -> None:
        self.steward = steward
        self._convs: OrderedDict[str, _Conversation] = OrderedDict()
        self._lock = threading.Lock()

    def _conversation(self, ident: Identity, session_id: str | None, use_case: str | None) -> tuple[str, _Conversation]:
        with self._lock:
            if session_id is not None:
                conv = self._convs.get(session_id)
                if conv is None or conv.owner != ident.token_id:
                    raise NotFound(f"Unknown chat session {session_id!r}; omit session_id to start a new one.",
                                   kind="chat_session")
                self._convs.move_to_end(session_id)
                return session_id, conv
        from modelsteward.agent.chat import ChatSession

        if use_case is not None:
            self.steward.registry.get_use_case(use_case)  # NotFound with close matches
        conv = _Conversation(ident.token_id, ChatSession(self.steward, use_case=use_case, actor=ident.actor))
        sid = secrets.token_urlsafe(12)
        with self._lock:
            self._convs[sid] = conv
            while len(self._convs) > KEEP:
                self._convs.popitem(last=False)
        return sid, conv

    def ask(self, ident: Identity, inp: ChatIn) -> ChatOut:
        sid, conv = self._conversation(ident, inp.session_id, inp.use_case)
        with conv.lock:
            reply = conv.session.ask(inp.message)
        return ChatOut(session_id=sid, answer=reply.answer, status=reply.status, run_id=reply.run_id,
                       approval_id=reply.approval_id, error=reply.error)


def hub(request: Request, steward: Steward) -> ChatHub:
    app_state = request.app.state
    with _HUB_LOCK:
        if getattr(app_state, "chat", None) is None:
            app_state.chat = ChatHub(steward)
        return app_state.chat  # type: ignore[no-any-return]


_HUB_LOCK = threading.Lock()

router = APIRouter(prefix="/api", responses=ERROR_RESPONSES, tags=["agent"])


@router.post("/chat", response_model=ChatOut, summary="Send a message to the agent (role operator)")
def chat(request: Request, steward: StewardDep, ident: OperatorDep, body: ChatIn) -> ChatOut:
    return hub(request, steward).ask(ident, body)
