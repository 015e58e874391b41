"""OpenAI Batch files: the input file (``{custom_id, method, url, body}`` per line) joined on
``custom_id`` with its output file (``{id, custom_id, response: {status_code, request_id, body},
error}`` per line; the error file has the same shape and can be given instead or concatenated).

``steward logs import INPUT.jsonl --output-file OUTPUT.jsonl``.  A row per output line of a
``/v1/chat/completions`` (or ``/v1/completions``) request: ``request_id`` ``openai-batch:<id>`` (the
output line's ``batch_req_...`` id, unique across batches; ``custom_id`` is only unique within one),
model ``openai:<body.model>`` of the request, messages and the rest of the request (tools,
tool_choice, response_format, sampling parameters) from the request body, the whole answer (text,
tool calls, finish reason), tokens and
``created`` time from the response body, status ``error`` for an ``error`` or an HTTP status >= 400.
Batches carry no per-request latency (``latency_ms`` stays empty) nor cost.  Requests with no
output line (expired or cancelled batches) are skipped as ``no_output``.  The input file is read
whole (OpenAI caps it at 50,000 requests); the output file is streamed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from modelsteward.exchange import request_part
from modelsteward.storage.importers.base import RecordError, Skip, as_answer, as_messages, model_id, num

NAME = "openai-batch"
ENDPOINTS = frozenset(("/v1/chat/completions", "/v1/completions"))


def sniff(record: Any) -> bool:
    """An input line (the file ``FILE`` names)."""
    return isinstance(record, dict) and "custom_id" in record and "body" in record and "url" in record


def sniff_output(record: Any) -> bool:
    return isinstance(record, dict) and "custom_id" in record and ("response" in record or "error" in record)


def request(record: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(custom_id, request) of one input line, checked."""
    cid, body = record.get("custom_id"), record.get("body")
    if not cid or not isinstance(cid, str):
        raise RecordError("a batch input line has no custom_id.")
    if not isinstance(body, dict):
        raise RecordError(f"request {cid}: body must be an object.")
    return cid, record


def rows(record: dict[str, Any], requests: dict[str, dict[str, Any]]) -> Iterator[dict[str, Any] | Skip]:
    """The row of one output line, joined with its request (``requests`` loses the entry it used)."""
    if not sniff_output(record):
        raise RecordError("not a batch output line ({id, custom_id, response, error} expected).")
    cid = record["custom_id"]
    req = requests.pop(cid, None)
    if req is None:
        yield Skip("no_input")
        return
    url = req.get("url")
    if url not in ENDPOINTS:
        yield Skip(f"endpoint_{url}")
        return
    body = req["body"]
    resp = record.get("response") or {}
    if not isinstance(resp, dict):
        raise RecordError(f"output {cid}: response must be an object.")
    rbody = resp.get("body") or {}
    if not isinstance(rbody, dict):
        raise RecordError(f"output {cid}: response.body must be an object.")
    usage = rbody.get("usage") or {}
    err = record.get("error")
    code = resp.get("status_code")
    failed = bool(err) or (isinstance(code, int) and code >= 400) or bool(rbody.get("error"))
    message = None
    if failed:
        e = err or rbody.get("error") or {}
        message = (e.get("message") if isinstance(e, dict) else str(e)) or f"HTTP {code}"
    mid = model_id("openai", body.get("model") or rbody.get("model"))
    if not mid:
        yield Skip("no_model")
        return
    meta_in: dict[str, Any] = body["metadata"] if isinstance(body.get("metadata"), dict) else {}
    msgs = as_messages(body.get("messages")) if "messages" in body else as_messages(body.get("prompt"))
    yield {
        "ts": rbody.get("created"), "request_id": f"openai-batch:{record.get('id') or cid}",
        "use_case": meta_in.get("use_case"), "model_id": mid, "role": "primary", "messages": msgs,
        "request": request_part(body), "answer": None if failed else as_answer(rbody),
        "input_tokens": num(usage.get("prompt_tokens"), "usage.prompt_tokens"),
        "output_tokens": num(usage.get("completion_tokens"), "usage.completion_tokens"),
        "latency_ms": None, "cost_usd": None, "status": "error" if failed else "ok", "error": message,
        "metadata": {"source": NAME, "custom_id": cid, "openai_request_id": resp.get("request_id"),
                     "response_model": rbody.get("model")},
    }
