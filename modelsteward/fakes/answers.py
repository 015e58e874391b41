"""Deterministic answers to tool-calling and structured-output requests, for the fake upstreams.

``answer(body)`` is what a fake model says to an OpenAI chat request, as an ``exchange.Answer``;
``completion(body)`` wraps it in a ``chat.completion`` and ``chunks(body)`` in the
``chat.completion.chunk`` s of a stream (tool-call arguments sent in fragments, as OpenAI does).
Used by ``fakes.upstream`` (``InstantUpstream``) for every request that carries ``tools``,
``functions`` or a ``response_format``; other requests keep that upstream's fixed answer.

The right caller (any model name):

- ``tools`` offered and ``tool_choice`` not ``"none"``, last message not a tool result: it calls
  the function named by ``tool_choice``; otherwise every offered function whose name appears in
  the last user message (several: parallel calls, unless ``parallel_tool_calls`` is false), else
  the first offered function.  ``finish_reason`` is ``"tool_calls"``.
- the last message is a tool result: a text answer quoting it (``"Tool results: ..."``), as a
  model does once it has what it asked for.
- ``response_format`` ``json_schema``: the content is a JSON object with the schema's required
  properties (all of them when none is listed); ``json_object``: ``{"answer": <prompt>}``.
- Values follow the property's schema: ``enum`` -> its first value, ``integer`` / ``number`` ->
  the first number in the prompt (else 1), ``boolean`` -> true, ``array`` -> one item, ``object``
  -> recursively; a ``string`` property ``p`` is the ``p=value`` (or ``p: value``, ``p="two words"``)
  written in the prompt, else the prompt's text (60 characters at most).  Ids are ``call_<n>_<function name>``.

The wrong caller: a model name containing ``wrong`` (e.g. registered as ``custom:wrong-tools``;
or ``InstantUpstream(wrong=True)`` for every model) calls a different function (the next offered
one; ``not_a_tool`` when only one is offered) with arguments that break its schema (no required
property; ``{"unexpected": 1}``), and for ``json_schema`` answers a JSON object without the
required properties (``{"unexpected": 1}``), so scorers and gates have a candidate that fails
them while its text looks alike.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from modelsteward.exchange import Answer, message_text, request_part, response_schema

__all__ = ["wants_dynamic", "is_wrong", "answer", "completion", "chunks", "value_for", "ARG_FRAGMENT"]

ARG_FRAGMENT = 7  # characters of tool-call arguments per stream delta
USAGE = {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def wants_dynamic(raw: bytes) -> bool:
    """Whether a raw request body may need a built answer (cheap byte test; parse to be sure)."""
    return b'"tools"' in raw or b'"response_format"' in raw or b'"functions"' in raw


def is_wrong(body: Mapping[str, Any]) -> bool:
    return "wrong" in str(body.get("model") or "")


def _prompt(body: Mapping[str, Any]) -> str:
    for m in reversed(body.get("messages") or ()):
        if isinstance(m, Mapping) and m.get("role") == "user":
            return message_text(m)
    return ""


def value_for(schema: Any, name: str, prompt: str) -> Any:
    """A value satisfying a (simple) JSON schema, built from the prompt."""
    if not isinstance(schema, Mapping):
        return prompt[:60]
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind is None and schema.get("anyOf"):
        return value_for(schema["anyOf"][0], name, prompt)
    if kind in ("integer", "number"):
        found = _NUMBER.search(prompt)
        n = float(found.group()) if found else 1.0
        return int(n) if kind == "integer" else n
    if kind == "boolean":
        return True
    if kind == "array":
        return [value_for(schema.get("items") or {"type": "string"}, name, prompt)]
    if kind == "object" or "properties" in schema:
        return object_for(schema, prompt)
    if kind == "null":
        return None
    said = re.search(rf"\b{re.escape(name)}\s*[=:]\s*(?:\"([^\"]*)\"|([^\s,;]+))", prompt) if name else None
    return (said.group(1) if said.group(1) is not None else said.group(2)) if said else prompt[:60]


def object_for(schema: Mapping[str, Any], prompt: str) -> dict[str, Any]:
    props = schema.get("properties") or {}
    wanted = schema.get("required") or list(props)
    return {p: value_for(props.get(p), p, prompt) for p in wanted}


def _functions(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    tools = (request_part(body) or {}).get("tools") or []
    return [t["function"] for t in tools if isinstance(t, Mapping) and isinstance(t.get("function"), Mapping)
            and t["function"].get("name")]


def _chosen(body: Mapping[str, Any], fns: list[dict[str, Any]], prompt: str) -> list[dict[str, Any]]:
    choice = (request_part(body) or {}).get("tool_choice")
    if isinstance(choice, Mapping):
        name = (choice.get("function") or {}).get("name")
        return [f for f in fns if f["name"] == name][:1] or fns[:1]
    named = [f for f in fns if f["name"] in prompt]
    if body.get("parallel_tool_calls") is False:
        named = named[:1]
    return named or fns[:1]


def _calls(body: Mapping[str, Any], fns: list[dict[str, Any]], prompt: str, wrong: bool) -> list[dict[str, Any]]:
    out = []
    for i, fn in enumerate(_chosen(body, fns, prompt)):
        if wrong:
            others = [f["name"] for f in fns if f["name"] != fn["name"]]
            name, args = (others[0] if others else "not_a_tool"), {"unexpected": 1}
        else:
            name, args = fn["name"], object_for(fn.get("parameters") or {}, prompt)
        out.append({"id": f"call_{i}_{name}"[:40], "type": "function",
                    "function": {"name": name, "arguments": orjson.dumps(args).decode()}})
    return out


def answer(body: Mapping[str, Any], wrong: bool = False) -> Answer:
    """What the fake model answers to ``body`` (see the module docstring); ``wrong``: answer as the
    wrong caller whatever the model name."""
    wrong = wrong or is_wrong(body)
    msgs = [m for m in body.get("messages") or () if isinstance(m, Mapping)]
    prompt = _prompt(body)
    if msgs and msgs[-1].get("role") in ("tool", "function"):
        done = "; ".join(message_text(m) for m in msgs if m.get("role") in ("tool", "function"))
        return {"content": f"Tool results: {done}", "finish_reason": "stop"}
    schema = response_schema(request_part(body))
    if schema is not None:
        obj = {"unexpected": 1} if wrong else (object_for(schema, prompt) if schema else {"answer": prompt})
        return {"content": orjson.dumps(obj).decode(), "finish_reason": "stop"}
    fns = _functions(body)
    if fns and (request_part(body) or {}).get("tool_choice") != "none":
        calls: Any = _calls(body, fns, prompt, wrong)
        return {"content": None, "tool_calls": calls, "finish_reason": "tool_calls"}
    return {"content": f"You said: {prompt}", "finish_reason": "stop"}


def completion(body: Mapping[str, Any], model: str = "instant", wrong: bool = False) -> dict[str, Any]:
    """``answer(body)`` as a ``chat.completion``."""
    ans = answer(body, wrong)
    msg: dict[str, Any] = {"role": "assistant", "content": ans.get("content")}
    if ans.get("tool_calls"):
        msg["tool_calls"] = ans["tool_calls"]
    return {"id": "chatcmpl-instant", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": msg, "finish_reason": ans.get("finish_reason"), "logprobs": None}],
            "usage": dict(USAGE)}


def chunks(body: Mapping[str, Any], model: str = "instant", wrong: bool = False) -> Iterator[dict[str, Any]]:
    """``answer(body)`` as stream chunks: role, content or tool-call deltas (each call's id and name
    first, then its arguments ``ARG_FRAGMENT`` characters at a time), finish reason, usage."""
    ans = answer(body, wrong)
    head = {"id": "chatcmpl-instant", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    yield chunk({"role": "assistant", "content": "" if ans.get("content") is not None else None})
    text = ans.get("content") or ""
    for at in range(0, len(text), 16):
        yield chunk({"content": text[at:at + 16]})
    for i, call in enumerate(ans.get("tool_calls") or ()):
        fn = call["function"]
        yield chunk({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                     "function": {"name": fn["name"], "arguments": ""}}]})
        args = fn["arguments"]
        for at in range(0, len(args), ARG_FRAGMENT):
            yield chunk({"tool_calls": [{"index": i, "function": {"arguments": args[at:at + ARG_FRAGMENT]}}]})
    yield chunk({}, ans.get("finish_reason"))
    yield {**head, "choices": [], "usage": dict(USAGE)}
