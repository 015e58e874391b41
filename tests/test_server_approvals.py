"""Approvals over the API and the console: roles, no self-approval, the approved action runs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from server_helpers import bearer, make_tokens, promotion_scenario

from modelsteward.server import create_app
from modelsteward.storage.models import Approval, Rollout


@pytest.fixture
def world(any_steward: Any) -> Iterator[tuple[TestClient, dict[str, str], dict[str, Any], Any]]:
    tokens = make_tokens(any_steward)
    ids = promotion_scenario(any_steward, requester="api:operator")
    with TestClient(create_app(any_steward), raise_server_exceptions=False) as client:
        yield client, tokens, ids, any_steward


def _rollout(steward: Any, rid: int) -> Rollout:
    with steward.sessions() as s:
        return s.get(Rollout, rid)


def test_approve_needs_approver_and_runs_the_action(world: Any) -> None:
    client, tokens, ids, steward = world
    url = f"/api/approvals/{ids['approval']}/approve"
    for role in ("viewer", "operator"):
        r = client.post(url, headers=bearer(tokens[role]), json={"reason": "lgtm"})
        assert r.status_code == 403 and r.json()["details"]["required_role"] == "approver", r.text
    assert _rollout(steward, ids["rollout"]).state == "waiting"
    r = client.post(url, headers=bearer(tokens["approver"]), json={"reason": "canary looked fine"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["error"] is None, body
    assert body["approval"]["decided_by"] == "api:approver"
    assert body["approval"]["status"] == "executed"  # approved, then consumed by the advance
    assert body["result"]["rollout"]["state"] == "completed"
    ro = _rollout(steward, ids["rollout"])
    assert ro.state == "completed"
    routing = steward.registry.routing_table(steward.registry.deployment("story"))
    assert routing == [{"model_id": ids["b"], "weight": 100.0, "role": "primary"}]
    r = client.post(url, headers=bearer(tokens["approver2"]), json={})
    assert r.status_code == 409 and r.json()["code"] == "conflict"


def test_reject_leaves_the_rollout_waiting(world: Any) -> None:
    client, tokens, ids, steward = world
    r = client.post(f"/api/approvals/{ids['approval']}/reject", headers=bearer(tokens["admin"]),
                    json={"reason": "not on a Friday"})
    assert r.status_code == 200, r.text
    assert r.json()["approval"]["status"] == "rejected" and r.json()["result"] is None
    with steward.sessions() as s:
        assert s.get(Approval, ids["approval"]).decision_reason == "not on a Friday"
    assert _rollout(steward, ids["rollout"]).state == "waiting"


def test_requester_may_not_decide(world: Any) -> None:
    client, tokens, ids, steward = world
    with steward.sessions.begin() as s:
        s.get(Approval, ids["approval"]).requester = "cli:approver"  # same person, other front-end
    r = client.post(f"/api/approvals/{ids['approval']}/approve", headers=bearer(tokens["approver"]), json={})
    assert r.status_code == 403 and r.json()["code"] == "policy_denied"
    assert "different person" in r.json()["message"]
    assert _rollout(steward, ids["rollout"]).state == "waiting"
    assert client.post("/api/approvals/999/approve", headers=bearer(tokens["approver"])).status_code == 404
    r = client.post(f"/api/approvals/{ids['approval']}/approve", headers=bearer(tokens["approver"]),
                    json={"reason": 5})
    assert r.status_code == 422 and r.json()["details"]["errors"][0]["field"] == "body.reason"


def _login(client: TestClient, token: str) -> str:
    r = client.post("/login", data={"token": token, "next": "/approvals"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/approvals"
    page = client.get("/approvals")
    m = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert m
    return m.group(1)


def test_console_login_csrf_and_decide(world: Any) -> None:
    client, tokens, ids, steward = world
    r = client.post("/login", data={"token": "stw_nope"}, follow_redirects=False)
    assert r.status_code == 401 and "not valid" in r.text
    csrf = _login(client, tokens["approver"])
    page = client.get("/approvals").text
    assert f'id="approval-{ids["approval"]}"' in page and "rollout_advance" in page
    url = f"/approvals/{ids['approval']}/decide"
    r = client.post(url, data={"decision": "approve", "reason": "x"}, follow_redirects=False)
    assert r.status_code == 403  # no CSRF token
    r = client.post(url, data={"decision": "approve", "csrf": csrf}, headers={"Origin": "http://evil.example"},
                    follow_redirects=False)
    assert r.status_code == 403  # cross-origin
    assert _rollout(steward, ids["rollout"]).state == "waiting"
    r = client.post(url, data={"decision": "approve", "reason": "ok", "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and "msg=" in r.headers["location"], r.headers
    assert _rollout(steward, ids["rollout"]).state == "completed"
    assert "completed" in client.get(f"/rollouts/{ids['rollout']}").text


def test_console_viewer_cannot_decide_and_logout_ends_session(world: Any) -> None:
    client, tokens, ids, steward = world
    csrf = _login(client, tokens["viewer"])
    assert "deciding needs role approver" in client.get("/approvals").text
    r = client.post(f"/approvals/{ids['approval']}/decide", data={"decision": "approve", "csrf": csrf},
                    follow_redirects=False)
    assert r.status_code == 303 and "err=" in r.headers["location"]
    assert _rollout(steward, ids["rollout"]).state == "waiting"
    r = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/approvals", follow_redirects=False).status_code == 303


def test_revoked_token_ends_console_session(world: Any) -> None:
    client, tokens, _ids, steward = world
    _login(client, tokens["viewer"])
    assert client.get("/", follow_redirects=False).status_code == 200
    from modelsteward.server.auth import list_tokens, revoke_token

    revoke_token(steward, next(t.id for t in list_tokens(steward) if t.name == "viewer"))
    assert client.get("/", follow_redirects=False).status_code == 303
    client.cookies.set("steward_session", "1.9999999999.forged")
    assert client.get("/", follow_redirects=False).status_code == 303


def test_risky_tool_call_answers_202_with_its_approval(world: Any) -> None:
    client, tokens, ids, steward = world
    r = client.post("/api/use-cases/story/rollout/advance", headers=bearer(tokens["operator"]))
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["code"] == "approval_required" and body["details"]["approval_id"] == ids["approval"]
    assert _rollout(steward, ids["rollout"]).state == "waiting"
    r = client.post("/api/use-cases/story/rollout/status", headers=bearer(tokens["viewer"]))
    assert r.status_code == 200 and r.json()["rollout"]["state"] == "waiting"
