"""Tool calling for the local provider: tools into the prompt, tool calls out of the output.

Decisions:
- The tokenizer's chat template renders the tools (``apply_chat_template(..., tools=...)``) when it
  knows about them (its source mentions ``tools``); assistant turns keep their ``tool_calls`` (the
  arguments as objects, as Hugging Face templates expect) and tool turns their ``tool_call_id``.
- A template without tool support gets the conversation as text: an assistant turn's tool calls
  become its text (``name(arguments)``, ``exchange.message_text``), tools are not offered, and the
  model answers in text.  A model that cannot call tools then simply fails the tools stratum of an
  evaluation; nothing pretends it called one.
- Tool calls are read out of the output in the two formats templates teach: ``<tool_call>{"name":
  ..., "arguments": {...}}</tool_call>`` blocks (Hermes, Qwen), or an output that is one JSON object
  with ``name`` and ``arguments`` / ``parameters`` (Llama 3.1).  Only functions the request offered
  count as calls; anything else stays text.
- ``response_format`` is not enforced (no constrained decoding): the answer is what the model wrote,
  and the structured scorer judges whether it is JSON valid against the schema.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from modelsteward.exchange import message_text

__all__ = ["template_supports_tools", "chat_messages", "parse_tool_calls", "offered_tools", "text_of"]

_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.S)


def template_supports_tools(tokenizer: Any) -> bool:
    template = getattr(tokenizer, "chat_template", None)
    return isinstance(template, str) and "tools" in template


def offered_tools(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The function tools a request body offers (none when ``tool_choice`` is ``none``)."""
    if body.get("tool_choice") == "none":
        return []
    return [dict(t) for t in body.get("tools") or () if isinstance(t, Mapping) and isinstance(t.get("function"), Mapping)]


def text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type", "text") == "text")
    return str(content)


def _call_for_template(call: Mapping[str, Any]) -> dict[str, Any]:
    fn = call.get("function") or {}
    args: Any = fn.get("arguments")
    if isinstance(args, str):
        try:
            args = orjson.loads(args)
        except orjson.JSONDecodeError:
            pass
    return {"id": call.get("id"), "type": "function", "function": {"name": fn.get("name"), "arguments": args}}


def chat_messages(messages: Sequence[Mapping[str, Any]], with_tools: bool) -> list[dict[str, Any]]:
    """Messages for ``apply_chat_template``: text content; tool calls kept (``with_tools``) or as text."""
    out: list[dict[str, Any]] = []
    for m in messages:
        msg: dict[str, Any] = {"role": str(m.get("role", "user")), "content": text_of(m.get("content"))}
        calls = m.get("tool_calls")
        if calls and with_tools:
            msg["tool_calls"] = [_call_for_template(c) for c in calls if isinstance(c, Mapping)]
        elif calls:
            msg["content"] = message_text(m)
        if with_tools and m.get("tool_call_id"):
            msg["tool_call_id"] = m["tool_call_id"]
        out.append(msg)
    return out


def _as_call(raw: str, names: set[str], index: int) -> dict[str, Any] | None:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict) or obj.get("name") not in names:
        return None
    args = obj.get("arguments", obj.get("parameters", {}))
    if not isinstance(args, str):
        args = orjson.dumps(args).decode()
    return {"id": f"call_{index}", "type": "function", "function": {"name": obj["name"], "arguments": args}}


def parse_tool_calls(text: str, names: set[str]) -> tuple[str | None, list[dict[str, Any]]]:
    """(the text left, the tool calls) read out of a model's output (see the module docstring)."""
    blocks = _BLOCK.findall(text)
    if blocks:
        calls = [c for i, b in enumerate(blocks) if (c := _as_call(b, names, i)) is not None]
        if calls:
            rest = _BLOCK.sub("", text).strip()
            return (rest or None), calls
        return text, []
    stripped = text.strip()
    if stripped.startswith("{") and (call := _as_call(stripped, names, 0)) is not None:
        return None, [call]
    return text, []
