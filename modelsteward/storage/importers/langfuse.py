"""Langfuse observation exports (the public API's ``GET /api/public/observations`` ``data`` items, or
the UI/blob-storage export of observations, one per line).

An observation of ``type`` ``GENERATION`` becomes a row: ``id`` (-> ``langfuse:<id>``), ``model``,
``input``/``output`` (OpenAI-style messages, a string, or ``{"messages": [...], "tools": [...]}``; an
output that is an assistant message with ``tool_calls`` is a tool-call answer, its finish reason
``metadata.finish_reason`` when recorded, else none: Langfuse's OpenAI integration keeps only the
message), the request's sampling parameters from ``modelParameters``, tokens from
``usageDetails`` (``input``/``output``) or the older ``usage`` (``input``/``output`` or
``promptTokens``/``completionTokens``), latency from ``startTime``/``endTime``, cost from
``costDetails.total`` (else ``calculatedTotalCost``/``totalCost``), status ``error`` when ``level`` is
``ERROR`` (``statusMessage`` as the error).  Other observation types (SPAN, EVENT, ...) are skipped.
The provider comes from ``metadata`` (``provider``, ``ls_provider``, ``gen_ai.system``) or the model name.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from modelsteward.exchange import request_part
from modelsteward.storage.importers.base import RecordError, Skip, as_answer, as_messages, iso_us, maybe_json, model_id, num

NAME = "langfuse"
TYPES = frozenset(("GENERATION", "SPAN", "EVENT", "AGENT", "TOOL", "CHAIN", "RETRIEVER", "EVALUATOR", "EMBEDDING",
                   "GUARDRAIL"))


def sniff(record: Any) -> bool:
    return (isinstance(record, dict) and record.get("type") in TYPES
            and ("startTime" in record or "start_time" in record or "traceId" in record))


def _get(r: dict[str, Any], camel: str, snake: str) -> Any:
    v = r.get(camel)
    return r.get(snake) if v is None else v


def _request(inp: Any, record: dict[str, Any]) -> dict[str, Any] | None:
    """Tools and response format (in ``input`` beside the messages, as Langfuse's OpenAI integration
    records them) and the sampling parameters (``modelParameters``)."""
    body: dict[str, Any] = dict(inp) if isinstance(inp, dict) else {}
    params = _get(record, "modelParameters", "model_parameters")
    if isinstance(params, dict):
        for k, v in params.items():
            body.setdefault(k, maybe_json(v) if k in ("tools", "response_format", "tool_choice") else v)
    return request_part(body)


def rows(record: dict[str, Any]) -> Iterator[dict[str, Any] | Skip]:
    if record.get("type") != "GENERATION":
        yield Skip(f"langfuse_{str(record.get('type')).lower()}")
        return
    oid = record.get("id")
    if not oid:
        raise RecordError("a GENERATION observation has no id.")
    meta_in: dict[str, Any] = record["metadata"] if isinstance(record.get("metadata"), dict) else {}
    provider = meta_in.get("provider") or meta_in.get("ls_provider") or meta_in.get("gen_ai.system")
    mid = model_id(provider, record.get("model"))
    if not mid:
        yield Skip("no_model")
        return
    start = iso_us(_get(record, "startTime", "start_time"), "startTime")
    if start is None:
        raise RecordError(f"observation {oid} has no startTime.")
    end = iso_us(_get(record, "endTime", "end_time"), "endTime")
    ud = _get(record, "usageDetails", "usage_details") or {}
    usage = record.get("usage") or {}
    if not isinstance(ud, dict) or not isinstance(usage, dict):
        raise RecordError(f"observation {oid}: usage must be an object.")
    inp = ud.get("input", usage.get("input", usage.get("promptTokens", record.get("promptTokens"))))
    out = ud.get("output", usage.get("output", usage.get("completionTokens", record.get("completionTokens"))))
    cd = _get(record, "costDetails", "cost_details") or {}
    cost = cd.get("total") if isinstance(cd, dict) else None
    if cost is None:
        cost = _get(record, "calculatedTotalCost", "calculated_total_cost")
    if cost is None:
        cost = record.get("totalCost", usage.get("totalCost"))
    failed = record.get("level") == "ERROR"
    inp_raw = maybe_json(record.get("input"))
    answer = as_answer(record.get("output"), meta_in.get("finish_reason"))
    uc = meta_in.get("use_case") or meta_in.get("steward_use_case")
    yield {
        "ts": start, "request_id": f"langfuse:{oid}", "use_case": uc, "model_id": mid, "role": "primary",
        "messages": as_messages(inp_raw), "request": _request(inp_raw, record), "answer": answer,
        "input_tokens": num(inp, "usage input"), "output_tokens": num(out, "usage output"),
        "latency_ms": (end - start) / 1000 if end is not None and end >= start else None,
        "cost_usd": num(cost, "cost", float), "status": "error" if failed else "ok",
        "error": (_get(record, "statusMessage", "status_message") or "ERROR") if failed else None,
        "metadata": {"source": NAME, "trace_id": _get(record, "traceId", "trace_id"), "observation_id": oid},
    }
