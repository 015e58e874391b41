"""The OpenAI-compatible HTTP provider (OpenAI, OpenRouter, Anthropic, Google, Ollama, vLLM, any URL).

Plain completions go through ``providers/transport.py`` (``fasthttp``, a minimal pooled HTTP/1.1
client on httptools, unless ``STEWARD_HTTP_TRANSPORT=aiohttp``) and
streams through aiohttp (one pooled ``ClientSession`` per event loop), bodies through orjson:
the gateway's hot path goes through here, and the client library alone moves its throughput by
an order of magnitude (issue 3's benchmark).  Upstream failures become ``UpstreamError(status, retryable)``:
429, 408, 409, 425 and 5xx, timeouts and connection errors are retryable; other 4xx are not.
An upstream that ignores ``"stream": true`` and answers one whole ``chat.completion`` is turned
into a stream (``whole_answer_as_chunks``, as LiteLLM does); one that sends nothing at all is an
upstream error (retryable), never an empty stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, Unpack

import aiohttp
import aiohttp.http_exceptions
import orjson

from modelsteward.errors import UpstreamError
from modelsteward.providers.sessions import client_session, close_sessions
from modelsteward.providers.transport import TransportError, get_transport
from modelsteward.providers.base import ChatResult, Message, SamplingArgs, StreamChunk, sampling_params
from modelsteward.providers.endpoints import API_KEY_ENV, DEFAULT_BASE_URLS, resolve_api_key, resolve_base_url

__all__ = [
    "OpenAIHTTPProvider",
    "DEFAULT_BASE_URLS",
    "API_KEY_ENV",
    "resolve_base_url",
    "resolve_api_key",
    "client_session",
    "close_sessions",
    "RETRYABLE_STATUSES",
    "whole_answer_as_chunks",
]

RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})
MAX_SSE_LINE = 2 << 20  # bytes: the longest event-stream line read from an upstream (aiohttp: twice read_bufsize)

MAX_WHOLE_ANSWER = 32 << 20  # bytes: the largest whole JSON answer taken from an upstream that ignores "stream"
_SSE_FIELDS = (b"event:", b"id:", b"retry:", b":")


def whole_answer_as_chunks(resp: dict[str, Any]) -> list[dict[str, Any]]:
    """A ``chat.completion`` as ``chat.completion.chunk`` objects: per choice one chunk with the
    role and the whole content (and tool calls, indexed), then one chunk with every choice's
    ``finish_reason`` and the answer's ``usage``; the caller ends the stream with ``[DONE]``."""
    base = {"id": resp.get("id") or "chatcmpl-whole", "object": "chat.completion.chunk",
            "created": resp.get("created") or int(time.time()), "model": resp.get("model") or ""}
    if resp.get("system_fingerprint"):
        base["system_fingerprint"] = resp["system_fingerprint"]
    chunks: list[dict[str, Any]] = []
    finals: list[dict[str, Any]] = []
    for n, choice in enumerate(resp.get("choices") or []):
        index = choice.get("index", n) if isinstance(choice, dict) else n
        msg = (choice.get("message") or {}) if isinstance(choice, dict) else {}
        delta: dict[str, Any] = {"role": msg.get("role") or "assistant", "content": msg.get("content")}
        for extra in ("refusal", "reasoning_content"):
            if msg.get(extra) is not None:
                delta[extra] = msg[extra]
        if msg.get("tool_calls"):
            delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(msg["tool_calls"])]
        chunks.append({**base, "choices": [{"index": index, "delta": delta, "finish_reason": None, "logprobs": None}]})
        finals.append({"index": index, "delta": {}, "finish_reason": choice.get("finish_reason") or "stop",
                       "logprobs": None})
    last: dict[str, Any] = {**base, "choices": finals}
    if resp.get("usage"):
        last["usage"] = resp["usage"]
    return [*chunks, last]


def _error_message(status: int, body: bytes) -> str:
    try:
        data = orjson.loads(body)
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
        if isinstance(data, dict) and data.get("detail"):
            return str(data["detail"])
    except orjson.JSONDecodeError:
        pass
    text = body.decode("utf-8", "replace").strip()
    return text[:300] or f"HTTP {status}"


class OpenAIHTTPProvider:
    """Calls ``POST {base_url}/chat/completions`` with the upstream's own model name."""

    def __init__(
        self,
        model_id: str,
        provider_model_id: str,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        connect_timeout_s: float = 5.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.model_id = model_id
        self.provider_model_id = provider_model_id
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + "/chat/completions"
        self.timeout_s, self.connect_timeout_s = timeout_s, connect_timeout_s
        self.timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=connect_timeout_s)
        # streams: no total limit (a long healthy answer runs as long as it keeps sending); the
        # timeout applies to each wait for the next bytes instead (idle timeout)
        self.stream_timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s, sock_read=timeout_s)
        self.transport = get_transport()  # plain completions (providers/transport.py); streams: aiohttp
        self.headers = {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"

    def __repr__(self) -> str:
        return f"OpenAIHTTPProvider({self.model_id!r}, {self.url!r})"

    # ---------------------------------------------------------------- OpenAI-shaped (gateway)
    def _payload(self, body: dict[str, Any], stream: bool) -> bytes:
        payload = dict(body)
        payload["model"] = self.provider_model_id
        if stream:
            payload["stream"] = True
            opts = dict(payload.get("stream_options") or {})
            opts["include_usage"] = True
            payload["stream_options"] = opts
        else:
            payload.pop("stream", None)
            payload.pop("stream_options", None)
        return orjson.dumps(payload)

    def _fail(self, status: int, body: bytes) -> UpstreamError:
        msg = _error_message(status, body)
        retryable = status in RETRYABLE_STATUSES or status >= 500
        return UpstreamError(f"{self.model_id} answered HTTP {status}: {msg}", status=status, retryable=retryable,
                             model_id=self.model_id)

    async def openai_completion(self, body: dict[str, Any]) -> dict[str, Any]:
        """Send an OpenAI request body (its ``model`` replaced); return the parsed response."""
        data = self._payload(body, stream=False)
        try:
            status, raw = await self.transport.post(self.url, data, self.headers, timeout=self.timeout_s,
                                                     connect_timeout=self.connect_timeout_s)
        except TransportError as exc:
            if exc.timeout:
                raise UpstreamError(f"{self.model_id} timed out: {exc}", status=504, retryable=True,
                                    model_id=self.model_id) from exc
            raise UpstreamError(f"{self.model_id} unreachable at {self.base_url}: {exc}", status=502,
                                retryable=True, model_id=self.model_id) from exc
        if status >= 400:
            raise self._fail(status, raw)
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(f"{self.model_id} answered non-JSON: {raw[:200]!r}", status=502, retryable=True,
                                model_id=self.model_id) from exc
        if not isinstance(parsed, dict) or not parsed.get("choices"):
            raise UpstreamError(f"{self.model_id} answered without choices: {raw[:200]!r}", status=502,
                                retryable=True, model_id=self.model_id)
        return parsed

    async def openai_stream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Stream ``chat.completion.chunk`` dicts (usage requested from the upstream)."""
        data = self._payload(body, stream=True)
        headers = {**self.headers, "Accept": "text/event-stream"}
        try:
            async with client_session().post(self.url, data=data, headers=headers, timeout=self.stream_timeout,
                                             read_bufsize=MAX_SSE_LINE // 2) as resp:
                if resp.status >= 400:
                    raise self._fail(resp.status, await resp.read())
                sent = False
                other: list[bytes] = []  # lines that are not server-sent events: a whole JSON answer?
                size = 0
                while True:
                    line = await self._read_line(resp)
                    if not line:
                        break
                    line = line.strip()
                    if not line.startswith(b"data:"):
                        if line and not sent and not line.startswith(_SSE_FIELDS):
                            size += len(line)
                            if size > MAX_WHOLE_ANSWER:
                                raise UpstreamError(f"{self.model_id} answered a stream request with over "
                                                    f"{MAX_WHOLE_ANSWER} bytes that are not server-sent events",
                                                    status=502, retryable=False, model_id=self.model_id)
                            other.append(line)
                        continue
                    payload = line[5:].strip()
                    if payload == b"[DONE]":
                        break
                    try:
                        chunk = orjson.loads(payload)
                    except orjson.JSONDecodeError:
                        continue
                    if isinstance(chunk, dict) and "error" in chunk and "choices" not in chunk:
                        err = chunk["error"]
                        msg = err.get("message") if isinstance(err, dict) else str(err)
                        raise UpstreamError(f"{self.model_id} failed mid-stream: {msg}", status=502, retryable=True,
                                            model_id=self.model_id)
                    sent = True
                    yield chunk
                if not sent:
                    # an upstream that ignores "stream": true answers one whole chat.completion: turn it
                    # into the stream the client asked for (as LiteLLM does), never an empty "ok" stream
                    for chunk in self._whole_as_chunks(b"\n".join(other)):
                        yield chunk
        except asyncio.TimeoutError as exc:
            raise UpstreamError(f"{self.model_id} sent nothing for {self.timeout_s:g}s (stream idle timeout; "
                                "set the model's metadata timeout_s to wait longer)", status=504,
                                retryable=True, model_id=self.model_id) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"{self.model_id} unreachable at {self.base_url}: {exc}", status=502,
                                retryable=True, model_id=self.model_id) from exc

    def _whole_as_chunks(self, raw: bytes) -> list[dict[str, Any]]:
        """A whole ``chat.completion`` sent to a stream request, as the chunks of a stream."""
        if not raw.strip():
            raise UpstreamError(f"{self.model_id} ended the stream without sending anything", status=502,
                                retryable=True, model_id=self.model_id)
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"{self.model_id} answered a stream request with neither server-sent events nor "
                                f"JSON: {raw[:200]!r}", status=502, retryable=True, model_id=self.model_id) from None
        if isinstance(parsed, dict) and "error" in parsed and not parsed.get("choices"):
            err = parsed["error"]
            msg = err.get("message") if isinstance(err, dict) else str(err)
            raise UpstreamError(f"{self.model_id} failed: {msg}", status=502, retryable=True, model_id=self.model_id)
        if not isinstance(parsed, dict) or not parsed.get("choices"):
            raise UpstreamError(f"{self.model_id} answered a stream request without choices: {raw[:200]!r}",
                                status=502, retryable=True, model_id=self.model_id)
        return whole_answer_as_chunks(parsed)

    async def _read_line(self, resp: aiohttp.ClientResponse) -> bytes:
        """The next line of the event stream; an over-long line is an upstream error, not a crash."""
        try:
            return await resp.content.readline()
        except (ValueError, aiohttp.http_exceptions.HttpProcessingError) as exc:
            raise UpstreamError(f"{self.model_id} sent an SSE line longer than {MAX_SSE_LINE} bytes; "
                                "the stream was stopped", status=502, retryable=False,
                                model_id=self.model_id) from exc

    # ---------------------------------------------------------------- plain interface
    async def chat(self, messages: Sequence[Message], **params: Unpack[SamplingArgs]) -> ChatResult:
        body = {"messages": list(messages), **sampling_params(**params)}
        t0 = time.perf_counter()
        resp = await self.openai_completion(body)
        latency = (time.perf_counter() - t0) * 1000
        choice = resp["choices"][0]
        usage = resp.get("usage") or {}
        return ChatResult(
            text=(choice.get("message") or {}).get("content") or "",
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
            latency_ms=latency,
            finish_reason=choice.get("finish_reason") or "stop",
            model_id=self.model_id,
            raw=resp,
        )

    async def stream(self, messages: Sequence[Message], **params: Unpack[SamplingArgs]) -> AsyncIterator[StreamChunk]:
        body = {"messages": list(messages), **sampling_params(**params)}
        finish: str | None = None
        usage: dict[str, Any] = {}
        async for chunk in self.openai_stream(body):
            if chunk.get("usage"):
                usage = chunk["usage"]
            for choice in chunk.get("choices") or []:
                text = (choice.get("delta") or {}).get("content")
                if text:
                    yield StreamChunk(text=text)
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
        yield StreamChunk(
            finish_reason=finish or "stop",
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
        )

    async def aclose(self) -> None:
        """Nothing per provider: the pooled session belongs to the loop (``close_sessions``)."""
