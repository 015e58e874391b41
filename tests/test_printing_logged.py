"""Issue 24 item 7: what was logged prints as written, and unknown ``/v1`` routes answer in OpenAI's
error shape.

Before: ``steward logs query`` rendered logged text as Rich markup (``[echo]`` vanished, a logged
``[/foo]`` stopped the command with ``MarkupError``) and the import summary turned ``openai:m:``
into an emoji; ``POST /v1/embeddingz`` answered FastAPI's ``{"detail": "Not Found"}``."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from gateway_helpers import asgi_client, env_for, fast_options
from modelsteward.gateway import create_gateway_app

LOGGED = "[echo] [/foo] :m: [bold]not bold[/bold] :smile:"


def _cli(steward, *args):
    return subprocess.run([sys.executable, "-m", "modelsteward", *args], env=env_for(steward.settings),
                          capture_output=True, text=True, timeout=120)


def test_logs_query_prints_logged_text_as_written(steward):
    steward.logs.append({"request_id": "r-markup", "use_case": "chat", "model_id": "openai:m:mini",
                         "messages": [{"role": "user", "content": "[red]hi[/red]"}], "response": LOGGED})
    steward.logs.flush()
    out = _cli(steward, "logs", "query", "SELECT model_id, response, messages FROM logs")
    assert out.returncode == 0, out.stderr
    assert LOGGED in out.stdout and "openai:m:mini" in out.stdout and "[red]hi[/red]" in out.stdout
    assert "Ⓜ" not in out.stdout and "😄" not in out.stdout
    stats = _cli(steward, "logs", "stats", "--since", "all")  # another table of logged values
    assert stats.returncode == 0 and "openai:m:mini" in stats.stdout, stats.stderr


def test_import_summary_prints_model_ids_as_written(steward, tmp_path):
    steward.registry.add_use_case("support")
    f = tmp_path / "rows.jsonl"
    f.write_text(json.dumps({"ts": "2025-11-22T10:00:00Z", "request_id": "imp-1", "use_case": "support",
                             "model_id": "openai:m:[b]x", "messages": [{"role": "user", "content": "hi"}],
                             "response": "hello"}) + "\n")
    out = _cli(steward, "logs", "import", str(f), "--format", "steward")
    assert out.returncode == 0, out.stderr
    assert "model openai:m:[b]x: 1 row" in out.stdout and "Ⓜ" not in out.stdout


@pytest.fixture
async def gateway_client(steward):
    app = create_gateway_app(steward, options=fast_options())
    await app.state.gateway.start()
    with asgi_client(app) as client:
        yield client
    await app.state.gateway.stop()


@pytest.fixture
def server_client(steward):
    from fastapi.testclient import TestClient

    from modelsteward.server.app import create_app

    with TestClient(create_app(steward), client=("127.0.0.1", 5555)) as client:
        yield client


def _openai_error(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert body["error"]["code"] == code and body["error"]["type"] == "invalid_request_error"
    return body["error"]["message"]


ROUTES = [("POST", "/v1/embeddingz", 404, "unknown_url"), ("GET", "/v1/nope", 404, "unknown_url"),
          ("GET", "/v1/chat/completions", 405, "method_not_allowed")]


@pytest.mark.parametrize(("method", "path", "status", "code"), ROUTES)
async def test_unknown_v1_route_standalone_gateway(gateway_client, method, path, status, code):
    r = await gateway_client.request(method, path, json={})
    msg = _openai_error(r, status, code)
    assert path in msg and "/v1/chat/completions" in msg


@pytest.mark.parametrize(("method", "path", "status", "code"), ROUTES)
def test_unknown_v1_route_steward_serve_app(server_client, method, path, status, code):
    r = server_client.request(method, path, json={})
    msg = _openai_error(r, status, code)
    assert path in msg
    other = server_client.get("/api/nope")  # the management API keeps its own error shape
    assert other.status_code == 404 and "error" not in other.json()
