"""The gateway and egress (issue 28 item 3): a model at a host nobody approved is refused on every
request, but the refusal is remembered for ``PROVIDER_REFUSAL_TTL_S`` instead of re-reading the
registry's approved hosts -- on the event loop -- for each request (what made a benchmark against an
unapproved upstream twice as slow as the gateway's answering path)."""

from __future__ import annotations

from typing import Any

import pytest

import modelsteward.gateway.core as core
import modelsteward.storage.hosts as hosts
from modelsteward.context import Steward
from modelsteward.fakes.upstream import InstantUpstream
from modelsteward.gateway import create_gateway_app
from modelsteward.providers.factory import clear_provider_cache
from modelsteward.tools.base import ToolContext, call_tool
from gateway_helpers import asgi_client, chat_body, fast_options, register_upstream


@pytest.fixture
def upstream() -> Any:
    with InstantUpstream(record=True) as up:
        yield up


async def test_a_refused_host_is_remembered_not_reread_per_request(steward: Steward, upstream: InstantUpstream,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STEWARD_ALLOWED_HOSTS", raising=False)
    clear_provider_cache()
    reads: list[int] = []
    real = hosts.approved_origins

    def counted(*a: Any, **kw: Any) -> Any:
        reads.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(hosts, "approved_origins", counted)
    monkeypatch.setattr(core, "PROVIDER_REFUSAL_TTL_S", 3600.0)
    mid = register_upstream(steward, "far", upstream.url)
    steward.registry.add_use_case("chat", model=mid)
    app = create_gateway_app(steward, options=fast_options(retries=0))
    await app.state.gateway.start()
    try:
        with asgi_client(app) as client:
            for _ in range(20):
                r = await client.post("/v1/chat/completions", json=chat_body("chat"))
                assert r.status_code == 502 and "nobody approved" in r.json()["error"]["message"], r.text
                assert "steward hosts allow" in r.json()["error"]["message"]
            assert len(reads) == 1, f"the approved hosts were read {len(reads)} times for 20 requests"
            assert upstream.bodies == []
            # an admin approves the host; once the refusal is due for a re-check the model answers
            call_tool("hosts_allow", {"url": upstream.url, "reason": "test"},
                      ToolContext(steward=steward, actor="cli:admin"))
            monkeypatch.setattr(core, "PROVIDER_REFUSAL_TTL_S", 0.0)
            r = await client.post("/v1/chat/completions", json=chat_body("chat"))
            assert r.status_code == 200, r.text
            assert len(upstream.bodies) == 1
    finally:
        await app.state.gateway.stop()
        clear_provider_cache()
