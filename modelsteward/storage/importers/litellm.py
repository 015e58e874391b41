"""LiteLLM spend logs: rows of the proxy's ``LiteLLM_SpendLogs`` table (``GET /spend/logs``, or a
JSON/JSON-lines dump of the table).

Read: ``request_id`` (-> ``litellm:<request_id>``), ``model`` with ``custom_llm_provider`` (-> model id
``provider:model``), ``prompt_tokens``, ``completion_tokens``, ``spend`` (USD), ``startTime``/``endTime``
(latency), ``status`` (``success``/``failure``; a failure's message from
``metadata.error_information.error_message``), and ``messages``/``response`` where the proxy stored
them (``store_prompts_in_spend_logs``; an empty ``{}`` means not stored).  Calls that are not
completions (``call_type`` embedding, image generation, ...) are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from modelsteward.storage.importers.base import RecordError, Skip, as_messages, as_text, iso_us, model_id, num

NAME = "litellm"
COMPLETION_CALLS = frozenset(("completion", "acompletion", "text_completion", "atext_completion", "responses",
                              "aresponses", "anthropic_messages", "generate_content", "agenerate_content", ""))


def sniff(record: Any) -> bool:
    return (isinstance(record, dict) and "request_id" in record and "call_type" in record
            and ("spend" in record or "startTime" in record))


def _obj(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def rows(record: dict[str, Any]) -> Iterator[dict[str, Any] | Skip]:
    rid = record.get("request_id")
    if not rid:
        raise RecordError("a spend-log row has no request_id.")
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
    meta = _obj(record.get("metadata")) or {}
    if not isinstance(meta, dict):
        raise RecordError(f"spend-log row {rid}: metadata must be an object.")
    status = record.get("status") or meta.get("status") or "success"
    failed = status == "failure"
    err = None
    if failed:
        info = meta.get("error_information") or {}
        err = (info.get("error_message") if isinstance(info, dict) else None) or "failure"
    tags: dict[str, Any] = meta["requester_metadata"] if isinstance(meta.get("requester_metadata"), dict) else {}
    uc = meta.get("use_case") or tags.get("use_case")
    yield {
        "ts": start, "request_id": f"litellm:{rid}", "use_case": uc, "model_id": mid, "role": "primary",
        "messages": as_messages(_obj(record.get("messages"))), "response": as_text(_obj(record.get("response"))),
        "input_tokens": num(record.get("prompt_tokens"), "prompt_tokens"),
        "output_tokens": num(record.get("completion_tokens"), "completion_tokens"),
        "latency_ms": (end - start) / 1000 if start is not None and end is not None and end >= start else None,
        "cost_usd": num(record.get("spend"), "spend", float), "status": "error" if failed else "ok", "error": err,
        "metadata": {"source": NAME, "request_id": rid, "api_base": record.get("api_base") or None,
                     "model_group": record.get("model_group") or None},
    }
