"""The LLM planner: any OpenAI-compatible chat model plans the tool calls.

Configured by ``STEWARD_AGENT_LLM=openai:MODEL`` with ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``.
Uses the ``openai`` client directly (``langchain-openai`` is not installed; the wire format is
the same) and turns the answer into an ``AIMessage``: well-formed calls become ``tool_calls``,
calls whose arguments are not a JSON object become ``invalid_tool_calls`` (the guard answers
them with an error the model sees).

Prompt layout: the system prompt holds only our own text (goals, policies, the data-block
rule).  The operator's goal or question is a user message.  The world observation and every
tool result reach the model inside ``<data>`` blocks marked untrusted, so text from catalogs or
logged traffic is never presented as instructions.  Whatever the model asks for still passes
the guard (policies, approvals) before anything runs.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable
from typing import Any

from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage, convert_to_openai_messages
from langchain_core.output_parsers.openai_tools import parse_tool_call
from langchain_core.utils.function_calling import convert_to_openai_tool

from modelsteward.agent.state import DATA_NOTICE, AgentState, data_block
from modelsteward.errors import ConfigError, ProviderError
from modelsteward.tools.base import ToolSpec

__all__ = ["LLMPlanner", "SYSTEM_PROMPT", "openai_tools", "to_openai_messages", "parse_completion"]

SYSTEM_PROMPT = f"""You are Model Steward's meta-management agent. You keep the LLM behind each
use case on the best model: good enough quality, lower cost, acceptable latency, safely.

How you work: you call the tools you are given, one small step at a time, and read their results.
Typical cycle: scan catalogs when they are stale, rank candidates, evaluate top-ranked untested
candidates against the current model, fine-tune an open model when enough new high-feedback
logs exist, start a rollout (shadow, then canary) for a candidate that passed its evaluation and
brings a benefit (its evaluation's metrics.benefit.verdict is "cheaper" or "better"; a candidate
with "none" only to show a feedback gain in its canary), advance or abort running rollouts according
to their analysis, and act on guardrail violations (abort the rollout or roll back). A rollout that
ends "no gain, kept the current model" is a good outcome: do not redeploy that candidate.

Policies you must respect (they are also enforced in code; a denied call comes back as an error):
- never change live traffic without a passing evaluation of the candidate against the current model;
- roll out gradually: shadow, then canary steps; never jump straight to 100% traffic;
- risky steps (promotion to full traffic, cost increases, fine-tuning spend) need a human approval,
  which the system requests for you; do not try to work around a denial or a rejection;
- stay within each use case's budget, latency SLO and quality floor.

{DATA_NOTICE}
When you have nothing more to do, answer with a short plain-text summary and no tool call."""

KEEP_FULL_RESULTS = 6  # the latest tool results go to the model whole (up to the data-block limit)
OLD_RESULT_CHARS = 1500

CHAT_ADDENDUM = """You are talking with the operator in the console. Answer their question using the
read-only tools (query_logs runs read-only SQL over the view `logs`); propose changes as tool calls,
which the system checks against policy and, where required, sends for human approval."""


def openai_tools(tools: dict[str, ToolSpec]) -> list[dict[str, Any]]:
    """The tools as OpenAI function definitions with their pydantic JSON schemas."""
    out = []
    for spec in sorted(tools.values(), key=lambda t: t.name):
        schema = spec.json_schema()
        schema.pop("title", None)
        desc = spec.description.split("\n\n")[0][:1000]
        if spec.mutating:
            desc += " (changes state: checked by policy, may need human approval)"
        out.append(convert_to_openai_tool({"name": spec.name, "description": desc, "parameters": schema}))
    return out


def _last_human(state: AgentState) -> int | None:
    found = None
    for i, m in enumerate(state.get("messages", [])):
        if isinstance(m, HumanMessage):
            found = i
    return found


def to_openai_messages(state: AgentState, *, chat: bool = False) -> list[dict[str, Any]]:
    """System prompt, then the conversation; the latest observation rides in a data block."""
    system = SYSTEM_PROMPT + ("\n\n" + CHAT_ADDENDUM if chat else "")
    out: list[dict[str, Any]] = [{"role": "system", "content": system}]
    msgs = list(state.get("messages", []))
    obs_at = _last_human(state)  # the latest observation rides with the latest request
    tool_idx = [i for i, m in enumerate(msgs) if isinstance(m, ToolMessage)]
    old_tools = set(tool_idx[:-KEEP_FULL_RESULTS])
    obs_text = "Current state of the system:\n" + data_block("observation", state.get("observation") or {}, limit=16000)
    if obs_at is None:
        out.append({"role": "user", "content": obs_text})
    for i, m in enumerate(msgs):
        if isinstance(m, SystemMessage):
            continue  # only our own system prompt is ever sent
        if isinstance(m, HumanMessage):
            content = str(m.content)
            if i == obs_at:
                scope = f" (use case: {state['use_case']})" if state.get("use_case") else ""
                content = f"{'Operator' if chat else 'Goal'}{scope}: {content}\n\n{obs_text}"
            out.append({"role": "user", "content": content})
        elif isinstance(m, AIMessage):
            out.append(_assistant_message(m))
        elif isinstance(m, ToolMessage):
            content = str(m.content)
            if i in old_tools and len(content) > OLD_RESULT_CHARS and m.status != "error":
                # older results shrink so a long run stays within the model's context
                content = data_block(f"tool:{m.name}", m.artifact if m.artifact is not None else content,
                                     limit=OLD_RESULT_CHARS) + "\n(older result, shortened)"
            out.append(convert_to_openai_messages(ToolMessage(content, tool_call_id=m.tool_call_id)))
    return out


def _assistant_message(m: AIMessage) -> dict[str, Any]:
    """An AIMessage in OpenAI format (langchain-core's converter); calls whose arguments were not a
    JSON object (``invalid_tool_calls``, dropped by the converter) go back too, so that the tool
    message answering each of them follows a call with its id."""
    entry: dict[str, Any] = convert_to_openai_messages(AIMessage(content=str(m.content or ""), tool_calls=m.tool_calls))
    invalid = [{"id": c["id"], "type": "function",
                "function": {"name": c.get("name") or "unknown", "arguments": str(c.get("args") or "")}}
               for c in m.invalid_tool_calls]
    if invalid:
        entry["tool_calls"] = [*entry.get("tool_calls", []), *invalid]
    if not entry.get("content"):
        entry["content"] = None
    return entry


def _uniq_id(raw: Any, seen: set[str]) -> str:
    cid = str(raw) if raw else f"call_{uuid.uuid4().hex[:12]}"
    while cid in seen:
        cid = f"{cid}_{uuid.uuid4().hex[:4]}"
    seen.add(cid)
    return cid


def parse_completion(body: dict[str, Any]) -> AIMessage:
    """An OpenAI chat-completion body -> AIMessage (malformed calls kept as invalid_tool_calls)."""
    choices = body.get("choices") if isinstance(body, dict) else None
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise ProviderError(f"The agent LLM returned no choices: {str(body)[:200]!r}.")
    msg = choices[0].get("message")
    if not isinstance(msg, dict):
        raise ProviderError(f"The agent LLM returned a choice without a message: {str(choices[0])[:200]!r}.")
    calls: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = []
    seen: set[str] = set()
    for raw in msg.get("tool_calls") or []:
        fn = (raw or {}).get("function") or {}
        name = fn.get("name") or ""
        cid = _uniq_id((raw or {}).get("id"), seen)
        text = fn.get("arguments")
        try:
            parsed = None if isinstance(text, dict) else parse_tool_call(
                {"function": {"name": name, "arguments": text or "{}"}}, return_id=False)
            args = text if isinstance(text, dict) else (parsed or {}).get("args")
            if not isinstance(args, dict):
                raise ValueError(f"arguments are a JSON {type(args).__name__}, not an object")
        except (OutputParserException, ValueError, TypeError) as exc:
            reason = exc.__cause__ if isinstance(exc, OutputParserException) and exc.__cause__ else exc
            invalid.append({"type": "invalid_tool_call", "id": cid, "name": name, "args": str(text),
                            "error": f"malformed JSON arguments: {reason}"})
            continue
        calls.append({"type": "tool_call", "id": cid, "name": name, "args": args})
    return AIMessage(content=msg.get("content") or "", tool_calls=calls, invalid_tool_calls=invalid,
                     id=f"llm_{uuid.uuid4().hex[:12]}")


class LLMPlanner:
    """Plans with an OpenAI-compatible chat model; endpoint errors raise ``ProviderError``."""

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 timeout: float = 120.0, chat: bool = False, exclude: Iterable[str] = ()) -> None:
        if not model:
            raise ConfigError("STEWARD_AGENT_LLM must be openai:MODEL (e.g. openai:gpt-4o-mini).")
        self.model = model
        self.name = f"openai:{model}"
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY") or "not-set"
        self.timeout = timeout
        self.chat = chat
        self.exclude = set(exclude)

    @classmethod
    def from_spec(cls, spec: str, **kw: Any) -> LLMPlanner:
        provider, sep, model = spec.partition(":")
        if provider != "openai" or not sep or not model:
            raise ConfigError(f"STEWARD_AGENT_LLM={spec!r} is not of the form openai:MODEL.")
        return cls(model, **kw)

    def tool_names(self, available: Iterable[str]) -> list[str]:
        return sorted(set(available) - self.exclude)

    def plan(self, state: AgentState, tools: dict[str, ToolSpec]) -> AIMessage:
        import openai

        client = openai.OpenAI(base_url=self.base_url, api_key=self.api_key, timeout=self.timeout, max_retries=1)
        kwargs: dict[str, Any] = {
            "model": self.model, "messages": to_openai_messages(state, chat=self.chat), "temperature": 0,
        }
        if tools:
            kwargs["tools"] = openai_tools(tools)
        where = self.base_url or "the default OpenAI endpoint"
        try:
            raw = client.chat.completions.with_raw_response.create(**kwargs)
            text = raw.http_response.text
        except openai.APIStatusError as exc:
            raise ProviderError(f"Agent LLM at {where} answered HTTP {exc.status_code}: {str(exc.message)[:300]}") from exc
        except openai.APIError as exc:  # connection errors, timeouts
            raise ProviderError(f"Agent LLM at {where} unreachable: {type(exc).__name__}: {exc}") from exc
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise ProviderError(f"Agent LLM at {where} returned non-JSON: {text[:200]!r}") from exc
        return parse_completion(body)
