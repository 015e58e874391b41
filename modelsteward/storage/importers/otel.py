"""OTLP/JSON trace exports (the OpenTelemetry Collector's ``file`` exporter, or one document).

Each record is an ``ExportTraceServiceRequest``: ``resourceSpans[].scopeSpans[].spans[]``, attributes
as ``[{key, value: {stringValue | intValue | doubleValue | boolValue | arrayValue | kvlistValue}}]``,
``startTimeUnixNano``/``endTimeUnixNano`` as decimal strings.  A span becomes a log row when its
``gen_ai.operation.name`` is ``chat`` or ``text_completion`` (or, from OpenLLMetry's older spans,
``llm.request.type``); every other span is skipped and counted.  Read (GenAI semantic conventions):

- model id ``provider:model`` from ``gen_ai.provider.name`` (older: ``gen_ai.system``) and
  ``gen_ai.request.model`` (else ``gen_ai.response.model``);
- tokens from ``gen_ai.usage.input_tokens``/``output_tokens`` (older: ``prompt_tokens``/``completion_tokens``);
- latency = end - start; status ``error`` when the span status code is ERROR or ``error.type`` is set;
- prompt and answer from ``gen_ai.input.messages``/``gen_ai.output.messages`` (+ ``gen_ai.system_instructions``;
  JSON strings or structured values), else from the per-message span events (``gen_ai.system.message``,
  ``gen_ai.user.message``, ``gen_ai.assistant.message``, ``gen_ai.tool.message``, ``gen_ai.choice``),
  else from OpenLLMetry's flattened ``gen_ai.prompt.N.*``/``gen_ai.completion.N.*`` attributes.
- use case from a ``steward.use_case`` attribute of the span or its resource, when present.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from modelsteward.storage.importers.base import RecordError, Skip, as_messages, as_text, model_id

NAME = "otel"
CHAT_OPERATIONS = frozenset(("chat", "text_completion"))
_NOT_CHAT = Skip("not_a_chat_span")
_EVENT_ROLES = {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
                "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"}


def sniff(record: Any) -> bool:
    return isinstance(record, dict) and "resourceSpans" in record


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


def _from_events(events: list[Any]) -> tuple[list[dict[str, Any]] | None, str | None]:
    msgs: list[dict[str, Any]] = []
    answer: str | None = None
    for ev in events or []:
        if not isinstance(ev, dict):
            continue
        name = ev.get("name")
        if name in _EVENT_ROLES or name == "gen_ai.choice":
            a = attributes(ev.get("attributes"), f"event {name}")
            body = a.get("gen_ai.event.content", a.get("message", a.get("content", a.get("body"))))
            if isinstance(body, str) and body[:1] == "{":
                try:
                    body = orjson.loads(body)
                except orjson.JSONDecodeError:
                    pass
            if name == "gen_ai.choice":
                if answer is None:
                    answer = as_text(body.get("message", body) if isinstance(body, dict) else body)
            else:
                content = body.get("content") if isinstance(body, dict) else body
                m = {"role": _EVENT_ROLES[name], "content": as_text(content) if content is not None else None}
                msgs.append(m)
    return msgs or None, answer


def _flattened(attrs: dict[str, Any]) -> tuple[list[dict[str, Any]] | None, str | None]:
    msgs: list[dict[str, Any]] = []
    i = 0
    while f"gen_ai.prompt.{i}.content" in attrs or f"gen_ai.prompt.{i}.role" in attrs:
        msgs.append({"role": attrs.get(f"gen_ai.prompt.{i}.role") or "user",
                     "content": attrs.get(f"gen_ai.prompt.{i}.content")})
        i += 1
    return msgs or None, attrs.get("gen_ai.completion.0.content")


def span_row(span: Any, resource_uc: Any) -> dict[str, Any] | Skip:
    if not isinstance(span, dict):
        raise RecordError(f"a span must be an object, not {type(span).__name__}.")
    attrs = attributes(span.get("attributes"))
    op = attrs.get("gen_ai.operation.name") or attrs.get("llm.request.type")
    if op not in CHAT_OPERATIONS:
        return _NOT_CHAT
    sid = span.get("spanId")
    if not sid or not isinstance(sid, str):
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
    if "gen_ai.input.messages" in attrs or "gen_ai.output.messages" in attrs:
        msgs = as_messages(attrs.get("gen_ai.input.messages"))
        sys_in = attrs.get("gen_ai.system_instructions")
        if sys_in:
            msgs = [{"role": "system", "content": as_text(sys_in)}] + (msgs or [])
        answer = as_text(attrs.get("gen_ai.output.messages"))
    else:
        msgs, answer = _from_events(span.get("events") or [])
        if msgs is None and answer is None:
            msgs, answer = _flattened(attrs)
    uc = attrs.get("steward.use_case") or resource_uc
    inp = attrs.get("gen_ai.usage.input_tokens", attrs.get("gen_ai.usage.prompt_tokens"))
    out = attrs.get("gen_ai.usage.output_tokens", attrs.get("gen_ai.usage.completion_tokens"))
    meta = {"source": NAME, "trace_id": span.get("traceId"), "span_id": sid}
    if attrs.get("gen_ai.response.id"):
        meta["response_id"] = attrs["gen_ai.response.id"]
    return {
        "ts": start // 1000, "request_id": f"otel:{sid}", "use_case": uc, "model_id": mid, "role": "primary",
        "messages": msgs, "response": answer, "input_tokens": inp, "output_tokens": out,
        "latency_ms": (end - start) / 1e6, "cost_usd": attrs.get("gen_ai.usage.cost"),
        "status": "error" if failed else "ok",
        "error": ((status.get("message") if isinstance(status, dict) else None) or err_type) if failed else None,
        "metadata": meta,
    }


def rows(record: dict[str, Any]) -> Iterator[dict[str, Any] | Skip]:
    """A row (or a Skip) for every span of one ExportTraceServiceRequest; errors name the span's path."""
    rs_list = record.get("resourceSpans")
    if not isinstance(rs_list, list):
        raise RecordError("resourceSpans must be a list.")
    for ri, rs in enumerate(rs_list):
        if not isinstance(rs, dict):
            raise RecordError(f"resourceSpans[{ri}] must be an object.")
        res = rs.get("resource") or {}
        ruc = attributes(res.get("attributes"), "resource").get("steward.use_case") if isinstance(res, dict) else None
        for si, ss in enumerate(rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []):
            if not isinstance(ss, dict) or not isinstance(ss.get("spans") or [], list):
                raise RecordError(f"resourceSpans[{ri}].scopeSpans[{si}] must be an object with a spans list.")
            for pi, span in enumerate(ss.get("spans") or []):
                try:
                    yield span_row(span, ruc)
                except RecordError as exc:
                    raise RecordError(f"resourceSpans[{ri}].scopeSpans[{si}].spans[{pi}]: {exc.message}") from None
