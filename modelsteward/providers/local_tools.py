"""Tool calling for the local provider: which tools a request offers, and tool calls out of the output.

Decisions:
- The prompt is rendered by ``providers/chatformat.py``, the one rendering the trainer uses too: the
  tokenizer's chat template with ``tools=`` when it supports tools, else the documented fallback
  (tools in the system turn, ``<tool_call>`` blocks), so a fine-tune is prompted the way it learned.
  A model that still answers in text simply fails the tools stratum of an evaluation.
- Tool calls are read out of the output in the two formats templates teach: ``<tool_call>{"name":
  ..., "arguments": {...}}</tool_call>`` blocks (Hermes, Qwen), or an output that is one JSON object
  with ``name`` and ``arguments`` / ``parameters`` (Llama 3.1).  Only functions the request offered
  count as calls; anything else stays text.
- ``response_format`` is not enforced (no constrained decoding): the answer is what the model wrote,
  and the structured scorer judges whether it is JSON valid against the schema.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson


__all__ = ["offered_tools", "parse_tool_calls"]

_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.S)


def offered_tools(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The function tools a request body offers (none when ``tool_choice`` is ``none``)."""
    if body.get("tool_choice") == "none":
        return []
    return [dict(t) for t in body.get("tools") or () if isinstance(t, Mapping) and isinstance(t.get("function"), Mapping)]


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
