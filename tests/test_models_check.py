"""Issue 29 item 2: ``steward models check`` / ``POST /api/models/{id}/check`` and scheme-less base URLs.

Each misconfiguration a new user hit is reproduced against a real HTTP server of ours that behaves like
an OpenAI-compatible upstream wanting a bearer key (answers only ``/v1/chat/completions``; 401 without
the key): the check names the fix in one line.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from server_helpers import bearer, make_tokens

from modelsteward.fakes.upstream import RESPONSE
from modelsteward.providers import clear_provider_cache
from modelsteward.server import create_app
from modelsteward.tools import call_tool
from modelsteward.tools.base import ToolContext

SECRET = "sk-upstream-secret"
KEY_ENV = "STEWARD_MODELKEY_APP"


class _Keyed(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path != "/v1/chat/completions":
            code, body = 404, b'{"detail": "Not Found"}'
        elif self.headers.get("authorization") != f"Bearer {SECRET}":
            code, body = 401, b'{"error": {"message": "invalid api key"}}'
        else:
            code, body = 200, RESPONSE
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Keyed)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _check(steward: Any, model_id: str) -> dict[str, Any]:
    clear_provider_cache()
    return call_tool("models_check", {"model_id": model_id}, ToolContext(steward=steward)).model_dump()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_check_names_the_fix_for_each_misconfiguration(steward: Any, upstream: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    reg = steward.registry
    monkeypatch.delenv(KEY_ENV, raising=False)
    reg.register_model("custom", "no-v1", base_url=upstream, metadata={"api_key_env": KEY_ENV})
    reg.register_model("custom", "keyed", base_url=upstream + "/v1", metadata={"api_key_env": KEY_ENV})
    reg.register_model("custom", "nokey", base_url=upstream + "/v1")
    reg.register_model("custom", "down", base_url=f"http://127.0.0.1:{_closed_port()}/v1")

    r = _check(steward, "custom:keyed")  # key variable unset where the check runs
    assert not r["ok"] and r["status"] == 401 and r["key_env"] == KEY_ENV and r["key_set"] is False
    assert r["fix"] == f"set {KEY_ENV} in the server's environment"
    assert r["url"] == upstream + "/v1/chat/completions"
    r = _check(steward, "custom:nokey")
    assert r["status"] == 401 and "--api-key-env" in r["fix"], r
    r = _check(steward, "custom:down")
    assert not r["ok"] and r["status"] is None and r["fix"].startswith("cannot connect: check host and port"), r

    monkeypatch.setenv(KEY_ENV, SECRET)
    r = _check(steward, "custom:no-v1")
    assert r["status"] == 404 and r["fix"] == f"add /v1 to the base URL ({upstream}/v1)", r
    r = _check(steward, "custom:keyed")
    assert r["ok"] and r["status"] == 200 and r["key_set"] is True and r["fix"] is None and r["latency_ms"] > 0, r
    monkeypatch.setenv(KEY_ENV, "wrong")
    assert _check(steward, "custom:keyed")["fix"] == f"the upstream refused the key in {KEY_ENV}: check its value"


def test_cli_refuses_a_base_url_without_scheme_and_checks(settings: Any, upstream: str) -> None:
    env = {**os.environ, "STEWARD_HOME": str(settings.home), KEY_ENV: SECRET}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "modelsteward", *args], capture_output=True, text=True,
                              env=env, timeout=120)

    bare = upstream.removeprefix("http://") + "/v1"
    bad = run("models", "register", "vllm", "m", "--base-url", bare, "--api-key-env", KEY_ENV)
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "needs a scheme (http:// or https://)" in bad.stderr and f"http://{bare}" in bad.stderr
    ok = run("models", "register", "vllm", "m", "--base-url", upstream + "/v1", "--api-key-env", KEY_ENV)
    assert ok.returncode == 0, ok.stderr
    r = run("models", "check", "vllm:m", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["ok"] and out["status"] == 200 and out["key_env"] == KEY_ENV and out["key_set"] is True
    env.pop(KEY_ENV)
    r = run("models", "check", "vllm:m")
    assert r.returncode == 1 and f"fix: set {KEY_ENV} in the server's environment" in r.stdout, r.stdout + r.stderr


def test_api_check_needs_operator_and_takes_ids_with_slashes(steward: Any, upstream: str) -> None:
    tokens = make_tokens(steward)
    steward.registry.register_model("custom", "org/model", base_url=upstream)
    with TestClient(create_app(steward, gateway=False)) as client:
        assert client.post("/api/models/custom:org/model/check", headers=bearer(tokens["viewer"])).status_code == 403
        r = client.post("/api/models/custom:org/model/check", headers=bearer(tokens["operator"]))
        assert r.status_code == 200, r.text
        assert r.json()["model_id"] == "custom:org/model" and r.json()["fix"].startswith("add /v1"), r.json()
        r = client.post("/api/models/custom:nope/check", headers=bearer(tokens["operator"]))
        assert r.status_code == 404, r.text
