"""Every API route's auth rule, tried with no token and with each role (on SQLite and PostgreSQL).

Allowed callers send an invalid body (or unknown ids) so nothing is executed: the answer must
then be anything but 401/403, while lower roles get 403 naming the role needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from server_helpers import ROLES, bearer, make_tokens, seed

from modelsteward.server import create_app
from modelsteward.server.auth import role_at_least
from modelsteward.tools.base import load_all_tools

# (method, path) -> least role; tool routes are checked against their tool's flags instead
RULES: dict[tuple[str, str], str] = {
    ("GET", "/api/me"): "viewer",
    ("GET", "/api/tools"): "viewer",
    ("GET", "/api/use-cases"): "viewer",
    ("GET", "/api/use-cases/{name}"): "viewer",
    ("GET", "/api/use-cases/{name}/history"): "viewer",
    ("GET", "/api/use-cases/{name}/stats"): "viewer",
    ("GET", "/api/models"): "viewer",
    ("GET", "/api/models/{model_id}"): "viewer",
    ("GET", "/api/evaluations"): "viewer",
    ("GET", "/api/evaluations/{result_id}"): "viewer",
    ("GET", "/api/fine-tuning-jobs"): "viewer",
    ("GET", "/api/fine-tuning-jobs/{job_id}"): "viewer",
    ("GET", "/api/rollouts"): "viewer",
    ("GET", "/api/rollouts/{rollout_id}"): "viewer",
    ("GET", "/api/violations"): "viewer",
    ("GET", "/api/approvals"): "viewer",
    ("GET", "/api/approvals/{approval_id}"): "viewer",
    ("GET", "/api/agent-runs"): "viewer",
    ("GET", "/api/agent-runs/{run_id}"): "viewer",
    ("GET", "/api/tasks"): "viewer",
    ("GET", "/api/tasks/{task_id}"): "viewer",
    ("GET", "/api/tokens"): "admin",
    ("POST", "/api/tokens"): "admin",
    ("POST", "/api/chat"): "operator",
    ("DELETE", "/api/tokens/{token_id}"): "admin",
    ("POST", "/api/approvals/{approval_id}/approve"): "approver",
    ("POST", "/api/approvals/{approval_id}/reject"): "approver",
}
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}
# gateway routes in the document take gateway keys (`steward keys create`), never API tokens
# (their key rules: test_gateway_api.py, test_gateway_hardening.py, test_gateway_edges.py)
GATEWAY_KEY = "gateway-key"


@pytest.fixture
def world(any_steward: Any) -> Iterator[tuple[TestClient, dict[str, str], dict[str, Any]]]:
    tokens = make_tokens(any_steward)
    ids = seed(any_steward, logs=4)
    with TestClient(create_app(any_steward), raise_server_exceptions=False) as client:
        yield client, tokens, ids


def _operations(client: TestClient) -> list[tuple[str, str, dict[str, Any]]]:
    spec = client.get("/openapi.json").json()
    return [(m.upper(), p, op) for p, ops in spec["paths"].items() for m, op in ops.items()]


def _fill(path: str, ids: dict[str, Any], tool_route: bool) -> str:
    values = {
        "name": "story", "model_id": ids["a"], "result_id": ids["test_result"], "job_id": ids["job"],
        "rollout_id": ids["rollout"], "approval_id": ids["approval"], "run_id": ids["agent_run"], "token_id": 99999,
        "task_id": "0123abcd",
        "use_case": "no-such-use-case" if tool_route else "story",
    }
    if tool_route:  # tools act: point them at things that do not exist
        values["job_id"] = 999999
    return re.sub(r"{(\w+)}", lambda m: str(values[m.group(1)]), path)


def test_every_route_has_a_rule(world: Any) -> None:
    client, _tokens, _ids = world
    tools = load_all_tools()
    for method, path, op in _operations(client):
        if (method, path) in PUBLIC or op.get("x-steward-auth") == GATEWAY_KEY:
            continue
        tool = op.get("x-steward-tool")
        if tool is not None:
            spec = tools[tool]
            want = "operator" if spec.mutating or spec.long_running else "viewer"
            want = {"hosts_allow": "admin"}.get(tool, want)  # approving an egress host is an admin's (issue 25)
            want = {"models_check": "operator"}.get(tool, want)  # it calls the upstream (issue 29)
            assert op["x-steward-role"] == want, (method, path)
        else:
            assert (method, path) in RULES, f"{method} {path} has no auth rule in this test"


def test_each_role_on_each_route(world: Any) -> None:
    client, tokens, ids = world
    checked = 0
    for method, path, op in _operations(client):
        if (method, path) in PUBLIC:
            assert client.request(method, path).status_code == 200
            continue
        if op.get("x-steward-auth") == GATEWAY_KEY:  # an API token of any role is not a gateway key
            for role in ROLES:
                r = client.request(method, path, json={}, headers=bearer(tokens[role]))
                assert r.status_code == 401 and "error" in r.json(), (method, path, role, r.text)
            continue
        need = op.get("x-steward-role") or RULES[(method, path)]
        url = _fill(path, ids, "x-steward-tool" in op)
        kwargs: dict[str, Any] = {"json": ["not", "an", "object"]} if method in ("POST", "PUT", "PATCH") else {}
        r = client.request(method, url, **kwargs)
        assert r.status_code == 401, (method, path, r.text)
        r = client.request(method, url, headers=bearer("stw_wrong"), **kwargs)
        assert r.status_code == 401, (method, path, r.text)
        for role in ROLES:
            r = client.request(method, url, headers=bearer(tokens[role]), **kwargs)
            if role_at_least(role, need):
                assert r.status_code not in (401, 403), (method, path, role, r.status_code, r.text)
                assert r.status_code < 500, (method, path, role, r.text)
            else:
                assert r.status_code == 403, (method, path, role, r.text)
                assert r.json()["details"]["required_role"] == need
                assert f"'{need}'" in r.json()["message"]
            checked += 1
    assert checked >= len(RULES) * len(ROLES)


def test_console_needs_a_session(world: Any) -> None:
    client, tokens, _ids = world
    for page in ("/", "/use-cases/story", "/models", "/rollouts", "/approvals", "/agent-runs", "/chat"):
        r = client.get(page, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), page
    assert client.get("/", headers=bearer(tokens["admin"]), follow_redirects=False).status_code == 303


@pytest.mark.parametrize(("headers", "env", "secure"), [
    ({}, None, False),
    ({"x-forwarded-proto": "https"}, None, True),  # a TLS-terminating proxy in front (issue 25)
    ({}, "https://steward.example.com", True),
])
def test_the_session_cookie_is_secure_behind_https(world: Any, monkeypatch: pytest.MonkeyPatch,
                                                   headers: dict[str, str], env: str | None, secure: bool) -> None:
    client, tokens, _ids = world
    if env:
        monkeypatch.setenv("STEWARD_PUBLIC_URL", env)
    r = client.post("/login", data={"token": tokens["viewer"], "next": "/"}, follow_redirects=False,
                    headers={"origin": "http://testserver", **headers})
    assert r.status_code == 303, r.text
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and ("; secure" in cookie) is secure
