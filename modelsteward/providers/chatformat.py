"""How OpenAI chat messages with tools become a local model's prompt: one rendering for training and inference.

A tokenizer's chat template renders ``apply_chat_template(messages, tools=tools)`` when it knows
tools (``template_supports_tools``: a probe tool and a probe call both appear in its output).
Otherwise -- SmolLM2's template, for one, ignores ``tools`` and prints ``tool_calls`` nowhere --
``fallback_messages`` turns the conversation into plain turns every template can render, in the
Hermes / Qwen convention:

- the tools: a block appended to the system message (a system message is added when there is
  none)::

      # Tools

      You may call one or more functions to assist with the user query.

      You are provided with function signatures within <tools></tools> XML tags:
      <tools>
      {"type": "function", "function": {...}}      (one JSON object per line)
      </tools>

      For each function call, return a json object with function name and arguments within
      <tool_call></tool_call> XML tags:
      <tool_call>
      {"name": <function-name>, "arguments": <args-json-object>}
      </tool_call>

- an assistant turn's tool calls: its text, then one ``<tool_call>\\n{"name": ..., "arguments":
  {...}}\\n</tool_call>`` block per call (newline-separated);
- tool results: a ``user`` turn of ``<tool_response>\\n{content}\\n</tool_response>`` blocks
  (consecutive tool turns merged into one, so user/assistant turns still alternate).

``parse_tool_calls`` reads a generated answer back: the ``<tool_call>`` blocks become OpenAI tool
calls and the rest is the content.  The trainer (``training/data.py``) and the local provider
(``providers/local.py``) both go through ``chat_inputs``, so a fine-tune learns exactly the format
it is later prompted with.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["TOOLS_PREAMBLE", "template_supports_tools", "template_messages", "fallback_messages", "chat_inputs",
           "parse_tool_calls", "render_tool_call"]

TOOLS_PREAMBLE = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{tools}\n</tools>\n\n"
    "For each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{{"name": <function-name>, "arguments": <args-json-object>}}\n</tool_call>'
)
_PROBE_TOOL = "zq_probe_tool_7"
_PROBE_CALL = "zq_probe_call_9"
_CALL_RE = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.S)


def _arguments(raw: Any) -> Any:
    """Tool-call arguments as an object when they are JSON text of one (templates expect a dict)."""
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            return raw
        return value if isinstance(value, dict) else raw
    return raw


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping) and "text" in p)
    return str(content)


def template_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Messages as Hugging Face chat templates read them: text content, tool-call arguments as
    dicts, ``tool_call_id`` kept, training keys (``weight``) dropped."""
    out: list[dict[str, Any]] = []
    for m in messages:
        msg: dict[str, Any] = {"role": m.get("role"), "content": _text(m.get("content"))}
        if m.get("tool_calls"):
            msg["tool_calls"] = [{"id": c.get("id"), "type": "function", "function": {
                "name": (c.get("function") or {}).get("name"),
                "arguments": _arguments((c.get("function") or {}).get("arguments"))}} for c in m["tool_calls"]]
        for key in ("tool_call_id", "name"):
            if m.get(key):
                msg[key] = m[key]
        out.append(msg)
    return out


def render_tool_call(call: Mapping[str, Any]) -> str:
    fn = call.get("function") or {}
    body = json.dumps({"name": fn.get("name"), "arguments": _arguments(fn.get("arguments"))}, ensure_ascii=False)
    return f"<tool_call>\n{body}\n</tool_call>"


def fallback_messages(messages: Sequence[Mapping[str, Any]], tools: Sequence[Any] | None,
                      keep: Sequence[bool] | None = None) -> tuple[list[dict[str, str]], list[bool]]:
    """The fallback rendering (module docstring) as plain ``role``/``content`` turns.

    ``keep`` marks messages whose flag must follow them (training targets); returns the turns and
    the flags mapped onto them (a merged tool-result turn is never a target)."""
    flags = list(keep) if keep is not None else [False] * len(messages)
    out: list[dict[str, str]] = []
    marks: list[bool] = []
    for m, flag in zip(messages, flags, strict=True):
        role, text = str(m.get("role")), _text(m.get("content"))
        if role == "tool":
            block = f"<tool_response>\n{text}\n</tool_response>"
            if out and out[-1]["role"] == "user" and out[-1]["content"].startswith("<tool_response>"):
                out[-1]["content"] += "\n" + block
                continue
            role, text = "user", block
        elif role == "assistant" and m.get("tool_calls"):
            text = "\n".join(([text] if text else []) + [render_tool_call(c) for c in m["tool_calls"]])
        elif role == "developer":
            role = "system"
        out.append({"role": role, "content": text})
        marks.append(bool(flag))
    if tools:
        block = TOOLS_PREAMBLE.format(tools="\n".join(json.dumps(t, ensure_ascii=False) for t in tools))
        if out and out[0]["role"] == "system":
            out[0]["content"] = f"{out[0]['content']}\n\n{block}" if out[0]["content"] else block
        else:
            out.insert(0, {"role": "system", "content": block})
            marks.insert(0, False)
    return out, marks


def template_supports_tools(tok: Any) -> bool:
    """Whether ``tok``'s chat template renders tools and tool calls (probed once per template, cached on ``tok``)."""
    template = getattr(tok, "chat_template", None)
    cached = getattr(tok, "_steward_tools_ok", None)
    if isinstance(cached, tuple) and cached[0] == template:
        return bool(cached[1])
    ok = False
    if template:
        tool = {"type": "function", "function": {"name": _PROBE_TOOL, "description": "probe",
                                                 "parameters": {"type": "object", "properties": {}}}}
        convo = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c0", "type": "function", "function": {"name": _PROBE_CALL, "arguments": {}}}]},
            {"role": "tool", "tool_call_id": "c0", "content": "done"}]
        try:
            text = tok.apply_chat_template(convo, tools=[tool], tokenize=False)
            ok = isinstance(text, str) and _PROBE_TOOL in text and _PROBE_CALL in text
        except Exception:  # noqa: BLE001 - a template that raises on tools has no tool support
            ok = False
    try:
        tok._steward_tools_ok = (template, ok)
    except AttributeError:
        pass
    return ok


def chat_inputs(tok: Any, messages: Sequence[Mapping[str, Any]], tools: Sequence[Any] | None,
                keep: Sequence[bool] | None = None) -> tuple[list[dict[str, Any]], list[Any] | None, list[bool]]:
    """(messages, tools, flags) to hand to ``tok.apply_chat_template``: the template's own tool
    rendering when it has one, else the fallback (tools then None).  Without tools and tool turns
    the messages are plain either way."""
    flags = list(keep) if keep is not None else [False] * len(messages)
    uses_tools = bool(tools) or any(m.get("tool_calls") or m.get("role") == "tool" for m in messages)
    if not uses_tools or template_supports_tools(tok):
        return template_messages(messages), (list(tools) if tools else None), flags
    msgs, marks = fallback_messages(messages, tools, flags)
    return list(msgs), None, marks


def parse_tool_calls(text: str) -> tuple[str | None, list[dict[str, Any]]]:
    """A generated answer in the fallback format -> (content, OpenAI tool calls).

    Each ``<tool_call>{"name", "arguments"}</tool_call>`` block becomes a call (``call_<i>`` ids,
    arguments as JSON text); a block that is not such JSON stays in the content.  Content is None
    when nothing but calls was generated."""
    calls: list[dict[str, Any]] = []
    kept: list[str] = []
    pos = 0
    for match in _CALL_RE.finditer(text):
        try:
            obj = json.loads(match.group(1))
        except json.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
            continue
        kept.append(text[pos:match.start()])
        pos = match.end()
        args = obj.get("arguments", {})
        calls.append({"id": f"call_{len(calls)}", "type": "function", "function": {
            "name": obj["name"], "arguments": args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)}})
    kept.append(text[pos:])
    content = "".join(kept).strip()
    return (content or None) if calls else text, calls
