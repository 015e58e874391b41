"""The demo's tool-using use case: ``weather_assistant`` (issue 24).

Its models are remote: the project's wire-level fake OpenAI upstream, run as its own process
(``python -m modelsteward.fakes.upstream``; product code never imports the fakes), which answers a
request with ``tools`` by calling an offered function with arguments that match its schema, and a
``json_schema`` request with matching JSON.  A model whose name contains ``wrong`` is the wrong
caller: another function, arguments and JSON that break the schema, in text that reads the same.

The steps, all through the tools (and policies) like the rest of the demo:
1. the upstream's host is approved (egress: nothing is sent to a host nobody approved);
2. ``vllm:weather-live`` serves the use case; two cheaper candidates are registered;
3. the official ``openai`` SDK sends tool-calling and ``json_schema`` requests through the gateway,
   which logs them whole (request tools, response format, tool calls);
4. ``evaluate`` replays that traffic with its tools on each candidate: the wrong caller fails the
   ``tools`` and ``structured`` strata; the right one passes them (its quality needs a judge or a
   golden set to be shown, so without one it stays ``inconclusive``: no pass without evidence).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from typing import Any

__all__ = ["WEATHER", "run_tool_use_case"]

WEATHER = "weather_assistant"
LIVE = "vllm:weather-live"
CANDIDATES = ("vllm:weather-lite", "vllm:weather-wrong-cheap")
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city.",
                                      "parameters": {"type": "object", "properties": {
                                          "city": {"type": "string"}, "unit": {"type": "string",
                                                                               "enum": ["C", "F"]}},
                                          "required": ["city"]}}},
    {"type": "function", "function": {"name": "get_forecast", "description": "Forecast for the next days.",
                                      "parameters": {"type": "object", "properties": {
                                          "city": {"type": "string"}, "days": {"type": "integer"}},
                                          "required": ["city", "days"]}}},
]
REPORT_SCHEMA = {"type": "json_schema", "json_schema": {"name": "weather_report", "schema": {
    "type": "object", "properties": {"city": {"type": "string"}, "summary": {"type": "string"},
                                     "temperature_c": {"type": "number"}},
    "required": ["city", "summary", "temperature_c"], "additionalProperties": False}}}
CITIES = ("Paris", "Oslo", "Lisbon", "Kyoto", "Lima", "Cairo", "Quebec", "Hanoi", "Perth", "Accra")


def _start_upstream(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "modelsteward.fakes.upstream", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the demo's tool-calling upstream did not start on port {port}")


def _wait_for_route(gateway: str, timeout: float = 30.0) -> None:
    """The gateway reloads its routing table every 0.5 s: wait until it serves the new use case."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            listed = httpx.get(f"{gateway}/v1/models", timeout=5).json().get("data") or []
            if any(m.get("id") == WEATHER for m in listed):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the gateway did not pick up use case {WEATHER} within {timeout:.0f} s")


def _traffic(gateway: str, n: int) -> dict[str, Any]:
    from openai import OpenAI

    client = OpenAI(base_url=f"{gateway}/v1", api_key="demo-loopback")  # loopback: no gateway key needed
    counts: dict[str, Any] = {"tool_calls": 0, "json": 0, "errors": 0}
    for i in range(n):
        city = CITIES[i % len(CITIES)]
        try:
            if i % 3 == 2:
                resp = client.chat.completions.create(
                    model=WEATHER, response_format=REPORT_SCHEMA,  # type: ignore[arg-type]
                    messages=[{"role": "user", "content": f"Give me a weather report for {city} as JSON."}])
                counts["json"] += bool(resp.choices[0].message.content)
            else:
                stream = i % 3 == 1
                kwargs: Any = {"model": WEATHER, "tools": TOOLS, "tool_choice": "auto", "messages": [
                    {"role": "system", "content": "You answer weather questions with the tools."},
                    {"role": "user", "content": f"What is the weather in city={city} today?"}]}
                if stream:
                    calls = 0
                    for chunk in client.chat.completions.create(stream=True, **kwargs):
                        calls += sum(1 for c in chunk.choices if c.delta.tool_calls)
                    counts["tool_calls"] += calls > 0
                else:
                    resp = client.chat.completions.create(**kwargs)
                    counts["tool_calls"] += bool(resp.choices[0].message.tool_calls)
        except Exception as exc:  # noqa: BLE001 - counted and shown; the demo goes on
            counts["errors"] += 1
            counts.setdefault("first_error", f"{type(exc).__name__}: {exc}"[:300])
    return counts


def run_tool_use_case(demo: Any, gateway: str, *, upstream_port: int, requests: int = 30) -> dict[str, Any]:
    """Steps 1-4 of the module docstring on ``demo`` (``demo.call`` runs a tool as the demo operator), with the
    fake upstream on ``upstream_port`` (a free port the caller picked)."""
    from rich.markup import escape

    port = upstream_port
    upstream = _start_upstream(port)
    base = f"http://127.0.0.1:{port}/v1"
    out: dict[str, Any] = {"use_case": WEATHER, "evaluations": []}
    try:
        demo.call("hosts_allow", {"url": base, "reason": "demo: the local tool-calling upstream"})
        reg = demo.steward.registry
        prices = {LIVE: ("0.6", "2.4"), CANDIDATES[0]: ("0.15", "0.6"), CANDIDATES[1]: ("0.1", "0.4")}
        for mid, (p_in, p_out) in prices.items():
            if reg.find_model(mid) is None:
                demo.call("models_register", {"provider": "vllm", "model_id": mid.split(":", 1)[1], "base_url": base,
                                              "price_in": p_in, "price_out": p_out, "context": 32000})
        if WEATHER not in {u.name for u in reg.list_use_cases()}:
            demo.call("usecase_add", {"name": WEATHER, "description": "Answers weather questions with the app's tools.",
                                      "model": LIVE, "requires": ["tools", "json"]})
        demo.say(f"use case {WEATHER}: {LIVE} live, tools get_weather / get_forecast, JSON reports")
        _wait_for_route(gateway)
        out["traffic"] = _traffic(gateway, requests)
        demo.say(f"  {requests} requests through the gateway with the openai SDK: {out['traffic']}")
        for cand in CANDIDATES:
            res = demo.call("evaluate", {"use_case": WEATHER, "model_id": cand, "samples": requests,
                                         "safety_prompts": 4, "max_tokens": 64})
            gate = res.metrics.model_dump().get("gate") or {}
            strata = {k: (gate.get(k) or {}).get("status") for k in ("tools", "structured")}
            out["evaluations"].append({"candidate": cand, "verdict": res.verdict, "strata": strata,
                                       "reasons": res.reasons})
            demo.say(f"  evaluate {cand}: [bold]{res.verdict}[/bold]; tools {strata['tools']}, "
                     f"structured {strata['structured']}")
            for r in res.reasons[:3]:
                demo.say(f"    - {escape(str(r))}")
    finally:
        upstream.terminate()
        try:
            upstream.wait(timeout=10)
        except subprocess.TimeoutExpired:
            upstream.kill()
    return out
