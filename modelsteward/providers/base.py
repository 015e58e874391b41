"""The provider interface: how one chat model is called, plain and streamed.

``ChatProvider`` is the small surface every caller uses (evals, agent, fine-tuning checks):
``chat()`` returns a ``ChatResult``; ``stream()`` yields ``StreamChunk`` deltas, the last chunk
carrying ``finish_reason`` and token usage.  The gateway also uses the OpenAI-shaped pair
``openai_completion(body)`` / ``openai_stream(body)`` so every request field (tools,
response_format, ...) passes through untouched to HTTP upstreams.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict, Unpack, runtime_checkable

__all__ = [
    "ChatResult",
    "StreamChunk",
    "ChatProvider",
    "Message",
    "SamplingArgs",
    "SAMPLING_KEYS",
    "sampling_params",
    "openai_sampling",
    "openai_response",
    "openai_chunk",
]

Message = dict[str, Any]


class SamplingArgs(TypedDict, total=False):
    """The sampling keywords every provider's ``chat`` and ``stream`` take -- their one definition.
    An HTTP provider also forwards any other OpenAI request field given (``frequency_penalty`` ...,
    e.g. from a model's ``meta["sampling"]``); the local provider ignores those."""

    max_tokens: int | None
    temperature: float | None
    top_p: float | None
    stop: str | Sequence[str] | None
    seed: int | None


SAMPLING_KEYS: tuple[str, ...] = tuple(SamplingArgs.__annotations__)


@dataclass
class ChatResult:
    """One finished chat completion."""

    text: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    finish_reason: str
    model_id: str
    raw: dict[str, Any] | None = field(default=None, repr=False)  # the OpenAI-shaped response, when one exists


@dataclass
class StreamChunk:
    """A streamed text delta; the final chunk has ``finish_reason`` and the token counts set."""

    text: str = ""
    finish_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None

    @property
    def final(self) -> bool:
        return self.finish_reason is not None


@runtime_checkable
class ChatProvider(Protocol):
    """A callable chat model (HTTP or local)."""

    model_id: str

    async def chat(self, messages: Sequence[Message], **params: Unpack[SamplingArgs]) -> ChatResult: ...

    def stream(self, messages: Sequence[Message], **params: Unpack[SamplingArgs]) -> AsyncIterator[StreamChunk]: ...

    async def openai_completion(self, body: dict[str, Any]) -> dict[str, Any]: ...

    def openai_stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]: ...

    async def aclose(self) -> None: ...


def sampling_params(**params: Any) -> dict[str, Any]:
    """The OpenAI request fields for ``SamplingArgs`` (and any pass-through field), leaving out the
    ones not given; ``stop`` as a list."""
    out: dict[str, Any] = {k: v for k, v in params.items() if v is not None}
    if "stop" in out:
        out["stop"] = [out["stop"]] if isinstance(out["stop"], str) else list(out["stop"])
    return out


def openai_sampling(body: dict[str, Any]) -> SamplingArgs:
    """The ``SamplingArgs`` of an OpenAI request body (``max_completion_tokens`` over ``max_tokens``)."""
    return SamplingArgs(max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
                        temperature=body.get("temperature"), top_p=body.get("top_p"), stop=body.get("stop"),
                        seed=body.get("seed"))


def _cid() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def openai_response(
    text: str, *, model: str, input_tokens: int, output_tokens: int, finish_reason: str = "stop",
    response_id: str | None = None,
) -> dict[str, Any]:
    """A ``chat.completion`` object in the OpenAI wire format."""
    return {
        "id": response_id or _cid(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason,
             "logprobs": None}
        ],
        "usage": {
            "prompt_tokens": input_tokens,
            "completion_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        },
    }


def openai_chunk(
    response_id: str, model: str, created: int, *, text: str | None = None, role: str | None = None,
    finish_reason: str | None = None, usage: dict[str, int] | None = None, empty_choices: bool = False,
) -> dict[str, Any]:
    """A ``chat.completion.chunk`` object in the OpenAI wire format."""
    chunk: dict[str, Any] = {"id": response_id, "object": "chat.completion.chunk", "created": created, "model": model}
    if empty_choices:
        chunk["choices"] = []
    else:
        delta: dict[str, Any] = {}
        if role is not None:
            delta["role"] = role
        if text is not None:
            delta["content"] = text
        chunk["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]
    if usage is not None:
        chunk["usage"] = usage
    return chunk
