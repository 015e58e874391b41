"""Management API over HTTP (FastAPI TestClient) on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from modelsteward.server import create_app
from server_helpers import bearer, make_tokens, seed


@pytest.fixture
def api(any_steward: Any) -> Iterator[tuple[TestClient, dict[str, str], dict[str, Any], Any]]:
    tokens = make_tokens(any_steward)
    ids = seed(any_steward)
    with TestClient(create_app(any_steward, metrics_cache_seconds=0), raise_server_exceptions=False) as client:
        yield client, tokens, ids, any_steward


def test_health_ready_and_metrics(api: Any) -> None:
    client, _tokens, _ids, steward = api
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) >= {"database", "log_store", "mlflow"}
    assert body["checks"]["database"]["detail"] == steward.engine.url.get_backend_name()
    text = client.get("/metrics").text
    # 24 log rows: every 4th on the canary (6), the rest on the primary (18); one error on the primary
    assert 'steward_requests_total{model="openai:gpt-4o-mini",role="primary",use_case="story"} 18.0' in text
    assert 'steward_requests_total{model="local:smollm2-135m-instruct",role="canary",use_case="story"} 6.0' in text
    assert 'steward_request_errors_total{model="openai:gpt-4o-mini",role="primary",use_case="story"} 1.0' in text
    assert 'steward_request_latency_seconds_bucket{le="+Inf",model="openai:gpt-4o-mini",role="primary",use_case="story"} 18.0' in text
    assert 'steward_tokens_total{direction="output",model="openai:gpt-4o-mini",role="primary",use_case="story"} 360.0' in text
    assert "steward_cost_usd_total{" in text
    assert 'steward_rollout_state{candidate="local:smollm2-135m-instruct",rollout="1",state="waiting",use_case="story"} 1.0' in text
    assert 'steward_allocation_weight_percent{model="openai:gpt-4o-mini",role="primary",use_case="story"} 100.0' in text
    assert "steward_approvals_pending 1.0" in text
    assert 'steward_api_requests_total{method="GET",route="/readyz",status="200"} 1.0' in text
    assert "steward_gateway_requests_total 0.0" in text  # the mounted gateway's own counters
    assert "steward_metrics_source_error" not in text


def test_readyz_names_the_store_that_fails(api: Any) -> None:
    client, _tokens, _ids, steward = api
    steward.settings.mlflow_tracking_uri = "http://127.0.0.1:9/mlflow"  # nothing listens on port 9
    r = client.get("/readyz")
    assert r.status_code == 503
    checks = r.json()["checks"]
    assert checks["mlflow"]["ok"] is False and checks["database"]["ok"] is True


def test_reads(api: Any) -> None:
    client, tokens, ids, _steward = api
    h = bearer(tokens["viewer"])
    assert client.get("/api/me", headers=h).json() == {"name": "viewer", "role": "viewer", "actor": "api:viewer"}
    assert [u["name"] for u in client.get("/api/use-cases", headers=h).json()] == ["story"]
    uc = client.get("/api/use-cases/story", headers=h).json()
    assert uc["allocations"] == [{"model_id": ids["a"], "weight": 100.0, "role": "primary"}]
    assert uc["deployment_version"] == 1
    hist = client.get("/api/use-cases/story/history", headers=h).json()
    assert hist[0]["action"] == "initial"
    stats = client.get("/api/use-cases/story/stats", params={"since": "30d"}, headers=h).json()
    assert {(r["model_id"], r["count"]) for r in stats} == {(ids["a"], 18), (ids["b"], 6)}
    models = client.get("/api/models", params={"status": "candidate"}, headers=h).json()
    assert [m["id"] for m in models] == [ids["b"]]
    m = client.get(f"/api/models/{ids['a']}", headers=h).json()
    assert m["price_in_per_m"] == 0.15 and m["status"] == "current" and m["context_length"] == 128000
    assert client.get("/api/evaluations", params={"use_case": "story"}, headers=h).json()[0]["metrics"] == {"quality": 0.91}
    assert client.get(f"/api/evaluations/{ids['test_result']}", headers=h).json()["verdict"] == "pass"
    assert client.get("/api/fine-tuning-jobs", headers=h).json()[0]["method"] == "lora"
    ro = client.get(f"/api/rollouts/{ids['rollout']}", headers=h).json()
    assert ro["use_case"] == "story" and ro["steps"] == [5, 25, 50, 100] and ro["state"] == "waiting"
    assert len(client.get("/api/rollouts", params={"state": "waiting"}, headers=h).json()) == 1
    assert client.get("/api/rollouts", params={"state": "completed"}, headers=h).json() == []
    assert client.get("/api/violations", params={"use_case": "story"}, headers=h).json()[0]["policy"] == "error_rate"
    pending = client.get("/api/approvals", params={"status": "pending"}, headers=h).json()
    assert [p["id"] for p in pending] == [ids["approval"]]
    assert client.get(f"/api/agent-runs/{ids['agent_run']}", headers=h).json()["report"].startswith("# Report")
    tools = {t["name"] for t in client.get("/api/tools", headers=h).json()}
    assert "usecase_add" in tools


def test_errors_are_json_with_codes_and_no_traces(api: Any) -> None:
    client, tokens, _ids, _steward = api
    h = bearer(tokens["admin"])
    r = client.get("/api/use-cases/nope", headers=h)
    assert r.status_code == 404 and r.json()["code"] == "not_found" and "story" in r.json()["message"]
    r = client.get("/api/rollouts/999", headers=h)
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = client.get("/api/models/openai:gpt-4o", headers=h)
    assert r.status_code == 404 and "gpt-4o-mini" in r.json()["message"]  # close match named
    r = client.get("/api/rollouts", params={"state": "exploded", "limit": 0}, headers=h)
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["details"]["errors"]}
    assert fields == {"query.state", "query.limit"}
    r = client.get("/api/use-cases/story/stats", params={"since": "forever"}, headers=h)
    assert r.status_code == 422 and r.json()["code"] == "invalid_input"
    r = client.post("/api/tokens", headers=h, content=b"{not json", )
    assert r.status_code == 422 and r.json()["code"] == "invalid_input"
    r = client.get("/api/nothing-here", headers=h)
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    for resp in (r, client.get("/api/me")):
        assert "Traceback" not in resp.text


def test_auth_failures(api: Any) -> None:
    client, tokens, _ids, steward = api
    r = client.get("/api/use-cases")
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/use-cases", headers=bearer("stw_not-a-real-token")).status_code == 401
    assert client.get("/api/use-cases", headers={"Authorization": "Basic abc"}).status_code == 401
    r = client.get("/api/tokens", headers=bearer(tokens["approver"]))
    assert r.status_code == 403
    assert r.json()["details"]["required_role"] == "admin" and "'admin'" in r.json()["message"]


def test_tokens_created_once_hashed_and_revocable(api: Any) -> None:
    client, tokens, _ids, steward = api
    admin = bearer(tokens["admin"])
    r = client.post("/api/tokens", headers=admin, json={"name": "ci-bot", "role": "operator"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["token"].startswith("stw_") and created["prefix"] == created["token"][:8]
    listed = client.get("/api/tokens", headers=admin).json()
    assert all("token" not in t for t in listed)
    from modelsteward.server.auth import hash_token
    from modelsteward.storage.models import ApiToken

    with steward.sessions() as s:
        row = s.get(ApiToken, created["id"])
        assert row.token_hash == hash_token(created["token"]) and created["token"] not in row.token_hash
    assert client.get("/api/me", headers=bearer(created["token"])).json()["role"] == "operator"
    r = client.post("/api/tokens", headers=admin, json={"name": "ci-bot", "role": "viewer"})
    assert r.status_code == 409 and r.json()["code"] == "conflict"
    assert client.delete(f"/api/tokens/{created['id']}", headers=admin).json()["revoked"] is True
    assert client.get("/api/me", headers=bearer(created["token"])).status_code == 401
    assert client.delete("/api/tokens/999", headers=admin).status_code == 404


def test_tool_routes_act_through_tools(api: Any, hosted_upstream: Any) -> None:  # the model answers its check
    client, tokens, _ids, steward = api
    op = bearer(tokens["operator"])
    r = client.post("/api/models", headers=op, json={"provider": "openrouter", "model_id": "meta/llama-3-8b",
                                                     "price_in": "0.05", "price_out": "0.1", "use_case": "story"})
    assert r.status_code == 201, r.text
    assert r.json()["id"] == "openrouter:meta/llama-3-8b"
    assert float(steward.registry.get_model("openrouter:meta/llama-3-8b").price_out_per_m) == pytest.approx(0.1)
    r = client.post("/api/use-cases", headers=op, json={"name": "summary", "description": "summaries",
                                                        "model": "openrouter:meta/llama-3-8b"})
    assert r.status_code == 201, r.text
    assert steward.registry.current_model("summary").id == "openrouter:meta/llama-3-8b"
    r = client.post("/api/use-cases", headers=op, json={"name": "summary", "description": "again"})
    assert r.status_code == 409 and r.json()["code"] == "conflict"
    r = client.post("/api/use-cases", headers=op, json={"description": 5})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["details"]["errors"]} >= {"body.name", "body.description"}
    r = client.post("/api/models", headers=op, json={"provider": "nowhere", "model_id": "x"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_input"


@pytest.mark.slow
def test_agent_run_as_a_background_task(api: Any) -> None:
    import time

    client, tokens, _ids, _steward = api
    r = client.post("/api/agent-runs", headers=bearer(tokens["operator"]),
                    json={"use_case": "story", "goal": "check health", "max_steps": 3})
    assert r.status_code == 202, r.text
    task = r.json()
    assert task["status"] == "running" and task["actor"] == "api:operator"
    assert r.headers["location"] == f"/api/tasks/{task['id']}"
    deadline = time.monotonic() + 120
    while task["status"] == "running":
        assert time.monotonic() < deadline, task
        time.sleep(0.3)
        task = client.get(f"/api/tasks/{task['id']}", headers=bearer(tokens["viewer"])).json()
    assert task["status"] == "succeeded", task
    run = client.get(f"/api/agent-runs/{task['result']['run_id']}", headers=bearer(tokens["viewer"])).json()
    assert run["goal"] == "check health" and run["report"]
    assert client.get("/api/tasks/ffff", headers=bearer(tokens["viewer"])).status_code == 404


@pytest.mark.slow
def test_chat_with_the_agent(api: Any) -> None:
    client, tokens, _ids, _steward = api
    op = bearer(tokens["operator"])
    r = client.post("/api/chat", headers=op, json={"message": "SELECT count(*) AS n FROM logs"})
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["status"] == "completed" and '"n": 24' in first["answer"]
    r = client.post("/api/chat", headers=op, json={"message": "rollouts story", "session_id": first["session_id"]})
    assert r.status_code == 200 and r.json()["session_id"] == first["session_id"]
    assert r.json()["run_id"] == first["run_id"]  # the same agent thread
    assert "local:smollm2-135m-instruct" in r.json()["answer"]
    r = client.post("/api/chat", headers=bearer(tokens["admin"]), json={"message": "hi", "session_id": first["session_id"]})
    assert r.status_code == 404  # a conversation belongs to the token that opened it
    r = client.post("/api/chat", headers=op, json={"message": ""})
    assert r.status_code == 422 and r.json()["details"]["errors"][0]["field"] == "body.message"


def test_public_surface_and_factory_from_settings(settings: Any) -> None:
    import modelsteward.server as server

    assert server.__all__ == ["create_app"]
    app = create_app(settings, gateway=False)  # the factory opens the workspace; shutdown closes it
    with TestClient(app) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json()["status"] == "ready"
        spec = client.get("/openapi.json").json()
        assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
        assert client.get("/docs").status_code == 200 and "swagger-ui-bundle.js" in client.get("/docs").text
        assert client.get("/static/swagger/swagger-ui-bundle.js").status_code == 200
        metrics = client.get("/metrics")  # an empty workspace: no traffic, no failing source
        assert metrics.status_code == 200 and "steward_metrics_source_error" not in metrics.text
        assert "steward_approvals_pending 0.0" in metrics.text


def test_console_pages_render(api: Any) -> None:
    import re

    client, tokens, ids, _steward = api
    r = client.post("/login", data={"token": tokens["viewer"]}, follow_redirects=False)
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    pages = ["/", "/use-cases/story", "/use-cases/story?window=1h", "/use-cases/story?window=30d", "/models",
             "/models?status=candidate", "/rollouts", f"/rollouts/{ids['rollout']}", "/approvals", "/approvals?show=all",
             "/agent-runs", f"/agent-runs/{ids['agent_run']}", "/chat"]
    for page in pages:
        r = client.get(page)
        assert r.status_code == 200, (page, r.text[-500:])
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert not re.search(r"<script>(?!\s*</script>)", r.text), page  # no inline scripts
    dash = client.get("/use-cases/story").text
    assert 'id="chart-data"' in dash and ids["b"] in dash and "# Report" in client.get(f"/agent-runs/{ids['agent_run']}").text
    r = client.get("/use-cases/nope", headers={"accept": "text/html"})
    assert r.status_code == 404 and "Unknown use case" in r.text and "Traceback" not in r.text
    assert client.get("/rollouts/999").status_code == 404
