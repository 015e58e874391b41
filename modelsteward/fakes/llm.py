"""A scripted OpenAI-compatible chat server: replays tool calls (or faults) at the wire.

``ScriptedLLM(script)`` serves ``POST /v1/chat/completions`` and ``GET /v1/models`` on
``127.0.0.1:<free port>`` from a background thread.  Each completion request takes the next step
of the script; when the script is used up it answers a plain "Done." message.  A step is a dict:

- ``{"tool_calls": [{"name": "scan", "arguments": {...} | "raw json text"}], "content": "..."}``
- ``{"content": "text"}`` (a final answer)
- ``{"status": 500, "body": "..."}`` (an HTTP error), ``{"raw": "not json"}`` (a garbage body)

Every request body is kept in ``.requests`` so tests can check what the model was shown.
Run standalone: ``python -m modelsteward.fakes.llm SCRIPT.json [--port N]``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["ScriptedLLM", "completion_body"]


def completion_body(step: dict[str, Any], model: str) -> dict[str, Any]:
    """The OpenAI chat-completion JSON for one script step."""
    calls = []
    for i, c in enumerate(step.get("tool_calls") or []):
        args = c.get("arguments", {})
        calls.append({
            "id": c.get("id") or f"call_{uuid.uuid4().hex[:8]}_{i}",
            "type": "function",
            "function": {"name": c["name"], "arguments": args if isinstance(args, str) else json.dumps(args)},
        })
    message: dict[str, Any] = {"role": "assistant", "content": step.get("content")}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


class ScriptedLLM:
    """The scripted server; a context manager.  ``url`` is the ``OPENAI_BASE_URL`` to use."""

    def __init__(self, script: list[dict[str, Any]] | None = None, *, port: int = 0, api_key: str | None = None) -> None:
        self.script: list[dict[str, Any]] = list(script or [])
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self._pos = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _make_handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/v1"

    @property
    def served(self) -> int:
        return self._pos

    def extend(self, steps: list[dict[str, Any]]) -> None:
        with self._lock:
            self.script.extend(steps)

    def next_step(self, body: Any) -> dict[str, Any]:
        with self._lock:
            self.requests.append(body)
            if self._pos < len(self.script):
                step = self.script[self._pos]
                self._pos += 1
                return step
            return {"content": "Done."}

    def start(self) -> ScriptedLLM:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-llm", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ScriptedLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _make_handler(fake: ScriptedLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: Any, ctype: str = "application/json") -> None:
            data = body if isinstance(body, bytes) else (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorised(self) -> bool:
            if fake.api_key is None:
                return True
            if self.headers.get("Authorization", "") == f"Bearer {fake.api_key}":
                return True
            self._send(401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                                       "code": "invalid_api_key"}})
            return False

        def do_GET(self) -> None:  # noqa: N802
            if not self._authorised():
                return
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": "scripted", "object": "model", "owned_by": "fake"}]})
            else:
                self._send(404, {"error": {"message": f"Unknown path {self.path}", "type": "invalid_request_error"}})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not self._authorised():
                return
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, {"error": {"message": f"Unknown path {self.path}", "type": "invalid_request_error"}})
                return
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                self._send(400, {"error": {"message": "We could not parse the JSON body of your request.",
                                           "type": "invalid_request_error"}})
                return
            step = fake.next_step(body)
            if "status" in step:
                self._send(int(step["status"]), step.get("body") or {"error": {"message": "scripted failure",
                                                                               "type": "server_error"}})
            elif "raw" in step:
                self._send(200, str(step["raw"]), ctype=step.get("content_type", "application/json"))
            else:
                self._send(200, completion_body(step, str(body.get("model") or "scripted")))

    return Handler


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Scripted OpenAI-compatible chat server.")
    ap.add_argument("script", type=Path, help="JSON list of steps")
    ap.add_argument("--port", type=int, default=0)
    ns = ap.parse_args(argv)
    with ScriptedLLM(json.loads(ns.script.read_text(encoding="utf-8")), port=ns.port) as fake:
        print(fake.url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
