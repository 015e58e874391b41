"""Gateway edges of issue 19 (item 6), each reproduced first against real local servers (the
instant fake upstream, the gateway under uvicorn) and, where streaming, the official openai client:

- a key works the moment ``keys create`` returns (it was refused until the next table reload, with
  a message that called it invalid);
- feedback for a request id that was never answered is a 404 naming the id; feedback sent while the
  answer still streams, or to another replica before the row is flushed, is taken;
- ``/v1/feedback`` is in the OpenAPI document (``/docs``) with its body and answer;
- an upstream that ignores ``"stream": true`` and answers whole JSON gives the client a real stream
  (it was an empty stream logged ``ok``);
- pinned and fallback answers are logged as roles ``pinned`` / ``fallback`` (they were ``primary``,
  counted in the primary's rollout statistics).
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import httpx
import openai
import orjson
import pytest

from gateway_helpers import GatewayThread, chat_body, fast_options, register_upstream, set_routing
from modelsteward.fakes.upstream import InstantUpstream
from modelsteward.gateway.keys import create_key, revoke_key

pytestmark = pytest.mark.slow

TEXT = "Hello from the instant upstream."


@pytest.fixture
def upstream():
    with InstantUpstream() as up:
        yield up


def _err(r: httpx.Response) -> dict:
    body = r.json()
    assert set(body) == {"error"}, body
    return body["error"]


def _slow_table():
    """Options under which the routing table is not reloaded during a test (a minute between reloads)."""
    return fast_options(refresh_s=60.0, full_reload_s=60.0)


# ---------------------------------------------------------------------------------------- keys
def test_a_new_key_works_at_once_and_unknown_or_revoked_keys_are_told_apart(steward, upstream):
    mid = register_upstream(steward, "instant", upstream.url)
    steward.registry.add_use_case("chat", model=mid)
    steward.registry.add_use_case("other", model=mid)
    create_key(steward.registry, "first-app")  # keys exist: loopback is no longer open
    with GatewayThread(steward, _slow_table()) as gw:
        new = create_key(steward.registry, "new-app", ["chat"])  # after the table was loaded
        client = openai.OpenAI(base_url=gw.url, api_key=new.key, max_retries=0)
        r = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
        assert r.choices[0].message.content == TEXT
        # the row names the key (so its owner may rate it)
        row = steward.logs.query("SELECT metadata FROM logs WHERE request_id = ?", [r.id])[0]
        assert orjson.loads(row["metadata"])["key"] == "new-app"
        # the key's binding holds for a key found this way too
        with pytest.raises(openai.PermissionDeniedError):
            client.chat.completions.create(model="other", messages=[{"role": "user", "content": "hi"}])

        # a key that does not exist: 401 saying so
        bad = openai.OpenAI(base_url=gw.url, api_key="sk-steward-doesnotexist000000000", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as e:
            bad.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
        assert "No gateway key sk-steward-doe" in str(e.value) and "exists" in str(e.value)

        # a revoked key: 401 saying it was revoked, not that it is wrong
        gone = create_key(steward.registry, "gone-app")
        revoke_key(steward.registry, "gone-app")
        r2 = httpx.post(f"{gw.url}/chat/completions", json=chat_body("chat"),
                        headers={"Authorization": f"Bearer {gone.key}"})
        assert r2.status_code == 401 and "revoked" in _err(r2)["message"], r2.text


def test_unknown_keys_do_not_load_the_registry(steward, upstream, monkeypatch):
    """Misses are rate-limited: the same bad key is looked up once, many bad keys at most a burst."""
    import modelsteward.gateway.keys as keys
    from modelsteward.gateway.core import KEY_LOOKUP_BURST, KEY_LOOKUPS_PER_S

    mid = register_upstream(steward, "instant", upstream.url)
    steward.registry.add_use_case("chat", model=mid)
    create_key(steward.registry, "app")
    calls = []
    real = keys.find_key
    monkeypatch.setattr(keys, "find_key", lambda reg, h: calls.append(h) or real(reg, h))
    with GatewayThread(steward, _slow_table()) as gw, httpx.Client() as http:
        for _ in range(30):
            r = http.post(f"{gw.url}/chat/completions", json=chat_body("chat"),
                          headers={"Authorization": "Bearer sk-steward-same-bad-key-000000000"})
            assert r.status_code == 401
        assert len(calls) == 1
        t0 = time.monotonic()
        messages = []
        for i in range(120):
            r = http.post(f"{gw.url}/chat/completions", json=chat_body("chat"),
                          headers={"Authorization": f"Bearer sk-steward-bad-{i:04d}-0000000000"})
            assert r.status_code == 401
            messages.append(_err(r)["message"])
        elapsed = time.monotonic() - t0
        assert len(calls) - 1 <= KEY_LOOKUP_BURST + KEY_LOOKUPS_PER_S * elapsed + 1
        # keys not looked up are not called wrong: the answer says they could not be checked
        unchecked = [m for m in messages if "could not be checked" in m]
        assert len(calls) - 1 + len(unchecked) == 120


# ---------------------------------------------------------------------------------------- feedback
def test_feedback_for_an_unknown_request_is_404_naming_it(steward, upstream):
    mid = register_upstream(steward, "instant", upstream.url)
    steward.registry.add_use_case("chat", model=mid)
    with GatewayThread(steward) as gw, httpx.Client() as http:
        r = http.post(f"{gw.url}/feedback", json={"request_id": "chatcmpl-neveranswered", "score": 1})
        assert r.status_code == 404, r.text
        e = _err(r)
        assert e["code"] == "request_not_found" and e["param"] == "request_id"
        assert "chatcmpl-neveranswered" in e["message"]
        assert not steward.logs.query("SELECT * FROM logs WHERE feedback IS NOT NULL")
        # an unknown field is named, not dropped
        rid = http.post(f"{gw.url}/chat/completions", json=chat_body("chat")).headers["x-request-id"]
        r = http.post(f"{gw.url}/feedback", json={"request_id": rid, "score": 1, "rating": 5})
        assert r.status_code == 400 and _err(r)["param"] == "rating", r.text
        r = http.post(f"{gw.url}/feedback", json={"request_id": rid, "score": 1})
        assert r.status_code == 200 and r.json() == {"ok": True, "request_id": rid, "score": 1.0}


def test_feedback_while_the_answer_still_streams(steward):
    """The stream's id reaches the client with its first bytes; its row is written at the end."""
    with InstantUpstream(stream_gap_ms=400) as up:
        mid = register_upstream(steward, "slow", up.url)
        steward.registry.add_use_case("chat", model=mid)
        with GatewayThread(steward) as gw:
            client = openai.OpenAI(base_url=gw.url, api_key="loopback", max_retries=0)
            stream = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}],
                                                    stream=True)
            first = next(iter(stream))
            r = httpx.post(f"{gw.url}/feedback", json={"request_id": first.id, "score": 1})
            assert r.status_code == 200, r.text
            rest = list(stream)
            assert "".join(c.choices[0].delta.content or "" for c in [first, *rest] if c.choices) == TEXT
    row = steward.logs.query("SELECT feedback, status FROM logs WHERE request_id = ?", [first.id])
    assert row == [{"feedback": 1.0, "status": "ok"}]


def test_feedback_to_another_replica_before_the_row_is_flushed(settings, upstream):
    """Replica A answered; its row is still in A's write-ahead file; replica B takes the feedback."""
    from modelsteward.context import open_steward

    slow = settings.model_copy(update={"log_flush_seconds": 300.0})
    a, b = open_steward(slow), open_steward(slow)
    try:
        mid = register_upstream(a, "instant", upstream.url)
        a.registry.add_use_case("chat", model=mid)
        with GatewayThread(a) as gw_a, GatewayThread(b) as gw_b:
            rid = httpx.post(f"{gw_a.url}/chat/completions", json=chat_body("chat")).headers["x-request-id"]
            assert a.logs.pending >= 1  # not flushed: only in A's write-ahead file
            r = httpx.post(f"{gw_b.url}/feedback", json={"request_id": rid, "score": -0.5})
            assert r.status_code == 200, r.text
            r = httpx.post(f"{gw_b.url}/feedback", json={"request_id": rid + "x", "score": -0.5})
            assert r.status_code == 404, r.text
    finally:
        a.close()
        b.close()
    c = open_steward(settings)
    try:
        assert c.logs.query("SELECT feedback FROM logs WHERE request_id = ?", [rid]) == [{"feedback": -0.5}]
    finally:
        c.close()


def test_feedback_is_in_the_openapi_document(steward):
    from fastapi.testclient import TestClient

    from modelsteward.server import create_app

    app = create_app(steward, metrics_cache_seconds=0)
    with TestClient(app) as http:
        doc = http.get("/openapi.json").json()
        assert http.get("/docs").status_code == 200
    op = doc["paths"]["/v1/feedback"]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    assert set(schema["properties"]) == {"request_id", "score", "comment"}
    assert schema["required"] == ["request_id", "score"] and schema["additionalProperties"] is False
    assert schema["properties"]["score"]["minimum"] == -1 and schema["properties"]["score"]["maximum"] == 1
    ok = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(doc["components"]["schemas"][ok]["properties"]) == {"ok", "request_id", "score"}
    assert {"400", "401", "403", "404"} <= set(op["responses"])


# ---------------------------------------------------------------------------------------- streams
def test_upstream_that_ignores_stream_gives_a_real_stream(steward):
    with InstantUpstream(ignore_stream=True) as up:
        mid = register_upstream(steward, "whole", up.url, price_in="1", price_out="2")
        steward.registry.add_use_case("chat", model=mid)
        with GatewayThread(steward) as gw:
            client = openai.OpenAI(base_url=gw.url, api_key="loopback", max_retries=0)
            chunks = list(client.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "hi"}], stream=True,
                stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == TEXT
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 12
    assert chunks[-1].usage.completion_tokens == 7
    (row,) = steward.logs.query("SELECT response, status, output_tokens, cost_usd FROM logs")
    assert row["response"] == TEXT and row["status"] == "ok" and row["output_tokens"] == 7
    assert row["cost_usd"] == pytest.approx((12 * 1 + 7 * 2) / 1e6)


def test_upstream_that_sends_nothing_is_an_error_not_an_empty_ok(steward):
    """A stream with no event at all (only [DONE]) is an upstream failure: fallback, or a 502."""
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                body = b"data: [DONE]\n\n"
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)

    threading.Thread(target=serve, daemon=True).start()
    try:
        mid = register_upstream(steward, "empty", f"http://127.0.0.1:{port}/v1")
        steward.registry.add_use_case("chat", model=mid)
        with GatewayThread(steward, fast_options(retries=0)) as gw:
            r = httpx.post(f"{gw.url}/chat/completions", json=chat_body("chat", stream=True))
            assert r.status_code == 502 and "without sending anything" in _err(r)["message"], r.text
    finally:
        srv.close()
    rows = steward.logs.query("SELECT status FROM logs")
    assert rows and all(x["status"] == "error" for x in rows)


# ---------------------------------------------------------------------------------------- roles
def test_pinned_and_fallback_answers_are_not_logged_as_primary(steward, upstream):
    from modelsteward.rollout.metrics import window_metrics

    with InstantUpstream(error_rate=1.0) as broken:
        primary = register_upstream(steward, "primary", broken.url)
        backup = register_upstream(steward, "backup", upstream.url)
        steward.registry.add_use_case("chat", model=primary)
        set_routing(steward, "chat", [{"model_id": primary, "weight": 100, "role": "primary"}], fallback=[backup])
        since = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=1)
        with GatewayThread(steward, fast_options(retries=0, cooldown_after=1000)) as gw:
            client = openai.OpenAI(base_url=gw.url, api_key="loopback", max_retries=0)
            fb = client.chat.completions.with_raw_response.create(model="chat", messages=[{"role": "user", "content": "a"}])
            assert fb.headers["x-steward-role"] == "fallback" and fb.parse().model == backup
            fbs = list(client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "b"}],
                                                      stream=True))
            assert "".join(c.choices[0].delta.content or "" for c in fbs if c.choices) == TEXT
            pin = client.chat.completions.with_raw_response.create(
                model=f"chat@{backup}", messages=[{"role": "user", "content": "c"}])
            assert pin.headers["x-steward-role"] == "pinned"
    rows = steward.logs.query("SELECT request_id, model_id, role, status FROM logs ORDER BY ts")
    answered = {r["request_id"]: r for r in rows if r["status"] == "ok"}
    assert answered[fb.parse().id]["role"] == "fallback" and answered[fbs[0].id]["role"] == "fallback"
    assert answered[pin.parse().id]["role"] == "pinned"
    # the primary's failed attempts stay the primary's
    assert {r["role"] for r in rows if r["status"] == "error"} == {"primary"}
    # readers: the rollout's statistics of the primary role hold only the primary's own calls
    prim = window_metrics(steward, "chat", since, model_id=backup, roles=("primary",))
    assert prim.requests == 0
    mine = window_metrics(steward, "chat", since, model_id=backup)
    assert mine.requests == 3 and mine.errors == 0
    # and the stats table groups them under their own roles
    roles = {(r["model_id"], r["role"]): r["count"] for r in steward.logs.stats(use_case="chat")}
    assert roles[(backup, "fallback")] == 2 and roles[(backup, "pinned")] == 1
