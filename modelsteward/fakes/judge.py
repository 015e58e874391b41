"""A local OpenAI-compatible server for the eval judge path: scripted verdicts and scripted answers.

``FakeJudge(verdict=..., answers=...)`` serves ``POST /v1/chat/completions`` and ``GET /v1/models``
on ``127.0.0.1:<free port>`` from a background thread.

- A request whose system prompt is the eval judge's (it shows ``[Answer A]`` / ``[Answer B]``) gets
  a verdict: ``verdict`` is ``"A"``, ``"B"``, ``"TIE"`` (always that, e.g. a position-biased judge),
  ``"prefer:<text>"`` (the answer containing ``<text>`` wins, TIE when both or neither do),
  ``"longer"`` (the longer answer wins), or a callable ``(answer_a, answer_b) -> str``.
- Any other request is answered from ``answers[model name]`` (a string, or a callable taking the last
  user message), so the same server can stand in for the candidate and baseline models.
- ``finish_reasons[model name]`` sets that model's ``finish_reason`` (default ``stop``; ``length``
  for an upstream that stops short).
- ``fail_status=503`` makes every request fail with that HTTP status (an unhealthy judge).
Every request body is kept in ``.requests``.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeJudge"]

_ANSWERS = re.compile(r"\[Answer A\]\n(.*?)\n\n\[Answer B\]\n(.*?)\n\nWhich answer is better", re.DOTALL)


class FakeJudge:
    """A scripted OpenAI-compatible judge (and answer) server; use as a context manager."""

    def __init__(self, verdict: str | Callable[[str, str], str] = "TIE", *,
                 answers: dict[str, str | Callable[[str], str]] | None = None, fail_status: int | None = None,
                 finish_reasons: dict[str, str] | None = None) -> None:
        self.verdict = verdict
        self.answers = dict(answers or {})
        self.finish_reasons = dict(finish_reasons or {})
        self.fail_status = fail_status
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ behaviour
    def decide(self, a: str, b: str) -> str:
        v = self.verdict
        if callable(v):
            return v(a, b)
        if v == "longer":
            return "A" if len(a) > len(b) else "B" if len(b) > len(a) else "TIE"
        if v.startswith("prefer:"):
            needle = v.split(":", 1)[1].lower()
            ina, inb = needle in a.lower(), needle in b.lower()
            return "A" if ina and not inb else "B" if inb and not ina else "TIE"
        return v

    def reply(self, body: dict[str, Any]) -> str:
        messages = body.get("messages") or []
        text = "\n".join(str(m.get("content", "")) for m in messages)
        m = _ANSWERS.search(text)
        if m and any(msg.get("role") == "system" and "impartial judge" in str(msg.get("content", "")) for msg in messages):
            return self.decide(m.group(1), m.group(2))
        answer = self.answers.get(str(body.get("model")), "I am a fake model.")
        last = next((str(x.get("content", "")) for x in reversed(messages) if x.get("role") == "user"), "")
        return answer(last) if callable(answer) else answer

    # ------------------------------------------------------------------ server
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                if self.path.rstrip("/").endswith("/models"):
                    names = sorted({"judge", *fake.answers})
                    self._send(200, {"object": "list", "data": [{"id": n, "object": "model"} for n in names]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self._send(400, {"error": {"message": "invalid JSON body", "type": "invalid_request_error"}})
                    return
                with fake._lock:
                    fake.requests.append(body)
                if fake.fail_status:
                    self._send(fake.fail_status, {"error": {"message": "judge unavailable", "type": "server_error"}})
                    return
                text = fake.reply(body)
                words = max(1, len(text.split()))
                prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])
                self._send(200, {
                    "id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
                    "model": body.get("model", "judge"),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "finish_reason": fake.finish_reasons.get(str(body.get("model")), "stop"),
                                 "logprobs": None}],
                    "usage": {"prompt_tokens": prompt, "completion_tokens": words, "total_tokens": prompt + words},
                })

        return Handler

    def start(self) -> FakeJudge:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-judge", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeJudge is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def judge_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests
                if any("impartial judge" in str(m.get("content", "")) for m in r.get("messages") or [])]

    def __enter__(self) -> FakeJudge:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
