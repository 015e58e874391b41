"""LiteLLM logs, in the two shapes LiteLLM writes them:

- spend-log rows of the proxy's ``LiteLLM_SpendLogs`` table (``GET /spend/logs``, or a JSON/JSON-lines
  dump of the table).  The prompt is the proxy's request body, ``proxy_server_request`` (stored with
  ``store_prompts_in_spend_logs``; the ``messages`` column is ``"{}"`` in current LiteLLM, read when
  an older proxy filled it); the answer is ``response`` (the chat completion).
- ``StandardLoggingPayload`` records: what LiteLLM's S3 / GCS / custom-callback logging writes
  (``kwargs["standard_logging_object"]``): ``messages``, ``response``, ``model_parameters`` (tools,
  tool choice, response format and sampling parameters), ``response_cost``, epoch ``startTime``.

Read from both: ``request_id`` (the payload's ``id``, the same id: -> ``litellm:<id>``, so the same call
from both shapes is one row), ``model`` with ``custom_llm_provider`` (-> model id ``provider:model``),
tokens, cost (USD), latency from ``startTime``/``endTime``, ``status`` (``success``/``failure``; a
failure's message from ``error_information.error_message``), the request's tools, tool choice,
response format and sampling parameters, the whole answer (text, tool calls, finish reason).
Calls that are not completions (``call_type`` embedding, image generation, ...) are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from modelsteward.exchange import request_part
from modelsteward.storage.importers.base import (
    RecordError, Skip, as_answer, as_messages, iso_us, maybe_json, model_id, num)

NAME = "litellm"
COMPLETION_CALLS = frozenset(("completion", "acompletion", "text_completion", "atext_completion", "responses",
                              "aresponses", "anthropic_messages", "generate_content", "agenerate_content", ""))


def _is_payload(record: dict[str, Any]) -> bool:
    """A StandardLoggingPayload (its own ``id``; no spend-log ``request_id``)."""
    return "model_parameters" in record and "id" in record and ("response_cost" in record or "hidden_params" in record)


def sniff(record: Any) -> bool:
    return isinstance(record, dict) and "call_type" in record and (
        ("request_id" in record and ("spend" in record or "startTime" in record)) or _is_payload(record))


def _prompt(record: dict[str, Any], payload: bool) -> tuple[Any, dict[str, Any]]:
    """(messages, the request body's other fields) of a record."""
    if payload:
        params = maybe_json(record.get("model_parameters")) or {}
        return maybe_json(record.get("messages")), params if isinstance(params, dict) else {}
    body = maybe_json(record.get("proxy_server_request")) or {}
    if isinstance(body, dict) and isinstance(body.get("body"), dict):  # {url, method, headers, body}
        body = body["body"]
    if isinstance(body, dict) and body.get("messages"):
        return body["messages"], body
    return maybe_json(record.get("messages")), body if isinstance(body, dict) else {}


def _use_case(meta: dict[str, Any], body: dict[str, Any]) -> Any:
    for holder in (meta, meta.get("requester_metadata"), meta.get("spend_logs_metadata"), body.get("metadata")):
        if isinstance(holder, dict) and holder.get("use_case"):
            return holder["use_case"]
    return None


def rows(record: dict[str, Any]) -> Iterator[dict[str, Any] | Skip]:
    payload = _is_payload(record) and "request_id" not in record
    rid = record.get("id") if payload else record.get("request_id")
    if not rid:
        raise RecordError("a StandardLoggingPayload has no id." if payload else "a spend-log row has no request_id.")
    call = str(record.get("call_type") or "")
    if call not in COMPLETION_CALLS:
        yield Skip(f"litellm_{call}")
        return
    model, provider = record.get("model") or record.get("model_group"), record.get("custom_llm_provider")
    if isinstance(model, str) and provider and model.startswith(f"{provider}/"):
        model = model[len(provider) + 1:]
    mid = model_id(provider, model)
    if not mid:
        yield Skip("no_model")
        return
    start = iso_us(record.get("startTime"), "startTime")
    end = iso_us(record.get("endTime"), "endTime")
    meta = maybe_json(record.get("metadata")) or {}
    if not isinstance(meta, dict):
        raise RecordError(f"{'payload' if payload else 'spend-log row'} {rid}: metadata must be an object.")
    status = record.get("status") or meta.get("status") or "success"
    failed = status == "failure"
    err = None
    if failed:
        info = record.get("error_information") or meta.get("error_information") or {}
        err = (info.get("error_message") if isinstance(info, dict) else None) or record.get("error_str") or "failure"
    msgs, body = _prompt(record, payload)
    yield {
        "ts": start, "request_id": f"litellm:{rid}", "use_case": _use_case(meta, body), "model_id": mid,
        "role": "primary", "messages": as_messages(msgs), "request": request_part(body),
        "answer": None if failed else as_answer(record.get("response")),
        "input_tokens": num(record.get("prompt_tokens"), "prompt_tokens"),
        "output_tokens": num(record.get("completion_tokens"), "completion_tokens"),
        "latency_ms": (end - start) / 1000 if start is not None and end is not None and end >= start else None,
        "cost_usd": num(record.get("response_cost") if payload else record.get("spend"), "cost", float),
        "status": "error" if failed else "ok", "error": err,
        "metadata": {"source": NAME, "request_id": rid, "api_base": record.get("api_base") or None,
                     "model_group": record.get("model_group") or None},
    }
