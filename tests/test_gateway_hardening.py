"""Gateway holes from issue 15, each reproduced first: cross-key feedback, feedback for unknown
requests, canary identity headers, pinning to retired or unallocated models."""

from __future__ import annotations

import pytest

from modelsteward.fakes.upstream import InstantUpstream
from modelsteward.gateway import create_gateway_app
from modelsteward.gateway.keys import create_key
from gateway_helpers import asgi_client, chat_body, fast_options, register_upstream


@pytest.fixture
def upstream():
    with InstantUpstream() as up:
        yield up


async def _gateway(steward, **opts):
    app = create_gateway_app(steward, options=fast_options(**opts))
    await app.state.gateway.start()
    return app, app.state.gateway


def _err(resp):
    body = resp.json()
    assert set(body) == {"error"}
    return body["error"]


async def test_feedback_is_bound_to_the_key_that_made_the_request(steward, upstream):
    mid = register_upstream(steward, "instant", upstream.url)
    steward.registry.add_use_case("story", model=mid)
    steward.registry.add_use_case("other", model=mid)
    story = create_key(steward.registry, "story-app", ["story"])
    story2 = create_key(steward.registry, "story-app-2", ["story"])
    other = create_key(steward.registry, "other-app", ["other"])
    app, state = await _gateway(steward)
    try:
        with asgi_client(app) as client:
            auth = {"Authorization": f"Bearer {story.key}"}
            r = await client.post("/v1/chat/completions", json=chat_body("story"), headers=auth)
            assert r.status_code == 200
            rid = r.headers["x-request-id"]
            # a key bound to another use case may not rate it
            r = await client.post("/v1/feedback", json={"request_id": rid, "score": -1},
                                  headers={"Authorization": f"Bearer {other.key}"})
            assert r.status_code == 403 and "story" in _err(r)["message"], r.text
            # nor may another key of the same use case
            r = await client.post("/v1/feedback", json={"request_id": rid, "score": -1},
                                  headers={"Authorization": f"Bearer {story2.key}"})
            assert r.status_code == 403 and _err(r)["code"] == "feedback_not_allowed", r.text
            assert "story-app" in _err(r)["message"]
            # an id that was never served
            r = await client.post("/v1/feedback", json={"request_id": "chatcmpl-doesnotexist", "score": 1},
                                  headers=auth)
            assert r.status_code == 404 and _err(r)["code"] == "request_not_found", r.text
            # the key that made it may
            r = await client.post("/v1/feedback", json={"request_id": rid, "score": 0.5}, headers=auth)
            assert r.status_code == 200 and r.json()["ok"] is True
        rows = steward.logs.query("SELECT request_id, feedback FROM logs WHERE request_id = ?", [rid])
        assert rows == [{"request_id": rid, "feedback": 0.5}]
    finally:
        await state.stop()


async def test_feedback_found_after_a_restart_from_the_log_store(steward, upstream):
    """The owner of an older request is read from the log store, not only from memory."""
    mid = register_upstream(steward, "instant", upstream.url)
    steward.registry.add_use_case("story", model=mid)
    story = create_key(steward.registry, "story-app", ["story"])
    story2 = create_key(steward.registry, "story-app-2", ["story"])
    app, state = await _gateway(steward)
    auth = {"Authorization": f"Bearer {story.key}"}
    try:
        with asgi_client(app) as client:
            rid = (await client.post("/v1/chat/completions", json=chat_body("story"), headers=auth)).headers["x-request-id"]
    finally:
        await state.stop()
    app, state = await _gateway(steward)
    try:
        with asgi_client(app) as client:
            r = await client.post("/v1/feedback", json={"request_id": rid, "score": -1},
                                  headers={"Authorization": f"Bearer {story2.key}"})
            assert r.status_code == 403, r.text
            r = await client.post("/v1/feedback", json={"request_id": rid, "score": 1}, headers=auth)
            assert r.status_code == 200, r.text
    finally:
        await state.stop()


async def test_canary_identity_is_not_told_to_clients_unless_the_operator_asks(steward, upstream, monkeypatch):
    from gateway_helpers import set_routing
    from modelsteward.gateway import GatewayOptions

    stable = register_upstream(steward, "stable", upstream.url)
    cand = register_upstream(steward, "cand", upstream.url)
    steward.registry.add_use_case("story", model=stable)
    set_routing(steward, "story", [{"model_id": stable, "weight": 50, "role": "primary"},
                                   {"model_id": cand, "weight": 50, "role": "canary"}])
    monkeypatch.delenv("STEWARD_EXPOSE_ROUTE_HEADERS", raising=False)
    monkeypatch.delenv("STEWARD_GATEWAY_EXPOSE_ROUTE_HEADERS", raising=False)
    app = create_gateway_app(steward, options=GatewayOptions.from_env(refresh_s=0.1))
    state = app.state.gateway
    await state.start()
    try:
        with asgi_client(app) as client:
            seen_models, seen_headers = set(), set()
            for i in range(16):
                r = await client.post("/v1/chat/completions", json=chat_body("story", stream=bool(i % 2)))
                assert r.status_code == 200
                seen_headers |= {h for h in r.headers if h.startswith("x-steward")}
                if i % 2:
                    for line in r.text.splitlines():
                        if line.startswith("data: {"):
                            seen_models.add(__import__("orjson").loads(line[6:])["model"])
                else:
                    seen_models.add(r.json()["model"])
            assert seen_headers == set() and seen_models == {"story"}
        # the log still knows who answered
        served = {r["role"] for r in steward.logs.query("SELECT role FROM logs")}
        assert served == {"primary", "canary"}
    finally:
        await state.stop()
    monkeypatch.setenv("STEWARD_EXPOSE_ROUTE_HEADERS", "1")
    app = create_gateway_app(steward, options=GatewayOptions.from_env(refresh_s=0.1))
    await app.state.gateway.start()
    try:
        with asgi_client(app) as client:
            roles = set()
            for _ in range(16):
                r = await client.post("/v1/chat/completions", json=chat_body("story"))
                roles.add(r.headers["x-steward-role"])
                assert r.json()["model"] == r.headers["x-steward-model"] in (stable, cand)
            assert roles == {"primary", "canary"}
    finally:
        await app.state.gateway.stop()


async def test_pin_reaches_only_live_or_fallback_models_that_are_not_retired(steward, upstream):
    from gateway_helpers import set_routing

    live = register_upstream(steward, "live", upstream.url)
    fallback = register_upstream(steward, "fallback", upstream.url)
    stray = register_upstream(steward, "stray", upstream.url)  # registered, never allocated to "story"
    shadow = register_upstream(steward, "shadow", upstream.url)
    old = register_upstream(steward, "old", upstream.url)
    steward.registry.add_use_case("story", model=live, fallback=[fallback, old])
    set_routing(steward, "story", [{"model_id": live, "weight": 100, "role": "primary"},
                                   {"model_id": shadow, "weight": 100, "role": "shadow"}])
    from modelsteward.storage.db import session_scope
    from modelsteward.storage.models import Model

    with session_scope(steward.sessions) as s:
        s.get(Model, old).status = "retired"
    app, state = await _gateway(steward)
    try:
        with asgi_client(app) as client:
            for mid in (live, fallback):
                r = await client.post("/v1/chat/completions", json=chat_body(f"story@{mid}"))
                assert r.status_code == 200 and r.headers["x-steward-model"] == mid, r.text
            for mid in (stray, shadow, old):
                r = await client.post("/v1/chat/completions", json=chat_body(f"story@{mid}"))
                assert r.status_code == 403 and _err(r)["code"] == "model_not_allocated", (mid, r.text)
            r = await client.post("/v1/chat/completions", json=chat_body("story@custom:nope"))
            assert r.status_code == 404
        served = {x["model_id"] for x in steward.logs.query("SELECT model_id FROM logs WHERE role <> 'shadow'")}
        assert served == {live, fallback}
    finally:
        await state.stop()
