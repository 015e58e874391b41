"""The gateway's log row: one builder for every row the gateway writes.

Answers (plain or streamed), failed attempts and shadow calls all log the same shape
(``exchange``'s canonical one): the request's ``messages``, the rest of the body that shapes the
answer as ``request`` (``exchange.request_part``: tools, tool_choice, response_format,
parallel_tool_calls, sampling parameters) and the whole ``answer`` (``exchange.Answer``: content,
tool_calls, refusal, finish_reason; the log store splits it into ``response`` and ``answer``).
A failed attempt has no answer (``response`` NULL); a stream that failed midway logs what the
client received until then, with ``status`` error.  Token usage is read here only (``tokens``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from modelsteward.exchange import Answer, answer_part, request_part

if TYPE_CHECKING:
    from modelsteward.gateway.routing import ModelInfo

__all__ = ["tokens", "gateway_row"]


def tokens(usage: Mapping[str, Any] | None) -> tuple[int, int]:
    """(prompt, completion) tokens of an OpenAI ``usage`` object (0 for what is missing)."""
    if not usage:
        return 0, 0
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


_FINISHED: dict[Any, str] = {}  # finish reason -> the ``answer`` column of a plain text answer (JSON text)


def _columns(answer: Answer | None) -> tuple[str | None, Any]:
    """(``response``, ``answer``) columns; a plain text answer (the common case) without a dict
    round-trip: its ``answer`` column is the same JSON text for every answer with that finish reason."""
    if answer is None:
        return None, None
    content = answer.get("content")
    if len(answer) == 2 and type(content) is str and "finish_reason" in answer:
        reason = answer["finish_reason"]
        text = _FINISHED.get(reason)
        if text is None:
            if reason is None or len(_FINISHED) >= 64:
                return answer_part(answer)
            text = _FINISHED[reason] = orjson.dumps({"finish_reason": reason}).decode()
        return content, text
    return answer_part(answer)


def gateway_row(*, ts: float, request_id: str, use_case: str, model_id: str, role: str, body: Mapping[str, Any],
                latency_ms: float, metadata: dict[str, Any] | None, answer: Answer | None = None,
                usage: Mapping[str, Any] | None = None, info: ModelInfo | None = None, error: str | None = None,
                min_output_tokens: int = 0) -> dict[str, Any]:
    """One log row.  ``error`` makes it a failed row; ``info`` prices the tokens of ``usage``;
    ``min_output_tokens`` stands in for the output tokens when the upstream reported none (a
    stream without usage: its pieces)."""
    n_in, n_out = tokens(usage)
    n_out = n_out or min_output_tokens
    response, rest = _columns(answer)
    return {
        "ts": ts, "request_id": request_id, "use_case": use_case, "model_id": model_id, "role": role,
        "messages": body.get("messages"), "request": request_part(body), "response": response, "answer": rest,
        "input_tokens": n_in, "output_tokens": n_out, "latency_ms": latency_ms,
        "cost_usd": info.cost(n_in, n_out) if info is not None else 0.0,
        "status": "error" if error is not None else "ok", "error": error[:2000] if error is not None else None,
        "metadata": metadata,
    }
