"""An instant OpenAI-compatible upstream for gateway benchmarks and tests (raw asyncio + httptools).

Answers ``POST /v1/chat/completions`` with a fixed ``chat.completion`` (usage included; with
``"stream": true`` a short SSE stream ending in ``[DONE]``), keep-alive, in a few microseconds, so
a benchmark measures the gateway rather than the upstream (llm-katan, the functional fake, runs
FastAPI and is an order of magnitude slower).  Optional ``latency_ms`` and ``error_rate`` (HTTP
500) for fault tests, and ``ignore_stream`` (answer the whole JSON ``chat.completion`` even when
``"stream": true`` was asked, as some OpenAI-compatible servers do) and ``stream_gap_ms`` (send a
stream's events that far apart, for tests that act while a stream is open).

Requests with ``tools`` (or legacy ``functions``) or a ``response_format`` get a built answer
instead (``fakes.answers``): a deterministic call of an offered function with arguments that
match its parameter schema (streamed as OpenAI streams tool calls: id and name, then the
arguments in fragments), or a JSON object with a ``json_schema``'s required properties.  A model
name containing ``wrong`` (or ``wrong=True`` / ``--wrong``) makes it the wrong caller: another
function, arguments and JSON that break the schema (for tests of gates that must fail it).
``record=True`` keeps every request body in ``.bodies``; ``v1_only=True`` answers 404 outside
``/v1/`` (as vLLM does: a base URL registered without ``/v1`` fails there).

Run: ``python -m modelsteward.fakes.upstream --port 9100 [--latency-ms N] [--error-rate P] [--ignore-stream] [--wrong] [--v1-only]``,
or ``InstantUpstream().start()`` in a background thread.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import threading
from typing import Any

import httptools
import orjson

from modelsteward.fakes import answers

__all__ = ["InstantUpstream", "RESPONSE", "main"]

RESPONSE = orjson.dumps({
    "id": "chatcmpl-instant", "object": "chat.completion", "created": 1700000000, "model": "instant",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from the instant upstream."},
                 "finish_reason": "stop", "logprobs": None}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
})
_STREAM = b"".join(
    b"data: " + orjson.dumps(c) + b"\n\n" for c in (
        {"id": "chatcmpl-instant", "object": "chat.completion.chunk", "created": 1700000000, "model": "instant",
         "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
        {"id": "chatcmpl-instant", "object": "chat.completion.chunk", "created": 1700000000, "model": "instant",
         "choices": [{"index": 0, "delta": {"content": "Hello from the instant upstream."}, "finish_reason": None}]},
        {"id": "chatcmpl-instant", "object": "chat.completion.chunk", "created": 1700000000, "model": "instant",
         "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {"id": "chatcmpl-instant", "object": "chat.completion.chunk", "created": 1700000000, "model": "instant",
         "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}},
    )
) + b"data: [DONE]\n\n"
_STREAM_EVENTS = [e + b"\n\n" for e in _STREAM.split(b"\n\n") if e]
_CHUNKED_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
                 b"Connection: keep-alive\r\n\r\n")
_ERROR = orjson.dumps({"error": {"message": "injected failure", "type": "server_error", "code": "injected"}})


def _http(status: bytes, ctype: bytes, body: bytes) -> bytes:
    return (b"HTTP/1.1 " + status + b"\r\nContent-Type: " + ctype + b"\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\nConnection: keep-alive\r\n\r\n" + body)


_OK = _http(b"200 OK", b"application/json", RESPONSE)
_OK_STREAM = _http(b"200 OK", b"text/event-stream", _STREAM)
_FAIL = _http(b"500 Internal Server Error", b"application/json", _ERROR)
_MODELS = _http(b"200 OK", b"application/json", orjson.dumps(
    {"object": "list", "data": [{"id": "instant", "object": "model", "created": 0, "owned_by": "fake"}]}))
_NOT_FOUND = _http(b"404 Not Found", b"application/json", orjson.dumps({"error": {"message": "not found"}}))


class _Proto(asyncio.Protocol):
    def __init__(self, server: InstantUpstream) -> None:
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        body, self.body = b"".join(self.body), []
        self.server.requests += 1
        if self.server.v1_only and not self.url.startswith(b"/v1/"):
            out = _NOT_FOUND
        elif self.url.endswith(b"/models"):
            out = _MODELS
        elif not self.url.endswith(b"/chat/completions"):
            out = _NOT_FOUND
        elif self.server.error_rate and random.random() < self.server.error_rate:
            out = _FAIL
        else:
            wants_stream = b'"stream":true' in body.replace(b" ", b"")
            built = None
            if self.server.record or answers.wants_dynamic(body):
                built = self._built(body, wants_stream and not self.server.ignore_stream)
            if built is not None:
                out = built
            elif wants_stream and self.server.stream_gap_ms and not self.server.ignore_stream:
                self._send_slowly()
                return
            else:
                out = _OK_STREAM if wants_stream and not self.server.ignore_stream else _OK
        if self.server.latency_ms:
            asyncio.get_running_loop().call_later(self.server.latency_ms / 1000, self._send, out)
        else:
            self._send(out)

    def _built(self, raw: bytes, stream: bool) -> bytes | None:
        """A built answer (``fakes.answers``) for a request with tools or a response format; None
        for a plain one (the fixed answer).  Records the body when asked."""
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        if self.server.record:
            self.server.bodies.append(body)
        if not isinstance(body, dict) or not (body.get("tools") or body.get("functions") or body.get("response_format")):
            return None
        model, wrong = str(body.get("model") or "instant"), self.server.wrong
        if stream:
            sse = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in answers.chunks(body, model, wrong))
            return _http(b"200 OK", b"text/event-stream", sse + b"data: [DONE]\n\n")
        return _http(b"200 OK", b"application/json", orjson.dumps(answers.completion(body, model, wrong)))

    def _send_slowly(self) -> None:
        """The stream's events one by one, ``stream_gap_ms`` apart (chunked transfer encoding)."""
        loop = asyncio.get_running_loop()
        gap = self.server.stream_gap_ms / 1000
        parts = [_CHUNKED_HEAD + b"%x\r\n%s\r\n" % (len(_STREAM_EVENTS[0]), _STREAM_EVENTS[0])]
        parts += [b"%x\r\n%s\r\n" % (len(e), e) for e in _STREAM_EVENTS[1:]]
        parts[-1] += b"0\r\n\r\n"
        for i, part in enumerate(parts):
            loop.call_later(self.server.latency_ms / 1000 + i * gap, self._send, part)

    def _send(self, out: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(out)


class InstantUpstream:
    """The server; ``start()`` runs it on a background thread, ``url`` is its ``/v1`` base."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, latency_ms: float = 0.0,
                 error_rate: float = 0.0, ignore_stream: bool = False, stream_gap_ms: float = 0.0,
                 wrong: bool = False, record: bool = False, v1_only: bool = False) -> None:
        self.host, self.port = host, port
        self.v1_only = v1_only  # like vLLM: only /v1/... paths answer (a base URL without /v1 gets 404)
        self.wrong, self.record = wrong, record
        self.bodies: list[Any] = []  # request bodies, with record=True
        self.latency_ms, self.error_rate = latency_ms, error_rate
        self.ignore_stream = ignore_stream
        self.stream_gap_ms = stream_gap_ms
        self.requests = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def _bind(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        return sock

    async def serve(self, sock: socket.socket | None = None) -> None:
        sock = sock or self._bind()
        server = await asyncio.get_running_loop().create_server(lambda: _Proto(self), sock=sock, backlog=4096)
        async with server:
            await server.serve_forever()

    def start(self) -> InstantUpstream:
        sock = self._bind()
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            task = loop.create_task(self.serve(sock))
            loop.call_soon(ready.set)
            try:
                loop.run_until_complete(task)
            except (asyncio.CancelledError, RuntimeError):
                pass
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="instant-upstream", daemon=True)
        self._thread.start()
        ready.wait(5)
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            def cancel() -> None:
                for t in asyncio.all_tasks(loop):
                    t.cancel()
            loop.call_soon_threadsafe(cancel)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> InstantUpstream:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m modelsteward.fakes.upstream", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9100)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--error-rate", type=float, default=0.0)
    p.add_argument("--ignore-stream", action="store_true", help="answer whole JSON even to stream requests")
    p.add_argument("--wrong", action="store_true", help="be the wrong tool caller (see fakes.answers)")
    p.add_argument("--v1-only", action="store_true", help="answer only /v1/... paths (404 elsewhere, as vLLM)")
    a = p.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    up = InstantUpstream(a.host, a.port, latency_ms=a.latency_ms, error_rate=a.error_rate, ignore_stream=a.ignore_stream,
                        wrong=a.wrong, v1_only=a.v1_only)
    print(f"instant upstream on {up.url}", flush=True)
    try:
        asyncio.run(up.serve())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
