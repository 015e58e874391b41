"""A tiny tool-calling OpenAI-compatible upstream (aiohttp on 127.0.0.1) and tool / JSON-schema traffic.

``ToolUpstream`` answers ``POST /v1/chat/completions`` by the request's ``model``:

- ``right``: a request offering tools gets a call to ``get_weather`` with the city of the question;
  a ``json_schema`` request gets ``{"name": ..., "age": <int>}``; anything else a plain answer;
- ``wrong``: the same text content, but a call to ``get_time`` (the wrong function) and
  ``{"name": ..., "age": "<digits>"}`` (a string where the schema wants an integer).
Every request body is kept in ``.requests``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import threading
import time
from typing import Any

from aiohttp import web

from modelsteward import exchange

CITIES = ["Paris", "Lyon", "Berlin", "Madrid", "Rome", "Oslo"]
PEOPLE = [("Alice", 31), ("Bob", 45), ("Chen", 27), ("Dara", 52), ("Emil", 38), ("Fatima", 29)]
TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Current weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                        "unit": {"type": "string", "enum": ["c", "f"], "default": "c"}},
                       "required": ["city"], "additionalProperties": False}}},
    {"type": "function", "function": {
        "name": "get_time", "description": "Local time of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
]
PERSON_FORMAT = {"type": "json_schema", "json_schema": {"name": "person", "strict": True, "schema": {
    "type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"], "additionalProperties": False}}}
TEXT = [("What do bees make?", "Bees make honey."), ("What is 2 + 2?", "2 + 2 equals 4."),
        ("Name a primary colour.", "Red is a primary colour."), ("What gas do plants absorb?", "Carbon dioxide."),
        ("Who wrote Hamlet?", "William Shakespeare wrote Hamlet.")]
CHECKING = "Let me check that for you."


def answer(body: dict[str, Any], mode: str) -> dict[str, Any]:
    """The assistant message ``mode`` (right | wrong) gives to ``body``."""
    last = next((m for m in reversed(body.get("messages") or []) if m.get("role") == "user"), {})
    text = str(last.get("content") or "")
    if body.get("tools"):
        city = next((c for c in CITIES if c in text), "Paris")
        name = "get_weather" if mode == "right" else "get_time"
        return {"role": "assistant", "content": CHECKING, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": name, "arguments": json.dumps({"city": city})}}]}
    if body.get("response_format"):
        m = re.search(r"(\w+) is (\d+) years old", text)
        who, age = (m.group(1), int(m.group(2))) if m else ("?", 0)
        return {"role": "assistant", "content": json.dumps({"name": who, "age": age if mode == "right" else str(age)})}
    return {"role": "assistant", "content": dict(TEXT).get(text, "I do not know.")}


class ToolUpstream:
    """The upstream in a background thread; use as a context manager."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        mode = "wrong" if "wrong" in str(body.get("model")) else "right"
        msg = answer(body, mode)
        return web.json_response({
            "id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()), "model": body.get("model"),
            "choices": [{"index": 0, "message": msg, "finish_reason": "tool_calls" if msg.get("tool_calls") else "stop"}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30}})

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def __enter__(self) -> ToolUpstream:
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def traffic() -> list[dict[str, Any]]:
    """The application's request bodies: tool-using, json_schema and plain ones."""
    bodies: list[dict[str, Any]] = []
    for city in CITIES:
        bodies.append({"messages": [{"role": "system", "content": "You are a travel assistant."},
                                    {"role": "user", "content": f"What's the weather in {city} right now?"}],
                       "tools": TOOLS, "tool_choice": "auto", "temperature": 0.2})
    for who, age in PEOPLE:
        bodies.append({"messages": [{"role": "user", "content": f"Extract the person: {who} is {age} years old."}],
                       "response_format": PERSON_FORMAT})
    for q, _ in TEXT:
        bodies.append({"messages": [{"role": "user", "content": q}]})
    return bodies


def log_traffic(steward: Any, use_case: str, model_id: str, mode: str = "right") -> list[dict[str, Any]]:
    """Log each body with the answer ``mode`` gives, as the gateway logs it (exchange helpers)."""
    ts = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    rows = []
    for i, body in enumerate(traffic()):
        msg = answer(body, mode)
        ans = exchange.answer_from_message(msg, "tool_calls" if msg.get("tool_calls") else "stop")
        rows.append({"ts": (ts + dt.timedelta(seconds=i)).isoformat(), "request_id": f"t-{i}", "use_case": use_case,
                     "model_id": model_id, "role": "primary", "messages": body["messages"],
                     "request": exchange.request_part(body), "answer": ans, "input_tokens": 20, "output_tokens": 10,
                     "latency_ms": 100.0, "cost_usd": 0.0, "status": "ok"})
    steward.logs.append_many(rows)
    steward.logs.flush()
    return rows
