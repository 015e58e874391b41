"""Issue 29 item 6: the small first-hour stumbles, each reproduced first.

Gateway keys sent the ways clients send them (bare ``Authorization``, ``x-api-key`` next to an SDK's
placeholder bearer, ``api-key``), an admin API token sent as a gateway key, unknown console URLs and
``/v1/chat/completions`` in ``/openapi.json``.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway_helpers import asgi_client, chat_body, fast_options, register_upstream
from modelsteward.fakes.upstream import InstantUpstream
from modelsteward.gateway import create_gateway_app
from modelsteward.gateway.keys import create_key
from modelsteward.server import create_app
from modelsteward.server.auth import create_token


@pytest.fixture
def upstream():
    with InstantUpstream() as up:
        yield up


async def test_gateway_key_is_read_from_every_header_clients_use(steward: Any, upstream: Any) -> None:
    mid = register_upstream(steward, "instant", upstream.url)
    steward.registry.add_use_case("chat", model=mid)
    key = create_key(steward.registry, "app", ["chat"]).key
    admin = create_token(steward, "ops", "admin")[1]
    app = create_gateway_app(steward, options=fast_options())
    state = app.state.gateway
    await state.start()
    try:
        with asgi_client(app, client=("10.0.0.9", 5555)) as client:
            for headers in ({"Authorization": key},  # no "Bearer"
                            {"Authorization": "Bearer placeholder", "x-api-key": key},  # an SDK's dummy bearer
                            {"x-api-key": key}, {"api-key": key}):
                r = await client.post("/v1/chat/completions", json=chat_body("chat"), headers=headers)
                assert r.status_code == 200, (headers.keys(), r.text)
            r = await client.post("/v1/chat/completions", json=chat_body("chat"),
                                  headers={"Authorization": f"Bearer {admin}"})
            assert r.status_code == 401
            msg = r.json()["error"]["message"]
            assert "admin API token" in msg and "not a gateway key" in msg and "steward keys create" in msg, msg
            r = await client.post("/v1/chat/completions", json=chat_body("chat"), headers={"x-api-key": "wrong"})
            assert r.status_code == 401
            assert r.json()["error"]["message"].startswith("The gateway key sent does not exist"), r.text
    finally:
        await state.stop()


def test_unknown_console_urls_answer_an_html_page(steward: Any) -> None:
    with TestClient(create_app(steward, gateway=False)) as client:
        for accept in ("*/*", "text/html,application/xhtml+xml"):
            r = client.get("/use-cases", headers={"accept": accept})
            assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), (accept, r.text)
            assert "/use-cases" in r.text and "<html" in r.text
        r = client.get("/use-cases", headers={"accept": "application/json"})  # asked for JSON: JSON
        assert r.status_code == 404 and r.json()["code"] == "not_found"
        r = client.get("/api/nothing-here", headers={"accept": "*/*"})  # the API stays JSON
        assert r.status_code == 404 and r.json()["code"] == "not_found"


def test_chat_completions_is_in_the_served_openapi(steward: Any, upstream: Any) -> None:
    mid = register_upstream(steward, "instant", upstream.url)
    steward.registry.add_use_case("chat", model=mid)
    key = create_key(steward.registry, "app").key
    with TestClient(create_app(steward)) as client:
        spec = client.get("/openapi.json").json()
        op = spec["paths"]["/v1/chat/completions"]["post"]
        assert "model" in op["requestBody"]["content"]["application/json"]["schema"]["required"]
        assert {"200", "401", "502"} <= set(op["responses"])
        r = client.post("/v1/chat/completions", json=chat_body("chat"), headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200 and r.json()["object"] == "chat.completion", r.text
