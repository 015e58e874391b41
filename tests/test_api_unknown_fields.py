"""Every JSON route of the management API refuses a field it does not know, naming it.

The routes are found by walking the app (not listed by hand), so a route added later is covered
too.  Out of scope: the OpenAI-compatible gateway under ``/v1`` (its protocol passes unknown
parameters on to the upstream) and the console's HTML forms (not JSON input models).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from modelsteward.server import create_app
from modelsteward.tools import InputModel, load_all_tools
from server_helpers import bearer, make_tokens, seed

FIELD = "monthly_budget_usd_typo"


def _routes(app: Any) -> Iterator[tuple[str, set[str]]]:
    """(path, methods) of every route, included routers too (FastAPI >= 0.16x includes lazily)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: app.routes is flat
        for r in app.routes:
            yield r.path, set(getattr(r, "methods", None) or ())
        return
    for rc in iter_route_contexts(app.routes):
        yield rc.path or "", set(getattr(rc.original_route, "methods", None) or ())


@pytest.fixture
def api(steward: Any) -> Iterator[tuple[TestClient, dict[str, str], dict[str, Any]]]:
    tokens = make_tokens(steward)
    ids = seed(steward, logs=4)
    with TestClient(create_app(steward, metrics_cache_seconds=0), raise_server_exceptions=False) as client:
        yield client, tokens, ids


def _fill(path: str, ids: dict[str, Any]) -> str:
    values = {"use_case": "story", "approval_id": ids["approval"], "job_id": ids["job"], "task_id": "x",
              "name": "story", "model_id": ids["a"], "run_id": ids["agent_run"]}
    return re.sub(r"{(\w+)(:\w+)?}", lambda m: str(values.get(m.group(1), 1)), path)


def test_every_api_route_refuses_an_unknown_field(api: Any) -> None:
    client, tokens, ids = api
    app = client.app
    targets = sorted({(path, m) for path, methods in _routes(app) for m in methods & {"POST", "PATCH", "PUT"}
                      if path.startswith("/api/")})
    paths = {p for p, _ in targets}
    # the walk found the routes the issue names, and the path-only ones
    assert {"/api/use-cases", "/api/models", "/api/rollouts", "/api/tokens",
            "/api/use-cases/{use_case}/rollout/status", "/api/approvals/{approval_id}/approve"} <= paths, paths
    h = bearer(tokens["admin"])
    before = client.get("/api/use-cases", headers=h).json()
    for path, method in targets:
        r = client.request(method, _fill(path, ids), json={FIELD: 1}, headers=h)
        assert r.status_code == 422, (method, path, r.status_code, r.text)
        body = r.json()
        assert body["code"] == "invalid_input", (path, body)
        extra = [e for e in body["details"]["errors"] if e["type"] == "extra_forbidden"]
        assert [e["field"] for e in extra] == [f"body.{FIELD}"], (path, body)
        assert FIELD in body["message"], (path, body["message"])
    assert client.get("/api/use-cases", headers=h).json() == before  # nothing was created or changed


def test_the_field_a_response_uses_is_refused_by_name_not_dropped(api: Any) -> None:
    client, tokens, _ids = api
    r = client.post("/api/use-cases", json={"name": "chat", "description": "d", "monthly_budget_usd": 5},
                    headers=bearer(tokens["admin"]))
    assert r.status_code == 422 and "monthly_budget_usd" in r.json()["message"]
    assert client.get("/api/use-cases/chat", headers=bearer(tokens["admin"])).status_code == 404


def test_every_tool_input_model_forbids_unknown_fields() -> None:
    tools = load_all_tools()
    assert tools
    for name, spec in tools.items():
        assert issubclass(spec.input_model, InputModel) or spec.input_model.model_config.get("extra") == "forbid", name


def test_a_tool_whose_input_model_would_drop_fields_fails_at_registration() -> None:
    from pydantic import BaseModel

    from modelsteward.tools.base import TOOLS, tool

    class Loose(BaseModel):
        x: int = 0

    with pytest.raises(TypeError, match="Loose.*InputModel"):
        tool("test_loose_tool", input_model=Loose, output_model=Loose, mutating=False)(lambda ctx, inp: inp)
    assert "test_loose_tool" not in TOOLS


def _pending(client: TestClient, token: str) -> list[Any]:
    r = client.get("/api/approvals?status=pending", headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("change, needle", [
    ({"rollout": {"banana": 1}}, "banana"),
    ({"rollout": {"max_error_rate_increase": 0.9}}, "max_error_rate_increase"),  # bound: 0.10
    ({"guardrails": {"error_rate_abs": 0.5}}, "error_rate_abs"),  # bound: 0.20
    ({"rollout": {"steps": [10, 5]}}, "must increase"),
])
def test_a_policy_change_is_refused_when_requested_not_after_approval(api: Any, change: dict[str, Any],
                                                                    needle: str) -> None:
    client, tokens, _ids = api
    before = _pending(client, tokens["admin"])
    r = client.post("/api/use-cases/story/policy", json=change, headers=bearer(tokens["operator"]))
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_input" and needle in r.json()["message"]
    assert _pending(client, tokens["admin"]) == before  # no approval for a change that cannot be carried out
    ok = client.post("/api/use-cases/story/policy", json={"rollout": {"max_error_rate_increase": 0.02}},
                     headers=bearer(tokens["operator"]))
    assert ok.status_code == 202 and ok.json()["code"] == "approval_required"  # a valid change still waits
