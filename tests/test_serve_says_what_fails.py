"""Issue 29 item 3: ``steward serve`` says what fails, in its own log (not only in the request store).

At start-up one warning per live or fallback model whose key variable is unset; while running one
structured line (JSON under ``STEWARD_LOG_FORMAT=json``) per failed upstream attempt and per non-2xx
answer, with request id, use case, model, status and latency.  Successful requests log nothing.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from modelsteward.fakes.upstream import InstantUpstream

STEWARD = [sys.executable, "-c", "from modelsteward.cli import main; main()"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(env: dict[str, str], out: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _port()
    proc = subprocess.Popen([*STEWARD, "serve", "--port", str(port), "--no-control-loop"], env=env,
                            stdout=subprocess.DEVNULL, stderr=out.open("wb"))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        assert proc.poll() is None, out.read_text()
        assert time.monotonic() < deadline, "steward serve did not come up"
        time.sleep(0.2)


def test_serve_warns_about_unset_keys_and_logs_every_failure_as_json(steward: Any, settings: Any,
                                                                     tmp_path: Path) -> None:
    with InstantUpstream(error_rate=1.0) as bad, InstantUpstream() as good:
        reg = steward.registry
        broken = reg.register_model("custom", "broken", base_url=bad.url, metadata={"api_key_env": "STEWARD_MODELKEY_APP"})
        fine = reg.register_model("custom", "fine", base_url=good.url)
        reg.add_use_case("chat", model=broken.id)
        reg.add_use_case("ok", model=fine.id)
        env = {**os.environ, "STEWARD_HOME": str(settings.home), "STEWARD_LOG_FORMAT": "json",
               "STEWARD_GATEWAY_RETRIES": "0"}
        env.pop("STEWARD_MODELKEY_APP", None)
        out = tmp_path / "serve.err"
        proc, base = _serve(env, out)
        try:
            body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
            r = httpx.post(base + "/v1/chat/completions", json=body, timeout=30)
            assert r.status_code == 502, r.text
            rid = r.headers["x-request-id"]
            assert httpx.post(base + "/v1/chat/completions", json={**body, "model": "nope"}).status_code == 404
            assert httpx.post(base + "/v1/chat/completions", json={**body, "model": "ok"}).status_code == 200
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    lines = out.read_text().splitlines()
    warn = [ln for ln in lines if "STEWARD_MODELKEY_APP" in ln]
    assert len(warn) == 1 and "custom:broken" in warn[0] and "set STEWARD_MODELKEY_APP" in warn[0], lines
    assert not any("custom:fine" in ln for ln in lines), lines  # no key expected: no warning, no failure line
    events = [json.loads(ln) for ln in lines if ln.startswith("{")]
    events = [e for e in events if e.get("event")]
    attempts = [e for e in events if e["event"] == "upstream_failed"]
    assert attempts and all(e["model"] == "custom:broken" and e["use_case"] == "chat" and e["status"] == 500
                            and e["request_id"] == rid and e["logger"] == "modelsteward.gateway"
                            for e in attempts), attempts
    answered = {e["status"]: e for e in events if e["event"] == "request_failed"}
    assert set(answered) == {502, 404}, events
    assert answered[502]["request_id"] == rid and answered[502]["use_case"] == "chat"
    assert answered[502]["model"] == "custom:broken" and answered[502]["latency_ms"] >= 0
    assert answered[404]["use_case"] == "nope" and answered[404]["code"]
