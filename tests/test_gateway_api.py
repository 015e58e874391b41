"""Gateway behaviour in-process (ASGI client) against the instant fake upstream: every error shape,
routing, pinning, stickiness, refresh without restart, fallback, cooldown, shadows, budget, feedback."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import orjson
import pytest

from modelsteward.fakes.upstream import InstantUpstream
from modelsteward.gateway import create_gateway_app
from modelsteward.gateway.keys import create_key, hash_key
from gateway_helpers import asgi_client, chat_body, fast_options, register_upstream, set_routing


@pytest.fixture
def upstream():
    with InstantUpstream() as up:
        yield up


@pytest.fixture
def broken():
    with InstantUpstream(error_rate=1.0) as up:
        yield up


async def _gateway(steward, **opts):
    app = create_gateway_app(steward, options=fast_options(**opts))
    await app.state.gateway.start()
    return app, app.state.gateway


@pytest.fixture
async def gw(steward, upstream):
    mid = register_upstream(steward, "instant", upstream.url, price_in="1.5", price_out="2")
    steward.registry.add_use_case("chat", model=mid)
    steward.registry.add_use_case("empty")
    app, state = await _gateway(steward)
    with asgi_client(app) as client:
        yield client, state
    await state.stop()


def rows(steward, where: str = "true", params=None):
    return steward.logs.query(f"SELECT * FROM logs WHERE {where} ORDER BY ts, request_id", params)


def err(resp):
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


async def test_answer_is_logged_with_cost(gw, steward):
    client, _ = gw
    r = await client.post("/v1/chat/completions", json=chat_body(text="price me"))
    assert r.status_code == 200
    data = r.json()
    rid = r.headers["x-request-id"]
    assert data["id"] == rid and data["model"] == "custom:instant"
    assert data["choices"][0]["message"]["content"] == "Hello from the instant upstream."
    (row,) = rows(steward)
    assert row["request_id"] == rid and row["role"] == "primary" and row["status"] == "ok"
    assert (row["input_tokens"], row["output_tokens"]) == (12, 7)
    assert row["cost_usd"] == pytest.approx((12 * 1.5 + 7 * 2) / 1e6)
    assert orjson.loads(row["messages"]) == [{"role": "user", "content": "price me"}]


async def test_unknown_use_case_404_lists_known(gw):
    client, _ = gw
    r = await client.post("/v1/chat/completions", json=chat_body("chta"))
    assert r.status_code == 404
    e = err(r)
    assert e["param"] == "model" and e["code"] == "model_not_found"
    assert "chat" in e["message"] and "empty" in e["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (orjson.dumps({"messages": [{"role": "user", "content": "x"}]}), "model"),
        (orjson.dumps({"model": 3, "messages": [{"role": "user", "content": "x"}]}), "model"),
        (orjson.dumps({"model": "chat"}), "messages"),
        (orjson.dumps({"model": "chat", "messages": []}), "messages"),
        (orjson.dumps({"model": "chat", "messages": ["hi"]}), "messages[0]"),
        (orjson.dumps({"model": "chat", "messages": [{"role": "bot", "content": "x"}]}), "messages[0].role"),
        (orjson.dumps({"model": "chat", "messages": [{"role": "user"}]}), "messages[0].content"),
        (orjson.dumps({**chat_body(), "max_tokens": 0}), "max_tokens"),
        (orjson.dumps({**chat_body(), "temperature": 5}), "temperature"),
        (orjson.dumps({**chat_body(), "stream": "yes"}), "stream"),
        (orjson.dumps({**chat_body(), "n": 3}), "n"),
        (orjson.dumps({**chat_body(), "user": 7}), "user"),
    ],
)
async def test_malformed_body_400_names_field(gw, body, param):
    client, _ = gw
    r = await client.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400
    e = err(r)
    assert e["param"] == param and e["type"] == "invalid_request_error"
    if param:
        assert f"'{param}'" in e["message"]


async def test_no_allocation_503_names_use_case(gw):
    client, _ = gw
    r = await client.post("/v1/chat/completions", json=chat_body("empty"))
    assert r.status_code == 503
    e = err(r)
    assert e["code"] == "no_allocation" and "'empty'" in e["message"]


async def test_oversized_413(gw, steward):
    client, state = gw
    big = chat_body(text="x" * (state.max_request_bytes + 10))
    r = await client.post("/v1/chat/completions", json=big)
    assert r.status_code == 413 and err(r)["code"] == "request_too_large"


async def test_all_upstreams_failing_502_with_last_error_and_every_attempt_logged(steward, broken):
    a = register_upstream(steward, "bad-a", broken.url)
    b = register_upstream(steward, "bad-b", broken.url)
    steward.registry.add_use_case("chat", model=a, fallback=[b])
    app, state = await _gateway(steward)
    try:
        with asgi_client(app) as client:
            r = await client.post("/v1/chat/completions", json=chat_body())
    finally:
        await state.stop()
    assert r.status_code == 502
    e = err(r)
    assert e["code"] == "upstream_error" and "injected failure" in e["message"] and "HTTP 500" in e["message"]
    logged = rows(steward)
    assert [x["status"] for x in logged] == ["error"] * 4  # 2 attempts on each model
    assert Counter(x["model_id"] for x in logged) == {a: 2, b: 2}
    rid = r.headers["x-request-id"]
    assert all(orjson.loads(x["metadata"])["primary_request_id"] == rid for x in logged)


async def test_fallback_answers_and_cooldown_skips_the_dead_primary(steward, broken, upstream):
    dead = register_upstream(steward, "dead", broken.url)
    good = register_upstream(steward, "good", upstream.url)
    steward.registry.add_use_case("chat", model=dead, fallback=[good])
    app, state = await _gateway(steward, cooldown_after=3, cooldown_s=60)
    try:
        with asgi_client(app) as client:
            answers = [await client.post("/v1/chat/completions", json=chat_body()) for _ in range(10)]
    finally:
        await state.stop()
    assert [r.status_code for r in answers] == [200] * 10
    assert {r.headers["x-steward-model"] for r in answers} == {good}
    logged = rows(steward)
    failed = [x for x in logged if x["status"] == "error"]
    assert all(x["model_id"] == dead for x in failed)
    # request 1: two failed attempts; request 2: the third opens the breaker; then no more attempts
    assert len(failed) == 3
    per_request = Counter(orjson.loads(x["metadata"])["primary_request_id"] for x in failed)
    assert max(per_request.values()) <= 2
    assert sum(1 for x in logged if x["status"] == "ok" and x["model_id"] == good) == 10
    assert state.cooldowns.cooling(dead)


async def test_pinning_and_unknown_pinned_model(gw, steward, upstream):
    client, _ = gw
    other = register_upstream(steward, "other", upstream.url)
    set_routing(steward, "chat", [{"model_id": "custom:instant", "weight": 90, "role": "primary"},
                                  {"model_id": other, "weight": 10, "role": "canary"}])
    await asyncio.sleep(0.3)  # the routing refresh
    r = await client.post("/v1/chat/completions", json=chat_body(f"chat@{other}"))
    assert r.status_code == 200 and r.headers["x-steward-model"] == other
    r = await client.post("/v1/chat/completions", json=chat_body("chat@custom:nope"))
    assert r.status_code == 404 and "custom:nope" in err(r)["message"]


async def test_deploy_takes_effect_within_a_second_and_weights_split(gw, steward, upstream):
    client, _ = gw
    b = register_upstream(steward, "b", upstream.url)
    set_routing(steward, "chat", [{"model_id": b, "weight": 100, "role": "primary"}])
    t0 = time.monotonic()
    while True:
        r = await client.post("/v1/chat/completions", json=chat_body())
        if r.headers["x-steward-model"] == b:
            break
        assert time.monotonic() - t0 < 1.0, "routing change not live within 1 s"
        await asyncio.sleep(0.02)
    set_routing(steward, "chat", [{"model_id": "custom:instant", "weight": 50, "role": "primary"},
                                  {"model_id": b, "weight": 50, "role": "canary"}])
    await asyncio.sleep(0.5)
    seen = Counter()
    for _ in range(60):
        r = await client.post("/v1/chat/completions", json=chat_body())
        seen[(r.headers["x-steward-model"], r.headers["x-steward-role"])] += 1
    assert set(seen) == {("custom:instant", "primary"), (b, "canary")}
    assert min(seen.values()) >= 10


async def test_sticky_users_stay_on_one_model(gw, steward, upstream):
    client, state = gw
    b = register_upstream(steward, "b", upstream.url)
    set_routing(steward, "chat", [{"model_id": "custom:instant", "weight": 50, "role": "primary"},
                                  {"model_id": b, "weight": 50, "role": "canary"}], sticky=True)
    await state.refresh(force=True)
    assert state.snapshot.routes["chat"].sticky
    per_user = {}
    for user in [f"user-{i}" for i in range(12)]:
        models = {(await client.post("/v1/chat/completions", json=chat_body(user=user))).headers["x-steward-model"]
                  for _ in range(4)}
        assert len(models) == 1
        per_user[user] = models.pop()
    assert len(set(per_user.values())) == 2  # users are spread over both models


async def test_shadow_is_logged_and_full_queue_drops_are_counted(steward, upstream):
    with InstantUpstream(latency_ms=200) as slow:
        main = register_upstream(steward, "main", upstream.url)
        shadow = register_upstream(steward, "shadow", slow.url)
        steward.registry.add_use_case("chat", model=main)
        set_routing(steward, "chat", [{"model_id": main, "weight": 100, "role": "primary"},
                                      {"model_id": shadow, "weight": 100, "role": "shadow"}])
        app, state = await _gateway(steward, shadow_queue=2, shadow_workers=1)
        try:
            with asgi_client(app) as client:
                t0 = time.perf_counter()
                answers = [await client.post("/v1/chat/completions", json=chat_body()) for _ in range(10)]
                elapsed = time.perf_counter() - t0
        finally:
            await state.stop()  # drains the queue
    assert all(r.status_code == 200 for r in answers)
    assert elapsed < 1.0  # ten answers while the shadow takes 200 ms each
    assert state.counters["shadow_dropped"] >= 5
    done = state.counters["shadow_done"]
    assert done + state.counters["shadow_dropped"] == 10 and done >= 2
    shadows = rows(steward, "role = 'shadow'")
    assert len(shadows) == done and {x["model_id"] for x in shadows} == {shadow}
    primary_ids = {r.headers["x-request-id"] for r in answers}
    assert {orjson.loads(x["metadata"])["primary_request_id"] for x in shadows} <= primary_ids


async def test_budget_cap_refuses_with_429(steward, upstream):
    mid = register_upstream(steward, "pricey", upstream.url, price_in="1000", price_out="1000")
    steward.registry.add_use_case("chat", model=mid, monthly_budget_usd="0.02")
    app, state = await _gateway(steward)
    try:
        with asgi_client(app) as client:
            codes = [(await client.post("/v1/chat/completions", json=chat_body())).status_code for _ in range(3)]
            r = await client.post("/v1/chat/completions", json=chat_body())
    finally:
        await state.stop()
    # each call costs (12 + 7) * 1000 / 1e6 = 0.019 USD: the second passes (0.019 < 0.02), the third is refused
    assert codes == [200, 200, 429]
    assert r.status_code == 429 and err(r)["code"] == "budget_exceeded" and err(r)["type"] == "insufficient_quota"
    # a restart seeds the month-to-date total from the log store
    app2, state2 = await _gateway(steward)
    try:
        assert state2.spend.spent("chat") == pytest.approx(0.038)
        with asgi_client(app2) as client:
            assert (await client.post("/v1/chat/completions", json=chat_body())).status_code == 429
    finally:
        await state2.stop()


async def test_keys_401_403_and_loopback_rule(steward, upstream):
    mid = register_upstream(steward, "instant", upstream.url)
    steward.registry.add_use_case("chat", model=mid)
    steward.registry.add_use_case("other", model=mid)
    app, state = await _gateway(steward)
    try:
        assert state.loopback_only
        with asgi_client(app, client=("10.1.2.3", 4000)) as remote:
            r = await remote.post("/v1/chat/completions", json=chat_body())
            assert r.status_code == 401 and "loopback" in err(r)["message"]
        with asgi_client(app) as local:
            assert (await local.post("/v1/chat/completions", json=chat_body())).status_code == 200
        key = create_key(steward.registry, "app", ["chat"])
        assert key.key not in str(steward.registry.engine.url)
        await state.refresh(force=True)
        assert not state.loopback_only and hash_key(key.key) in state.snapshot.keys
        with asgi_client(app) as local:
            r = await local.post("/v1/chat/completions", json=chat_body())
            assert r.status_code == 401 and err(r)["code"] == "missing_api_key"
            r = await local.post("/v1/chat/completions", json=chat_body(), headers={"Authorization": "Bearer sk-wrong"})
            assert r.status_code == 401 and err(r)["code"] == "invalid_api_key"
            auth = {"Authorization": f"Bearer {key.key}"}
            assert (await local.post("/v1/chat/completions", json=chat_body(), headers=auth)).status_code == 200
            r = await local.post("/v1/chat/completions", json=chat_body("other"), headers=auth)
            assert r.status_code == 403 and "other" in err(r)["message"]
            models = (await local.get("/v1/models", headers=auth)).json()
            assert [m["id"] for m in models["data"]] == ["chat"]
            assert (await local.get("/v1/models")).status_code == 401
    finally:
        await state.stop()


async def test_models_lists_use_cases(gw):
    client, _ = gw
    data = (await client.get("/v1/models")).json()
    assert data["object"] == "list"
    assert [m["id"] for m in data["data"]] == ["chat", "empty"]


async def test_feedback_is_recorded_against_the_row(gw, steward):
    client, _ = gw
    rid = (await client.post("/v1/chat/completions", json=chat_body())).headers["x-request-id"]
    r = await client.post("/v1/feedback", json={"request_id": rid, "score": 0.5, "comment": "good"})
    assert r.status_code == 200 and r.json()["ok"] is True
    (row,) = rows(steward, "request_id = ?", [rid])
    assert row["feedback"] == 0.5
    for bad, param in (({"score": 1}, "request_id"), ({"request_id": rid, "score": 3}, "score"),
                       ({"request_id": rid, "score": "x"}, "score")):
        r = await client.post("/v1/feedback", json=bad)
        assert r.status_code == 400 and err(r)["param"] == param


async def test_streaming_sse_with_and_without_usage(gw, steward):
    client, _ = gw
    r = await client.post("/v1/chat/completions", json=chat_body(stream=True, stream_options={"include_usage": True}))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [line[6:] for line in r.text.split("\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    rid = r.headers["x-request-id"]
    assert all(c["id"] == rid for c in chunks)
    text = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c["choices"])
    assert text == "Hello from the instant upstream."
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 7
    r2 = await client.post("/v1/chat/completions", json=chat_body(stream=True))
    chunks2 = [orjson.loads(x[6:]) for x in r2.text.split("\n") if x.startswith("data: {")]
    assert all("usage" not in c for c in chunks2)
    logged = rows(steward, "request_id = ?", [rid])
    assert logged[0]["response"] == text and logged[0]["output_tokens"] == 7
    assert orjson.loads(logged[0]["metadata"])["stream"] is True


async def test_stream_falls_back_before_the_first_chunk(steward, broken, upstream):
    dead = register_upstream(steward, "dead", broken.url)
    good = register_upstream(steward, "good", upstream.url)
    steward.registry.add_use_case("chat", model=dead, fallback=[good])
    app, state = await _gateway(steward)
    try:
        with asgi_client(app) as client:
            r = await client.post("/v1/chat/completions", json=chat_body(stream=True))
    finally:
        await state.stop()
    assert r.status_code == 200 and r.headers["x-steward-model"] == good
    assert r.text.rstrip().endswith("data: [DONE]")
    logged = rows(steward)
    assert [(x["model_id"], x["status"]) for x in logged] == [(dead, "error"), (dead, "error"), (good, "ok")]


async def test_router_mounted_in_another_app_and_fast_path(steward, upstream):
    from fastapi import FastAPI

    from modelsteward.gateway import GatewayFastPath, GatewayState, gateway_router

    mid = register_upstream(steward, "instant", upstream.url)
    steward.registry.add_use_case("chat", model=mid)
    host = FastAPI()

    @host.get("/api/ping")
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    state = GatewayState(steward, fast_options())
    host.include_router(gateway_router(state))
    await state.start()
    try:
        for app in (host, GatewayFastPath(host, state)):
            with asgi_client(app) as client:
                assert (await client.post("/v1/chat/completions", json=chat_body())).status_code == 200
                assert (await client.get("/v1/models")).json()["data"][0]["id"] == "chat"
                assert (await client.get("/api/ping")).json() == {"pong": "yes"}
    finally:
        await state.stop()
    assert len(rows(steward)) == 2
