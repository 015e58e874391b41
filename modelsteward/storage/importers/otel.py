"""OpenTelemetry GenAI traces: OTLP/JSON (the OpenTelemetry Collector's ``file`` exporter, one
document, or protobuf's JSON mapping) and OTLP protobuf files (``otlp_proto.py``).

Each record is an ``ExportTraceServiceRequest`` (``resourceSpans[].scopeSpans[].spans[]``) or an
``ExportLogsServiceRequest`` (``resourceLogs[].scopeLogs[].logRecords[]``: the GenAI events that the
instrumentations' older path emits as log records).  Attributes are ``[{key, value: {stringValue |
intValue | doubleValue | boolValue | arrayValue | kvlistValue}}]``.  Trace and span ids are read in
hex (the Collector) or base64 (protobuf's JSON mapping) and stored as hex: the same span in either
encoding is the same row (``otel:<span id hex>``).

A span becomes a log row when its ``gen_ai.operation.name`` is ``chat`` or ``text_completion`` (or,
from OpenLLMetry's older spans, ``llm.request.type``); every other span is skipped and counted, and
so is a chat span whose content was not captured (``no_content``: no prompt and no answer; an
instrumentation records them only when asked to).  Read (GenAI semantic conventions):

- model id ``provider:model`` from ``gen_ai.provider.name`` (older: ``gen_ai.system``) and
  ``gen_ai.request.model`` (else ``gen_ai.response.model``);
- tokens from ``gen_ai.usage.input_tokens``/``output_tokens`` (older: ``prompt_tokens``/``completion_tokens``);
- latency = end - start; status ``error`` when the span status code is ERROR or ``error.type`` is set;
- prompt and answer, first found of: ``gen_ai.input.messages`` / ``gen_ai.output.messages`` (+
  ``gen_ai.system_instructions``; JSON strings or structured values; ``tool_call`` parts become the
  assistant's OpenAI ``tool_calls``, ``tool_call_response`` parts tool turns with ``tool_call_id``);
  the span's events or, for spans without, the log records of the same span id anywhere in the file
  (``gen_ai.system.message``, ``gen_ai.user.message``, ``gen_ai.assistant.message``,
  ``gen_ai.tool.message``, ``gen_ai.choice``); OpenLLMetry's flattened ``gen_ai.prompt.N.*`` /
  ``gen_ai.completion.N.*`` attributes;
- the finish reason from the output message, else ``gen_ai.response.finish_reasons``; sampling
  parameters from ``gen_ai.request.*``; tools from ``gen_ai.tool.definitions`` when recorded (the
  openai-v2 instrumentation does not record them: such rows have no tools);
- use case from a ``steward.use_case`` attribute of the span or its resource, when present.

A chat span without inline content waits for its log records until the end of the file (the
Collector writes traces and logs as separate lines, in either order), so memory grows with the
number of such spans, not with the file.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from typing import Any

import orjson

from modelsteward.exchange import request_part
from modelsteward.storage.importers.base import RecordError, Skip, as_answer, as_messages, as_text, model_id

NAME = "otel"
CHAT_OPERATIONS = frozenset(("chat", "text_completion"))
_NOT_CHAT = Skip("not_a_chat_span")
_NO_CONTENT = Skip("no_content")
_EVENT_ROLES = {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
                "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"}
_EVENTS = frozenset((*_EVENT_ROLES, "gen_ai.choice"))
# gen_ai.request.* attribute -> OpenAI body field
_PARAMS = {"temperature": "temperature", "top_p": "top_p", "max_tokens": "max_tokens", "seed": "seed",
           "stop_sequences": "stop", "frequency_penalty": "frequency_penalty", "presence_penalty": "presence_penalty",
           "choice.count": "n"}


def sniff(record: Any) -> bool:
    return isinstance(record, dict) and ("resourceSpans" in record or "resourceLogs" in record)


def hex_id(value: Any) -> str | None:
    """A trace or span id as lowercase hex, from hex or base64 (protobuf's JSON mapping of bytes)."""
    if not isinstance(value, str) or not value:
        return None
    if len(value) in (16, 32) and all(c in "0123456789abcdefABCDEF" for c in value):
        return value.lower()
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise RecordError(f"id {value!r} is neither hex nor base64.") from None
    if len(raw) not in (8, 16):
        raise RecordError(f"id {value!r} decodes to {len(raw)} bytes (span ids have 8, trace ids 16).")
    return raw.hex()


def _value(v: Any) -> Any:
    if not isinstance(v, dict):
        return v
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "boolValue" in v:
        return bool(v["boolValue"])
    if "arrayValue" in v:
        return [_value(x) for x in (v["arrayValue"] or {}).get("values") or []]
    if "kvlistValue" in v:
        return {kv["key"]: _value(kv.get("value")) for kv in (v["kvlistValue"] or {}).get("values") or []}
    if "bytesValue" in v:
        return v["bytesValue"]
    return None


def attributes(raw: Any, where: str = "span") -> dict[str, Any]:
    if not raw:
        return {}
    if not isinstance(raw, list):
        raise RecordError(f"{where} attributes must be a list of {{key, value}}, not {type(raw).__name__}.")
    out: dict[str, Any] = {}
    for kv in raw:
        try:
            v = kv["value"]
            if type(v) is dict and "stringValue" in v:  # the common case, without a call
                out[kv["key"]] = v["stringValue"]
                continue
            out[kv["key"]] = _value(v)
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordError(f"{where} attribute {kv!r} is not {{key, value: {{stringValue|intValue|...}}}} "
                              f"({type(exc).__name__}: {exc}).") from None
    return out


def _nanos(span: dict[str, Any], key: str) -> int:
    raw = span.get(key)
    try:
        return int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise RecordError(f"{key} {raw!r} is not a number of nanoseconds.") from None


def _maybe_obj(body: Any) -> Any:
    if isinstance(body, str) and body[:1] in ("{", "["):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            return body
    return body


def _from_events(events: list[tuple[str, Any]], finish: Any) -> tuple[list[dict[str, Any]] | None, Any]:
    """(messages, answer) of GenAI events (name, body), from span events or log records."""
    msgs: list[dict[str, Any]] = []
    answer = None
    for name, body in events:
        body = _maybe_obj(body)
        if name == "gen_ai.choice":
            if answer is None and not (isinstance(body, dict) and int(body.get("index") or 0) != 0):
                answer = as_answer(body, finish)
            continue
        role = _EVENT_ROLES[name]
        if not isinstance(body, dict):
            body = {"content": body}
        msg = dict(body)
        msg["role"] = role
        if msg.get("content") is None and not (role == "assistant" and msg.get("tool_calls")):
            msg["content"] = ""
        msgs.extend(as_messages([msg]) or [])
    return msgs or None, answer


def _span_events(span: dict[str, Any]) -> list[tuple[str, Any]]:
    out = []
    for ev in span.get("events") or []:
        if isinstance(ev, dict) and ev.get("name") in _EVENTS:
            a = attributes(ev.get("attributes"), f"event {ev.get('name')}")
            out.append((ev["name"], a.get("gen_ai.event.content", a.get("message", a.get("content", a.get("body"))))))
    return out


def _flattened(attrs: dict[str, Any]) -> tuple[list[dict[str, Any]] | None, Any]:
    msgs: list[dict[str, Any]] = []
    i = 0
    while f"gen_ai.prompt.{i}.content" in attrs or f"gen_ai.prompt.{i}.role" in attrs:
        msgs.append({"role": attrs.get(f"gen_ai.prompt.{i}.role") or "user",
                     "content": attrs.get(f"gen_ai.prompt.{i}.content")})
        i += 1
    return msgs or None, as_answer(attrs.get("gen_ai.completion.0.content"),
                                   attrs.get("gen_ai.completion.0.finish_reason"))


def _request(attrs: dict[str, Any]) -> dict[str, Any] | None:
    body = {field: attrs[f"gen_ai.request.{k}"] for k, field in _PARAMS.items() if f"gen_ai.request.{k}" in attrs}
    tools = _maybe_obj(attrs.get("gen_ai.tool.definitions"))
    if isinstance(tools, list) and tools:
        body["tools"] = [t if isinstance(t, dict) and "function" in t else
                         {"type": "function", "function": {k: v for k, v in t.items() if k != "type"}}
                         for t in tools if isinstance(t, dict)]
    return request_part(body)


def _first_finish(attrs: dict[str, Any]) -> Any:
    fr = _maybe_obj(attrs.get("gen_ai.response.finish_reasons"))
    return fr[0] if isinstance(fr, list) and fr else fr if isinstance(fr, str) else None


def _inline_content(span: dict[str, Any], attrs: dict[str, Any]) -> tuple[Any, Any]:
    finish = _first_finish(attrs)
    if "gen_ai.input.messages" in attrs or "gen_ai.output.messages" in attrs:
        msgs = as_messages(attrs.get("gen_ai.input.messages"))
        sys_in = attrs.get("gen_ai.system_instructions")
        if sys_in:
            msgs = [{"role": "system", "content": as_text(sys_in)}] + (msgs or [])
        return msgs, as_answer(attrs.get("gen_ai.output.messages"), finish)
    events = _span_events(span)
    if events:
        return _from_events(events, finish)
    return _flattened(attrs)


def span_row(span: Any, resource_uc: Any) -> dict[str, Any] | Skip:
    """The row of one span (``messages`` / ``answer`` None when it carries no content inline)."""
    if not isinstance(span, dict):
        raise RecordError(f"a span must be an object, not {type(span).__name__}.")
    attrs = attributes(span.get("attributes"))
    op = attrs.get("gen_ai.operation.name") or attrs.get("llm.request.type")
    if op not in CHAT_OPERATIONS:
        return _NOT_CHAT
    sid = hex_id(span.get("spanId"))
    if not sid:
        raise RecordError("a chat span has no spanId.")
    start, end = _nanos(span, "startTimeUnixNano"), _nanos(span, "endTimeUnixNano")
    if end < start:
        raise RecordError(f"span {sid} ends before it starts.")
    mid = model_id(attrs.get("gen_ai.provider.name") or attrs.get("gen_ai.system"),
                   attrs.get("gen_ai.request.model") or attrs.get("gen_ai.response.model"))
    if not mid:
        return Skip("no_model")
    status = span.get("status") or {}
    code = status.get("code") if isinstance(status, dict) else None
    err_type = attrs.get("error.type")
    failed = code in (2, "2", "STATUS_CODE_ERROR") or bool(err_type)
    msgs, answer = _inline_content(span, attrs)
    inp = attrs.get("gen_ai.usage.input_tokens", attrs.get("gen_ai.usage.prompt_tokens"))
    out = attrs.get("gen_ai.usage.output_tokens", attrs.get("gen_ai.usage.completion_tokens"))
    meta = {"source": NAME, "trace_id": hex_id(span.get("traceId")), "span_id": sid}
    if attrs.get("gen_ai.response.id"):
        meta["response_id"] = attrs["gen_ai.response.id"]
    return {
        "ts": start // 1000, "request_id": f"otel:{sid}", "use_case": attrs.get("steward.use_case") or resource_uc,
        "model_id": mid, "role": "primary", "messages": msgs, "request": _request(attrs), "answer": answer,
        "input_tokens": inp, "output_tokens": out, "latency_ms": (end - start) / 1e6,
        "cost_usd": attrs.get("gen_ai.usage.cost"), "status": "error" if failed else "ok",
        "error": ((status.get("message") if isinstance(status, dict) else None) or err_type) if failed else None,
        "metadata": meta, "_finish": _first_finish(attrs),
    }


def _walk(record: dict[str, Any], top: str, scope: str, items: str) -> Iterator[tuple[str, Any, Any]]:
    """(path, item, resource use case) of every span or log record of one OTLP request."""
    rs_list = record.get(top)
    if not isinstance(rs_list, list):
        raise RecordError(f"{top} must be a list.")
    for ri, rs in enumerate(rs_list):
        if not isinstance(rs, dict):
            raise RecordError(f"{top}[{ri}] must be an object.")
        res = rs.get("resource") or {}
        ruc = attributes(res.get("attributes"), "resource").get("steward.use_case") if isinstance(res, dict) else None
        scopes = rs.get(scope) or (rs.get("instrumentationLibrarySpans") if top == "resourceSpans" else None) or []
        for si, ss in enumerate(scopes):
            if not isinstance(ss, dict) or not isinstance(ss.get(items) or [], list):
                raise RecordError(f"{top}[{ri}].{scope}[{si}] must be an object with a {items} list.")
            for pi, item in enumerate(ss.get(items) or []):
                yield f"{top}[{ri}].{scope}[{si}].{items}[{pi}]", item, ruc


class Reader:
    """The rows of one file: spans with inline content at once, the others once the file's log
    records have been read (``finish``)."""

    def __init__(self) -> None:
        self.waiting: dict[str, dict[str, Any]] = {}  # span id -> row without content
        self.events: dict[str, list[tuple[str, Any]]] = {}  # span id -> GenAI events from log records

    def rows(self, record: dict[str, Any]) -> Iterator[dict[str, Any] | Skip]:
        if "resourceLogs" in record:
            self._logs(record)
            return
        for path, span, ruc in _walk(record, "resourceSpans", "scopeSpans", "spans"):
            try:
                row = span_row(span, ruc)
            except RecordError as exc:
                raise RecordError(f"{path}: {exc.message}") from None
            if isinstance(row, Skip) or row["messages"] is not None or row["answer"] is not None:
                yield _done(row)
            else:
                self.waiting[row["request_id"][5:]] = row

    def _logs(self, record: dict[str, Any]) -> None:
        for path, rec, _ in _walk(record, "resourceLogs", "scopeLogs", "logRecords"):
            if not isinstance(rec, dict):
                raise RecordError(f"{path} must be an object.")
            name = rec.get("eventName") or attributes(rec.get("attributes"), path).get("event.name")
            if name not in _EVENTS:
                continue
            try:
                sid = hex_id(rec.get("spanId"))
            except RecordError as exc:
                raise RecordError(f"{path}: {exc.message}") from None
            if sid:
                self.events.setdefault(sid, []).append((name, _value(rec.get("body"))))

    def finish(self) -> Iterator[dict[str, Any] | Skip]:
        """The waiting spans, with their log records' content, or skipped as ``no_content``."""
        for sid, row in self.waiting.items():
            events = self.events.get(sid)
            if events:
                row["messages"], row["answer"] = _from_events(events, row["_finish"])
            yield _done(row)
        self.waiting.clear()
        self.events.clear()


def _done(row: dict[str, Any] | Skip) -> dict[str, Any] | Skip:
    if isinstance(row, Skip):
        return row
    if row["messages"] is None and row["answer"] is None:
        return _NO_CONTENT
    row.pop("_finish", None)
    return row


def rows(record: dict[str, Any]) -> Iterator[dict[str, Any] | Skip]:
    """The rows of one record on its own (log records are joined only by a ``Reader``)."""
    reader = Reader()
    yield from reader.rows(record)
    yield from reader.finish()
