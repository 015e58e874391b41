"""The gateway mounted at /v1 inside the server: its own keys, and its traffic in /metrics."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from server_helpers import bearer, make_tokens

from modelsteward.fakes.upstream import InstantUpstream
from modelsteward.gateway import create_key
from modelsteward.server import create_app


@pytest.mark.slow
def test_v1_is_served_and_counted(steward: Any) -> None:
    tokens = make_tokens(steward)
    with InstantUpstream() as up:
        m = steward.registry.register_model("custom", "instant", base_url=up.url, price_in_per_m="1",
                                            price_out_per_m="2")
        steward.registry.add_use_case("chat", description="chat", model=m.id)
        key = create_key(steward.registry, "app").key
        with TestClient(create_app(steward, metrics_cache_seconds=0)) as client:
            body = {"model": "chat", "messages": [{"role": "user", "content": "hello"}]}
            # gateway keys and API tokens are separate: neither opens the other's door
            assert client.post("/v1/chat/completions", json=body, headers=bearer(tokens["admin"])).status_code == 401
            assert client.get("/api/me", headers=bearer(key)).status_code == 401
            r = client.post("/v1/chat/completions", json=body, headers=bearer(key))
            assert r.status_code == 200, r.text
            assert r.json()["choices"][0]["message"]["content"].startswith("Hello")
            text = client.get("/metrics").text
            assert 'steward_requests_total{model="custom:instant",role="primary",use_case="chat"} 1.0' in text
            assert "steward_gateway_requests_total 1.0" in text
            assert 'steward_api_requests_total{method="POST"' not in text  # /v1 is the gateway's, not the API's
            stats = client.get("/api/use-cases/chat/stats", headers=bearer(tokens["viewer"])).json()
            assert stats[0]["count"] == 1 and stats[0]["input_tokens"] > 0
