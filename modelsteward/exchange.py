"""The one request/answer shape: OpenAI chat's, for every writer and every reader of logged traffic.

A logged exchange is what the application sent and what it got back, whole:

- the request: ``messages`` (OpenAI chat messages: ``tool_calls`` on assistant turns, ``tool_call_id``
  on tool turns, content parts such as images) and the rest of the body, kept as ``request``:
  ``tools``, ``tool_choice``, ``response_format``, ``parallel_tool_calls`` and the sampling
  parameters (``params``);
- the answer: its text (``response``, the assistant message's ``content``; ``""`` when the answer is
  only tool calls) and the rest of the assistant message, kept as ``answer``: ``tool_calls``,
  ``refusal``, ``finish_reason``.  A streamed answer is assembled from its deltas
  (``StreamAssembler``), tool-call argument fragments included, so it logs exactly as the same
  answer unstreamed.

Storage keeps the four parts as four columns (``messages``, ``request``, ``response``, ``answer``;
``request`` / ``answer`` are NULL when there is nothing beyond plain text), so a plain-text row costs
what it did before and rows written before these columns existed read the same way
(``row_exchange``).  Writers (the gateway, each importer) build rows with ``request_part`` /
``answer_part`` / ``answer_from_*``; readers (replay, datasets, scorers, analysis, console) read
them with ``row_exchange`` and the helpers below, never by parsing the columns themselves.

This is a base module (imports only ``errors``): the gateway's hot path calls it per request, so
it works on plain dicts (the ``TypedDict`` s document the shapes) and validates only where asked
(``check_*``: imports, golden sets, training files), never an upstream's answer, which is logged as
received, broken arguments included (the scorers judge those).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict

import orjson

from modelsteward.errors import InvalidInput

__all__ = [
    "ToolCall", "Answer", "Exchange", "REQUEST_KEYS", "SAMPLING_KEYS", "ROLES",
    "request_part", "sampling_of", "answer_from_message", "answer_from_completion", "answer_part", "StreamAssembler",
    "row_exchange", "loads_json", "message_text", "prompt_text", "answer_text", "tool_call_text",
    "assistant_message", "request_body", "request_kind", "answer_kind", "required_capabilities", "response_schema",
    "parse_arguments", "normalise_tool_call", "check_messages", "check_request", "check_tool_calls",
]

# the body fields besides messages that shape the answer (kept whole in ``request``)
REQUEST_KEYS = ("tools", "tool_choice", "response_format", "parallel_tool_calls")
# legacy function calling (``functions`` / ``function_call``) is read as tools / tool_choice
SAMPLING_KEYS = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed", "presence_penalty",
                 "frequency_penalty", "n", "logprobs", "top_logprobs", "logit_bias", "reasoning_effort")
ROLES = frozenset(("system", "developer", "user", "assistant", "tool", "function"))
_REQUEST, _SAMPLING = frozenset(REQUEST_KEYS), frozenset(SAMPLING_KEYS)
Kind = Literal["text", "tools", "structured"]


class Function(TypedDict):
    name: str
    arguments: str  # JSON text, as OpenAI sends it


class ToolCall(TypedDict):
    id: str
    type: str  # "function"
    function: Function


class Answer(TypedDict, total=False):
    content: str | None
    tool_calls: list[ToolCall]
    refusal: str | None
    finish_reason: str | None


class Exchange(TypedDict):
    """One logged exchange, read back: the request (``messages`` + ``request``) and the answer."""

    messages: list[dict[str, Any]]
    request: dict[str, Any]
    answer: Answer


# ---------------------------------------------------------------------------------------------- writing
def request_part(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The body's fields besides ``messages`` worth keeping (tools, tool choice, response format,
    parallel tool calls, sampling parameters under ``params``); None for a plain request."""
    # one pass over the body's keys (a handful) rather than a look-up per known key: the gateway
    # calls this on every request
    out: dict[str, Any] = {}
    params: dict[str, Any] = {}
    for k, v in body.items():
        if v is not None:
            if k in _SAMPLING:
                params[k] = v
            elif k in _REQUEST:
                out[k] = v
    if "tools" not in out and body.get("functions"):
        out["tools"] = [{"type": "function", "function": f} for f in body["functions"] if isinstance(f, dict)]
        fc = body.get("function_call")
        if isinstance(fc, dict) and fc.get("name"):
            out["tool_choice"] = {"type": "function", "function": {"name": fc["name"]}}
        elif isinstance(fc, str):
            out["tool_choice"] = fc
    if params:
        out["params"] = params
    return out or None


def sampling_of(body: Mapping[str, Any]) -> dict[str, Any]:
    """The sampling parameters of a request body (those set)."""
    return {k: body[k] for k in SAMPLING_KEYS if body.get(k) is not None}


def normalise_tool_call(call: Any, index: int = 0) -> ToolCall:
    """One tool call in OpenAI's shape; ``arguments`` always JSON text (an object is dumped)."""
    if not isinstance(call, Mapping):
        raise InvalidInput(f"tool call #{index + 1} must be an object, got {type(call).__name__}.")
    fn = call.get("function") if isinstance(call.get("function"), Mapping) else call
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"tool call #{index + 1} has no function name.")
    args = fn.get("arguments", fn.get("args", fn.get("input")))
    if args is None:
        args = "{}"
    elif not isinstance(args, str):
        args = orjson.dumps(args).decode()
    return {"id": str(call.get("id") or f"call_{index}"), "type": "function",
            "function": {"name": name, "arguments": args}}


def answer_from_message(message: Mapping[str, Any] | None, finish_reason: str | None = None) -> Answer:
    """An assistant message (``choices[i].message``) as an ``Answer``."""
    message = message or {}
    out: Answer = {"content": message.get("content")}
    calls = message.get("tool_calls")
    if not calls and isinstance(message.get("function_call"), Mapping):  # legacy function calling
        calls = [{"id": "call_0", "function": message["function_call"]}]
    if calls:
        out["tool_calls"] = [normalise_tool_call(c, i) for i, c in enumerate(calls)]
    if message.get("refusal"):
        out["refusal"] = message["refusal"]
    out["finish_reason"] = finish_reason
    return out


def answer_from_completion(resp: Mapping[str, Any]) -> Answer:
    """A chat completion's first choice as an ``Answer``."""
    choices = resp.get("choices") or [{}]
    first = choices[0] if isinstance(choices[0], Mapping) else {}
    return answer_from_message(first.get("message"), first.get("finish_reason"))


def answer_part(answer: Answer | None) -> tuple[str | None, dict[str, Any] | None]:
    """(``response``, ``answer``) columns of an answer: its text, and the rest of it (None when empty)."""
    if answer is None:
        return None, None
    rest = {k: v for k, v in answer.items() if k != "content" and v not in (None, [], "")}
    content = answer.get("content")
    if content is not None and not isinstance(content, str):  # content parts in an answer: their text
        content = _content_text(content)
    return (content if content is not None else ""), (rest or None)


class StreamAssembler:
    """Assembles OpenAI stream chunks into the ``Answer`` the same request unstreamed would give.

    Only choice 0 is kept (the gateway serves ``n=1``); tool-call deltas are merged by ``index``
    (id, name and argument fragments), refusal deltas concatenated; ``usage`` is the last seen.
    """

    __slots__ = ("_text", "_refusal", "_calls", "finish_reason", "usage")

    def __init__(self) -> None:
        self._text: list[str] = []
        self._refusal: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None

    def add(self, chunk: Mapping[str, Any]) -> None:
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, Mapping) or (choice.get("index") or 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self._text.append(delta["content"])
            if delta.get("refusal"):
                self._refusal.append(delta["refusal"])
            for tc in delta.get("tool_calls") or ():
                self._add_call(tc)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]

    def _add_call(self, tc: Mapping[str, Any]) -> None:
        idx = tc.get("index")
        idx = len(self._calls) if idx is None else int(idx)
        slot = self._calls.setdefault(idx, {"id": None, "name": [], "arguments": []})
        if tc.get("id"):
            slot["id"] = tc["id"]
        fn = tc.get("function") or {}
        if fn.get("name"):
            slot["name"].append(fn["name"])
        if fn.get("arguments"):
            slot["arguments"].append(fn["arguments"])

    @property
    def text(self) -> str:
        return "".join(self._text)

    def answer(self) -> Answer:
        out: Answer = {"content": self.text if self._text or not self._calls else None}
        if self._calls:
            out["tool_calls"] = [
                {"id": s["id"] or f"call_{i}", "type": "function",
                 "function": {"name": "".join(s["name"]), "arguments": "".join(s["arguments"]) or "{}"}}
                for i, s in sorted(self._calls.items())]
        if self._refusal:
            out["refusal"] = "".join(self._refusal)
        out["finish_reason"] = self.finish_reason
        return out


# ---------------------------------------------------------------------------------------------- reading
def loads_json(value: Any, default: Any = None) -> Any:
    """A JSON column's value (text, bytes or already parsed); ``default`` when empty or unreadable."""
    if value is None or value == "":
        return default
    if isinstance(value, (str, bytes, bytearray)):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return default
    return value


def row_exchange(row: Mapping[str, Any]) -> Exchange:
    """A logged row (any age: before or after the ``request`` / ``answer`` columns) as an ``Exchange``."""
    msgs = loads_json(row.get("messages"), [])
    req = loads_json(row.get("request"), {})
    rest = loads_json(row.get("answer"), {})
    answer: Answer = {"content": row.get("response")}
    if isinstance(rest, dict):
        answer.update(rest)  # type: ignore[typeddict-item]
    answer.setdefault("finish_reason", None)
    return {"messages": msgs if isinstance(msgs, list) else [],
            "request": req if isinstance(req, dict) else {}, "answer": answer}


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content
                        if isinstance(p, Mapping) and p.get("type", "text") in ("text", "input_text", "output_text"))
    return "" if content is None else str(content)


def tool_call_text(call: Mapping[str, Any]) -> str:
    fn = call.get("function") or {}
    return f"{fn.get('name', '?')}({fn.get('arguments', '')})"


def message_text(msg: Mapping[str, Any]) -> str:
    """The readable text of one message: its content (text parts of a multi-part one), and the
    tool calls of an assistant turn as ``name(arguments)``."""
    text = _content_text(msg.get("content"))
    calls = msg.get("tool_calls") or ()
    if calls:
        rendered = " ".join(tool_call_text(c) for c in calls if isinstance(c, Mapping))
        text = f"{text} {rendered}".strip()
    return text


def prompt_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """The readable text of a whole conversation, system text and tool turns included."""
    return "\n".join(t for t in (message_text(m) for m in messages if isinstance(m, Mapping)) if t)


def answer_text(answer: Mapping[str, Any]) -> str:
    """An answer's readable text: its content, else its tool calls as ``name(arguments)``."""
    return message_text(answer)


def assistant_message(answer: Mapping[str, Any]) -> dict[str, Any]:
    """The answer as the assistant turn that continues the conversation (for datasets, replays)."""
    msg: dict[str, Any] = {"role": "assistant", "content": answer.get("content")}
    if answer.get("tool_calls"):
        msg["tool_calls"] = list(answer["tool_calls"])
        if not msg["content"]:
            msg["content"] = None
    elif msg["content"] is None:
        msg["content"] = ""
    if answer.get("refusal"):
        msg["refusal"] = answer["refusal"]
    return msg


def request_body(messages: Sequence[Mapping[str, Any]], request: Mapping[str, Any] | None,
                 params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An OpenAI request body that asks what the logged request asked (``params`` override the
    logged sampling parameters)."""
    request = request or {}
    body: dict[str, Any] = {"messages": list(messages)}
    for k in REQUEST_KEYS:
        if request.get(k) is not None:
            body[k] = request[k]
    body.update(request.get("params") or {})
    body.update(params or {})
    return body


def response_schema(request: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The JSON schema a request's ``response_format`` asks for (``{}`` for plain ``json_object``), or None."""
    rf = (request or {}).get("response_format")
    if not isinstance(rf, Mapping):
        return None
    if rf.get("type") == "json_schema":
        spec = rf.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        return dict(schema) if isinstance(schema, Mapping) else {}
    if rf.get("type") == "json_object":
        return {}
    return None


def request_kind(request: Mapping[str, Any] | None) -> Kind:
    """What the request asks for: ``structured`` (a JSON response format), ``tools`` (tools offered
    and not turned off), else ``text``."""
    request = request or {}
    if response_schema(request) is not None:
        return "structured"
    if request.get("tools") and request.get("tool_choice") != "none":
        return "tools"
    return "text"


def answer_kind(answer: Mapping[str, Any]) -> Literal["tool_calls", "text"]:
    return "tool_calls" if answer.get("tool_calls") else "text"


_IMAGE_PARTS = frozenset(("image_url", "input_image", "image"))
_AUDIO_PARTS = frozenset(("input_audio", "audio"))


def required_capabilities(messages: Sequence[Mapping[str, Any]], request: Mapping[str, Any] | None) -> set[str]:
    """What serving this request needs of a model: ``tools``, ``json``, ``vision``, ``audio``."""
    caps: set[str] = set()
    kind = request_kind(request)
    if kind == "tools" or any(isinstance(m, Mapping) and (m.get("tool_calls") or m.get("role") == "tool")
                              for m in messages):
        caps.add("tools")
    if kind == "structured":
        caps.add("json")
    for m in messages:
        content = m.get("content") if isinstance(m, Mapping) else None
        if isinstance(content, list):
            types = {p.get("type") for p in content if isinstance(p, Mapping)}
            if types & _IMAGE_PARTS:
                caps.add("vision")
            if types & _AUDIO_PARTS:
                caps.add("audio")
    return caps


# ---------------------------------------------------------------------------------------------- checking
def parse_arguments(call: Mapping[str, Any]) -> dict[str, Any]:
    """A tool call's arguments as an object; ``InvalidInput`` naming the call when they are not one."""
    fn = call.get("function") or {}
    raw = fn.get("arguments")
    name = fn.get("name", "?")
    try:
        args = orjson.loads(raw) if isinstance(raw, (str, bytes)) else raw
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"tool call {name!r}: arguments are not JSON ({exc}); send a JSON object as text.") from None
    if not isinstance(args, dict):
        raise InvalidInput(f"tool call {name!r}: arguments must be a JSON object, got {type(args).__name__}.")
    return args


def check_tool_calls(calls: Any, where: str) -> list[ToolCall]:
    """Tool calls from a file (import, golden set, training data): normalised, arguments JSON objects."""
    if not isinstance(calls, list) or not calls:
        raise InvalidInput(f"{where}: 'tool_calls' must be a non-empty list.")
    out = []
    for i, c in enumerate(calls):
        try:
            call = normalise_tool_call(c, i)
            parse_arguments(call)
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: {exc.message}") from None
        out.append(call)
    return out


def check_messages(messages: Any, where: str) -> list[dict[str, Any]]:
    """Chat messages from a file, in the canonical shape, or ``InvalidInput`` naming the first problem.

    Every message has a known ``role``; ``content`` is text, a list of parts or (for an assistant
    turn that calls tools) null; an assistant turn needs content or ``tool_calls``; a tool turn
    needs ``tool_call_id``.
    """
    if not isinstance(messages, list) or not messages:
        raise InvalidInput(f"{where}: 'messages' must be a non-empty list of chat messages.")
    out: list[dict[str, Any]] = []
    for n, m in enumerate(messages, 1):
        at = f"{where}, message {n}"
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise InvalidInput(f"{at}: needs a 'role' ({', '.join(sorted(ROLES))}).")
        msg = dict(m)
        content = msg.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise InvalidInput(f"{at}: 'content' must be text or a list of content parts.")
        if isinstance(content, list) and not all(isinstance(p, dict) and p.get("type") for p in content):
            raise InvalidInput(f"{at}: every content part needs a 'type' (text, image_url, ...).")
        if msg["role"] == "assistant" and msg.get("tool_calls") is not None:
            msg["tool_calls"] = check_tool_calls(msg["tool_calls"], at)
        elif content is None and msg["role"] != "assistant":
            raise InvalidInput(f"{at}: 'content' is missing.")
        elif content is None and not msg.get("function_call"):
            raise InvalidInput(f"{at}: an assistant turn needs 'content' or 'tool_calls'.")
        if msg["role"] == "tool" and not msg.get("tool_call_id"):
            raise InvalidInput(f"{at}: a tool turn needs 'tool_call_id' (the id of the call it answers).")
        out.append(msg)
    return out


def check_request(request: Any, where: str) -> dict[str, Any]:
    """The request part from a file: tools are function definitions with a name, a JSON-schema
    ``response_format`` holds a valid JSON Schema (checked with ``jsonschema``)."""
    if request is None:
        return {}
    if not isinstance(request, dict):
        raise InvalidInput(f"{where}: the request part must be an object.")
    tools = request.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise InvalidInput(f"{where}: 'tools' must be a list of function definitions.")
        for i, t in enumerate(tools, 1):
            fn = t.get("function") if isinstance(t, dict) else None
            if not isinstance(fn, dict) or not _NAME.match(str(fn.get("name", ""))):
                raise InvalidInput(f"{where}: tool {i} needs function.name (letters, digits, '_', '-').")
            if fn.get("parameters") is not None:
                _check_schema(fn["parameters"], f"{where}: tool {fn['name']!r} parameters")
    schema = response_schema(request)
    if schema:
        _check_schema(schema, f"{where}: response_format json_schema")
    return request


_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def _check_schema(schema: Any, where: str) -> None:
    from jsonschema import validators
    from jsonschema.exceptions import SchemaError

    if not isinstance(schema, dict):
        raise InvalidInput(f"{where} must be a JSON Schema object.")
    try:
        validators.validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise InvalidInput(f"{where} is not a valid JSON Schema: {exc.message}.") from None
